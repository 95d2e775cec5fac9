import numpy as np
import pytest
import torch

from speech.datasets import SpeechDataConfig, assign_splits, fsdd_split, load_corpus
from speech.streams import IGNORE, SILENCE, AudioStreams
from speech.synth import make_speakers, synth_utterance
from speech.task import ResumableStreams


def clips_of(lengths):
    return [torch.arange(n) + 1000 * i for i, n in enumerate(lengths)]


@pytest.mark.parametrize("reset", [False, True])
def test_eval_streams_score_every_sample_once(reset):
    clips = clips_of([10, 3, 25, 7, 1, 12])
    seen = []
    for w in AudioStreams(clips, batch_size=3, window=4, reset_at_file_boundary=reset, loop=False):
        assert w.inputs.shape == w.targets.shape == (3, 4) and w.reset.shape == (3,)
        m = w.targets != IGNORE
        seen += w.targets[m].tolist()
        assert (w.inputs[~m][(w.inputs[~m] < 1000) & (w.inputs[~m] >= 256)] == SILENCE).all()
    # continuous: every sample but the first of each stream is a target; reset: every sample but each clip's first
    expected = [int(v) for c in clips for v in c[1:]]
    if not reset:
        heads = [int(c[0]) for c in clips[3:]]  # rows continue into their next clip: its head is predicted too
        expected += heads
    assert sorted(seen) == sorted(expected)


def test_reset_mode_aligns_clips_to_windows():
    clips = clips_of([10, 5])  # 9 and 4 targets: 3 windows (the last padded) + 1 window
    ws = list(AudioStreams(clips, 1, 4, reset_at_file_boundary=True, loop=False))
    assert [bool(w.reset[0]) for w in ws] == [True, False, False, True]
    assert ws[2].targets[0].tolist() == [9, IGNORE, IGNORE, IGNORE]
    assert ws[3].inputs[0].tolist() == [1000, 1001, 1002, 1003]  # clip 2 starts on a window boundary


def test_continuous_mode_crosses_boundaries_without_reset():
    ws = list(AudioStreams(clips_of([6, 6]), 1, 4, loop=False))
    assert [bool(w.reset[0]) for w in ws] == [True, False, False]
    assert ws[1].targets[0].tolist() == [5, 1000, 1001, 1002]


def test_training_stream_resumes_exactly():
    clips = clips_of([30, 17, 44, 9])
    a = ResumableStreams(clips, 2, 8, False, seed=3)
    first = [next(a) for _ in range(7)]
    b = ResumableStreams(clips, 2, 8, False, seed=3)
    b.load_state_dict(a.state_dict())
    for _ in range(5):
        wa, wb = next(a), next(b)
        assert torch.equal(wa.inputs, wb.inputs) and torch.equal(wa.targets, wb.targets)
    assert len(first) == 7


def test_fsdd_official_split():
    assert fsdd_split("3_jackson_0", 5) == "test" and fsdd_split("3_jackson_4", 5) == "test"
    assert fsdd_split("3_jackson_5", 5) == "valid" and fsdd_split("3_jackson_9", 5) == "valid"
    assert fsdd_split("3_jackson_10", 5) == "train" and fsdd_split("9_theo_49", 5) == "train"
    assert fsdd_split("recording", 5) is None


def test_fsdd_copy_split_counts(fsdd_dir):
    corpus = load_corpus(SpeechDataConfig(dataset="fsdd", path=str(fsdd_dir), max_files=20), splits=("test",))
    assert len(corpus.splits["test"]) == 20
    assert all(int(n.rsplit("_", 1)[1].split(".")[0]) < 5 for n in corpus.names["test"])
    clips = corpus.splits["test"]                              # real audio: one byte per sample too
    assert {c.dtype for c in clips} == {torch.uint8} and _held_bytes(clips) == corpus.samples("test") > 20 * 2000


def test_split_by_speaker_keeps_speakers_apart():
    speakers = [f"s{i % 7}" for i in range(70)]
    table = assign_splits(speakers, 0.15, 0.15, seed=0, what="speaker")
    assert set(table.values()) == {"train", "valid", "test"}
    with pytest.raises(ValueError, match="at least 3 distinct speakers"):
        assign_splits(["a", "b", "a"], 0.1, 0.1, 0, "speaker")


def test_synthetic_speech_is_seeded_and_recurs():
    spk = make_speakers(2, seed=0)[0]
    a = synth_utterance(spk, 2.0, 8000, seed=11, recur_gap_s=0.8)
    assert np.array_equal(a, synth_utterance(spk, 2.0, 8000, seed=11, recur_gap_s=0.8))
    assert not np.array_equal(a, synth_utterance(spk, 2.0, 8000, seed=12, recur_gap_s=0.8))
    # the opening theme recurs at least recur_gap_s later (equal up to the noise floor)
    head = a[:400]
    dists = [np.abs(a[s:s + 400] - head).max() for s in range(int(0.8 * 8000), len(a) - 400)]
    assert min(dists) < 0.01
    assert np.abs(a).max() <= 0.7 and len(a) >= 2 * 8000


