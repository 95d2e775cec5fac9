"""Reading audio files: soundfile for decoding, mono mix, polyphase resampling, validation.

Every failure is an `AudioError` (a ValueError) whose message names the file and says what to do, so a bad
file in a folder of thousands never surfaces as a traceback from libsndfile or scipy.

Policy for files the paper's pipeline does not expect (documented in docs/speech.md):
- multi-channel files are mixed down to mono and 24/32-bit or float files are read as float; a truncated WAV
  (its header declares more sample data than the file holds) gives the samples present; float samples beyond
  [-1, 1] are clipped; each with a warning that names the file and the problem (`AudioPolicy(strict=False)`,
  the default);
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

    strict: if True, stereo, non-16-bit, truncated and clipped files are errors; if False they are converted
    (or, truncated, read as far as they go; clipped, clipped to [-1, 1]) with a warning.
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
        refuse_or_warn(path, policy, "; ".join(problems), "converting (mixing channels to mono, reading as float)",
                       "convert it to 16-bit mono")
    try:
        x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise AudioError(path, f"could not decode the samples ({e}); the file may be truncated") from None
    shortfall = wav_data_shortfall(path)
    if shortfall is not None or len(x) < info.frames:
        declared, present = shortfall or (info.frames, len(x))
        unit = "bytes of sample data" if shortfall else "frames"
        refuse_or_warn(path, policy, f"truncated: the header declares {declared} {unit}, the file holds {present}",
                       f"using the {len(x)} frames present", "re-export or re-download it")
    n_out = int((np.abs(x) > 1).sum())
    if n_out:   # only float files can hold samples beyond full scale
        refuse_or_warn(path, policy, f"{n_out} of {x.size} samples lie outside [-1, 1] (peak {np.abs(x).max():.3g})",
                       "clipping them to [-1, 1]", "normalise it (divide by its peak)")
    x = x.mean(axis=1)
    x = resample(x, int(rate), target_rate)
    if not np.isfinite(x).all():
        raise AudioError(path, "contains NaN or infinite samples")
    if x.size == 0:
        raise AudioError(path, f"nothing left after resampling {rate} Hz -> {target_rate} Hz")
    return np.clip(x, -1.0, 1.0)


def refuse_or_warn(path: Path, policy: AudioPolicy, problem: str, action: str, fix: str) -> None:
    """One policy for files that can be used with a change: under policy.strict an AudioError
    "PATH: problem; fix, or run without strict format checking (...)", otherwise a warning "PATH: problem: action"."""
    if policy.strict:
        raise AudioError(path, f"{problem}; {fix}, or run without strict format checking (data.strict_format=false)")
    warnings.warn(f"{path}: {problem}: {action}", stacklevel=3)


def wav_data_shortfall(path: Path) -> tuple[int, int] | None:
    """(bytes of sample data a WAV header declares, bytes the file holds) if the data chunk is cut short, else None
    (also for non-WAV files and for the 0xFFFFFFFF "unknown length" of streamed WAVs). libsndfile silently
    reads what is there, so a truncated download would otherwise pass unnoticed."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return None
        pos = 12
        while True:                                    # walk the RIFF chunks up to "data"
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            n = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                present = size - pos - 8
                return (n, present) if n != 0xFFFFFFFF and n > present else None
            pos += 8 + n + (n & 1)                     # chunks are padded to an even size


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
