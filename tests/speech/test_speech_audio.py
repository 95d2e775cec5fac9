import warnings

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from speech.audio import AudioError, AudioPolicy, list_audio_files, read_audio, resample
from speech.datasets import SpeechDataConfig, load_corpus


def sine(rate, seconds=0.5, freq=440.0, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("src,dst", [(16000, 8000), (44100, 8000), (8000, 22050), (48000, 44100)])
def test_resample_sine_against_scipy_and_analytic(src, dst):
    x = sine(src)
    y = resample(x, src, dst)
    up, down = dst // np.gcd(src, dst), src // np.gcd(src, dst)
    np.testing.assert_allclose(y, resample_poly(x, up, down), atol=1e-6)
    assert len(y) == int(np.ceil(len(x) * up / down))
    analytic = sine(dst, seconds=len(y) / dst)
    mid = slice(len(y) // 10, -len(y) // 10)  # the FIR's edge transients aside
    assert np.abs(y[mid] - analytic[mid]).max() < 0.01


def test_read_wav_file_through_soundfile(tmp_path):
    p = tmp_path / "a.wav"
    sf.write(p, sine(16000), 16000, subtype="PCM_16")
    y = read_audio(p, 8000)
    assert y.dtype == np.float32 and y.shape == (4000,)
    assert abs(np.abs(y).max() - 0.5) < 0.01


def write_bad_files(folder):
    """One of each kind of bad input the issue names; returns {name: (path, words the message must contain)}."""
    folder.mkdir(parents=True, exist_ok=True)
    bad = {}
    p = folder / "notaudio.wav"
    p.write_text("this is not a wave file")
    bad["notaudio"] = (p, "not a readable audio file")
    p = folder / "empty.wav"
    p.write_bytes(b"")
    bad["empty"] = (p, "empty file")
    p = folder / "zerolen.wav"
    sf.write(p, np.zeros(0, np.float32), 8000, subtype="PCM_16")
    bad["zerolen"] = (p, "zero-length")
    p = folder / "odd_rate.wav"
    sf.write(p, sine(7919), 7919, subtype="PCM_16")
    bad["odd_rate"] = (p, "odd sample rate 7919")
    p = folder / "too_low.wav"
    sf.write(p, sine(800, freq=100), 800, subtype="PCM_16")
    bad["too_low"] = (p, "outside")
    return bad


def test_bad_inputs_name_the_file(tmp_path):
    for name, (path, words) in write_bad_files(tmp_path).items():
        with pytest.raises(AudioError) as e:
            read_audio(path, 8000)
        assert str(path) in str(e.value) and words in str(e.value), name


def test_stereo_and_24bit_policy(tmp_path):
    st = tmp_path / "stereo.wav"
    sf.write(st, np.stack([sine(8000), np.zeros(4000, np.float32)], 1), 8000, subtype="PCM_16")
    b24 = tmp_path / "deep.wav"
    sf.write(b24, sine(8000), 8000, subtype="PCM_24")
    with pytest.warns(UserWarning, match="stereo.wav: 2 channels"):
        y = read_audio(st, 8000)
    np.testing.assert_allclose(y, sine(8000) / 2, atol=1e-4)  # mixed down to mono
    with pytest.warns(UserWarning, match="deep.wav: sample format PCM_24"):
        y = read_audio(b24, 8000)
    np.testing.assert_allclose(y, sine(8000), atol=1e-4)
    for path, words in ((st, "2 channels"), (b24, "PCM_24")):
        with pytest.raises(AudioError, match=words) as e:
            read_audio(path, 8000, AudioPolicy(strict=True))
        assert str(path) in str(e.value)


def test_folder_without_audio(tmp_path):
    (tmp_path / "readme.txt").write_text("no audio here")
    with pytest.raises(AudioError, match="no audio files") as e:
        list_audio_files(tmp_path)
    assert str(tmp_path) in str(e.value)
    with pytest.raises(AudioError, match="no such folder"):
        list_audio_files(tmp_path / "missing")


def test_skip_bad_reports_and_goes_on(tmp_path):
    folder = tmp_path / "audio"
    bad = write_bad_files(folder)
    for i in range(20):
        sf.write(folder / f"good{i}.wav", sine(16000, 0.2, 200 + 20 * i), 16000, subtype="PCM_16")
    cfg = SpeechDataConfig(dataset="folder", path=str(folder), test_fraction=0.2, valid_fraction=0.2, seed=1)
    with pytest.raises(AudioError):
        load_corpus(cfg)
    corpus = load_corpus(SpeechDataConfig(**{**cfg.__dict__, "skip_bad": True}))
    assert sorted(p for p, _ in corpus.bad_files) == sorted(str(p) for p, _ in bad.values())
    assert sum(len(v) for v in corpus.splits.values()) == 20
    assert all(c.dtype.is_floating_point is False and c.numel() == 1600 for v in corpus.splits.values() for c in v)


def test_skip_bad_with_too_few_readable_files_names_folder_and_skipped_files(tmp_path):
    """Fewer than 3 readable files after --skip-bad: the error names the folder and every skipped file."""
    folder = tmp_path / "audio"
    bad = write_bad_files(folder)
    for i in range(2):
        sf.write(folder / f"good{i}.wav", sine(8000, 0.2), 8000, subtype="PCM_16")
    cfg = SpeechDataConfig(dataset="folder", path=str(folder), skip_bad=True)
    with pytest.raises(AudioError) as e:
        load_corpus(cfg)
    msg = str(e.value)
    assert msg.startswith(f"{folder}: 2 readable file(s) here, and splitting by file needs at least 3")
    assert f"{len(bad)} unreadable file(s) skipped under --skip-bad" in msg
    for path, words in bad.values():
        assert f"{path} (" in msg and words in msg.split(f"{path} (")[1].split(")")[0], path
    speakers = SpeechDataConfig(dataset="folder", path=str(folder), skip_bad=True, split_by="speaker")
    with pytest.raises(AudioError, match="2 readable speaker"):
        load_corpus(speakers)


def test_truncated_wav_warns_and_strict_refuses(tmp_path):
    """A WAV whose header declares more sample data than the file holds (a cut download) is named, not read
    silently: a warning with both sizes, an AudioError under strict format checking."""
    full = tmp_path / "full.wav"
    sf.write(full, sine(8000), 8000, subtype="PCM_16")
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:44 + 1000])                     # 44-byte header + 500 of the 4000 samples
    with pytest.warns(UserWarning, match=r"cut.wav: truncated: the header declares 8000 bytes of sample data, "
                                         r"the file holds 1000: using the 500 frames present"):
        y = read_audio(cut, 8000)
    np.testing.assert_array_equal(y, read_audio(full, 8000)[:500])
    with pytest.raises(AudioError, match="truncated.*re-export or re-download it") as e:
        read_audio(cut, 8000, AudioPolicy(strict=True))
    assert str(cut) in str(e.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # an intact file gives no warning
        read_audio(full, 8000)


def test_clipped_float_wav_gets_its_own_warning(tmp_path):
    p = tmp_path / "loud.wav"
    x = sine(8000, amp=1.5)
    sf.write(p, x, 8000, subtype="FLOAT")
    n_out = int((np.abs(x) > 1).sum())
    with pytest.warns(UserWarning) as record:
        y = read_audio(p, 8000)
    messages = [str(w.message) for w in record]
    assert f"{p}: {n_out} of 4000 samples lie outside [-1, 1] (peak 1.5): clipping them to [-1, 1]" in messages
    np.testing.assert_array_equal(y, np.clip(x, -1, 1))
    with pytest.raises(AudioError, match="sample format FLOAT"):   # strict refuses float files (only they can clip)
        read_audio(p, 8000, AudioPolicy(strict=True))