def test_synthetic_corpus_config():
    cfg = SpeechDataConfig(synth_files=9, synth_seconds=0.3, synth_speakers=3, split_by="speaker")
    c = load_corpus(cfg)
    assert {k: len(v) for k, v in c.splits.items()} == {"train": 3, "valid": 3, "test": 3}
    with pytest.raises(ValueError, match="data.dataset"):
        SpeechDataConfig(dataset="librispeech")
    with pytest.raises(ValueError, match="data.path"):
        SpeechDataConfig(dataset="folder")


def test_fsdd_download_unpacks_release_recordings(tmp_path):
    """The release download path on a local file:// copy of the archive layout (no network in tests)."""
    import tarfile

    import soundfile as sf

    from speech.datasets import download_fsdd, find_fsdd_recordings

    src = tmp_path / "src" / "free-spoken-digit-dataset-1.0.10"
    (src / "recordings").mkdir(parents=True)
    for name in ("0_alice_0", "1_alice_7", "2_bob_30"):
        sf.write(src / "recordings" / f"{name}.wav", np.zeros(800, np.float32), 8000, subtype="PCM_16")
    (src / "README.md").write_text("not a recording")
    archive = tmp_path / "release.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    dest = tmp_path / "fsdd"
    with pytest.raises(Exception, match="data.download=true"):
        find_fsdd_recordings(dest)
    got = download_fsdd(dest, url=archive.as_uri())
    assert got == dest / "recordings" and sorted(p.name for p in got.iterdir()) == \
        ["0_alice_0.wav", "1_alice_7.wav", "2_bob_30.wav"]
    assert find_fsdd_recordings(dest) == got
    corpus = load_corpus(SpeechDataConfig(dataset="fsdd", path=str(dest)))
    assert [len(corpus.splits[s]) for s in ("train", "valid", "test")] == [1, 1, 1]


def test_every_preset_loads_and_paper_models_have_about_40m_parameters():
    """Section 5.6: the three speech models have about 40M parameters each. The Compressive Transformer pays for
    its 11.8M conv-compressor parameters with a narrower feed-forward (768 vs the TXL's 1536)."""
    from core.run.config import available_presets

    from speech.config import load_speech_config
    from speech.models import build_model, count_params

    sizes = {}
    for name in available_presets("speech"):
        cfg = load_speech_config(name)
        assert cfg.preset == name
        with torch.device("meta"):
            sizes[name] = count_params(build_model(cfg.model))[0]
    assert {k: sizes[k] for k in ("paper-compressive", "paper-transformerxl", "paper-wavenet")} == \
        {"paper-compressive": 38_612_224, "paper-transformerxl": 38_619_904, "paper-wavenet": 39_262_544}
    cfg = load_speech_config("paper-wavenet")
    assert cfg.model.wavenet.dilations[:11] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1]
    assert cfg.model.wavenet.receptive_field == 3070
    ct, txl = load_speech_config("paper-compressive"), load_speech_config("paper-transformerxl")
    assert ct.model.window == 3840 and ct.model.transformer.n_layers == txl.model.transformer.n_layers == 20
    assert (ct.model.transformer.d_ff, txl.model.transformer.d_ff) == (768, 1536)
    assert ct.model.transformer.mem_len + ct.model.transformer.cmem_len == txl.model.transformer.mem_len
    for name in ("cpu-fsdd", "cpu-fsdd-txl", "cpu-fsdd-wavenet"):  # comparable cpu models
        assert 0.14e6 < sizes[name] < 0.18e6
    for name in ("cpu-fsdd-long", "cpu-fsdd-long-txl", "cpu-fsdd-long-wavenet"):  # the sized tier
        assert 0.9e6 < sizes[name] < 1.2e6
    assert sizes["cpu-fsdd-long-wavenet"] == 1_172_320 and sizes["cpu-fsdd-long"] == 1_186_048


def _held_bytes(tensors) -> int:
    """Bytes of the distinct storages behind some tensors (views of one storage count once)."""
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


def test_audio_is_held_as_one_byte_per_sample():
    """Mu-law codes stay uint8 from encoding to the streams (1 byte per sample, not 16: int64 clips copied again
    by the streams); only the [B, T] windows handed to a model are int64."""
    corpus = load_corpus(SpeechDataConfig(synth_files=9, synth_seconds=0.3, synth_speakers=3))
    clips = [c for v in corpus.splits.values() for c in v]
    assert {c.dtype for c in clips} == {torch.uint8}
    assert _held_bytes(clips) == sum(corpus.samples(s) for s in corpus.splits) == sum(c.numel() for c in clips)
    train = corpus.splits["train"]
    streams = ResumableStreams(train, 2, 64, False, seed=0)
    held = streams.streams.clips
    assert {a.dtype for a in held} == {np.dtype(np.uint8)} and sum(a.nbytes for a in held) == corpus.samples("train")
    assert all(np.shares_memory(a, c.numpy()) for a, c in zip(held, train))   # no copy of the corpus
    w = next(streams)
    assert w.inputs.dtype == w.targets.dtype == torch.int64
    assert {r.inp.dtype for r in streams.streams.rows} == {np.dtype(np.uint8)}
    assert {r.tgt.dtype for r in streams.streams.rows} == {np.dtype(np.int16)}
    # the windows are the same as from int64 clips
    wide = AudioStreams([c.long() for c in train], 2, 64, loop=True, seed=0)
    ref = next(wide)
    assert torch.equal(w.inputs, ref.inputs) and torch.equal(w.targets, ref.targets)
