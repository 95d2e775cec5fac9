"""Reading audio files: soundfile for decoding, mono mix, polyphase resampling, validation.

Every failure is an `AudioError` (a ValueError) whose message names the file and says what to do, so a bad
file in a folder of thousands never surfaces as a traceback from libsndfile or scipy.

Policy for formats the paper's pipeline does not expect (documented in docs/speech.md):
- multi-channel files are mixed down to mono and 24/32-bit or float files are read as float, each with a
  warning that names the file (`AudioPolicy(strict=False)`, the default);
- with `strict=True` they are bad input: an `AudioError` naming the file (or, under --skip-bad, a reported skip).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIO_SUFFIXES = (".wav", ".flac")
MIN_RATE, MAX_RATE = 1000, 384_000
MAX_POLYPHASE_FACTOR = 1000  # 44.1k <-> 48k needs 147/160; 44.1k -> 8k needs 80/441


class AudioError(ValueError):
    """A file or folder that cannot be used as audio; `path` names it."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class AudioPolicy:
    """How to treat files that decode but are not 16-bit mono.

    strict: if True, stereo and non-16-bit files are errors; if False they are converted with a warning.
    """
    strict: bool = False


def polyphase_factors(orig_rate: int, target_rate: int) -> tuple[int, int]:
    """(up, down) for scipy.signal.resample_poly, reduced by their gcd."""
    g = math.gcd(int(orig_rate), int(target_rate))
    return int(target_rate) // g, int(orig_rate) // g


def check_rate(path: str | Path, rate: int, target_rate: int) -> None:
    """Raise AudioError for a sample rate we refuse to resample (implausible, or a huge polyphase filter)."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(path, f"sample rate {rate} Hz is outside {MIN_RATE}..{MAX_RATE} Hz; "
                               "re-export the file at a standard rate (8000, 16000, 22050, 44100, 48000 Hz)")
    up, down = polyphase_factors(rate, target_rate)
    if max(up, down) > MAX_POLYPHASE_FACTOR:
        raise AudioError(path, f"odd sample rate {rate} Hz: resampling to {target_rate} Hz needs polyphase "
                               f"factors up={up}, down={down} (limit {MAX_POLYPHASE_FACTOR}); re-export it at a "
                               "standard rate (8000, 16000, 22050, 44100, 48000 Hz)")


def resample(x: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly, Kaiser-windowed FIR). x: [N] -> [ceil(N * up / down)]."""
    if orig_rate == target_rate:
        return x
    from scipy.signal import resample_poly

    up, down = polyphase_factors(orig_rate, target_rate)
    return resample_poly(x, up, down).astype(x.dtype, copy=False)


def read_audio(path: str | Path, target_rate: int, policy: AudioPolicy = AudioPolicy()) -> np.ndarray:
    """Decode one file to mono float32 in [-1, 1] at `target_rate`. Returns x: [N], N >= 1.

    Raises AudioError (naming the file) for: missing/unreadable/non-audio files, zero-length files, odd sample
    rates, and (under policy.strict) multi-channel or non-16-bit files.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "no such file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes); delete it or re-export it")
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as e:  # libsndfile: "Format not recognised" and friends
        raise AudioError(path, f"not a readable audio file ({e.__class__.__name__}: {str(e).split(':')[-1].strip()}); "
                               "expected WAV or FLAC") from None
    if info.frames == 0:
        raise AudioError(path, "zero-length audio (a header but no samples); delete it or re-export it")
    check_rate(path, int(info.samplerate), target_rate)
    problems = []
    if info.channels != 1:
        problems.append(f"{info.channels} channels (expected mono)")
    if info.subtype not in ("PCM_16",):
        problems.append(f"sample format {info.subtype} (expected 16-bit PCM)")
    if problems:
        if policy.strict:
            raise AudioError(path, "; ".join(problems) + "; convert it to 16-bit mono or run without strict "
                                                         "format checking (data.strict_format=false)")
        warnings.warn(f"{path}: {'; '.join(problems)}: converting (mixing channels to mono, reading as float)",
                      stacklevel=2)
    try:
        x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise AudioError(path, f"could not decode the samples ({e}); the file may be truncated") from None
    x = x.mean(axis=1)
    x = resample(x, int(rate), target_rate)
    if not np.isfinite(x).all():
        raise AudioError(path, "contains NaN or infinite samples")
    if x.size == 0:
        raise AudioError(path, f"nothing left after resampling {rate} Hz -> {target_rate} Hz")
    return np.clip(x, -1.0, 1.0)


def list_audio_files(folder: str | Path) -> list[Path]:
    """All .wav/.flac files under `folder` (recursive), sorted; AudioError naming the folder if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(folder, "no such folder; give a folder of WAV or FLAC files")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise AudioError(folder, "folder contains no audio files (*.wav or *.flac)")
    return files


def write_wav(path: str | Path, x: np.ndarray, rate: int) -> Path:
    """Write mono float audio x: [N] as 16-bit PCM WAV, atomically (encoded in memory, then renamed into place)."""
    import io

    import soundfile as sf

    from core.run.io import atomic_write_bytes

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(x, dtype=np.float32), -1, 1), rate, subtype="PCM_16", format="WAV")
    return atomic_write_bytes(path, buf.getvalue())
