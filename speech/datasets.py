"""Speech corpora: any folder of WAV/FLAC, the Free Spoken Digit Dataset by name, and `synthetic-speech`.

A corpus is three lists of clips (train / valid / test), each clip a 1-D uint8 tensor of mu-law classes at the
preset's sample rate: one byte per sample, encoded as each file is read (no float or int64 copy of the corpus is
held); the streams hand the models int64 windows. Splits are by file or by speaker, never by time within a file, so held-out audio is
never a continuation of a training clip.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from speech.audio import AudioError, AudioPolicy, list_audio_files, read_audio
from speech.mulaw import mu_law_encode

DATASETS = ("synthetic-speech", "fsdd", "folder")
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")
FSDD_RELEASE = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"


@dataclass(frozen=True)
class SpeechDataConfig:
    """Where the audio comes from and how it is split and streamed.

    dataset: "synthetic-speech" | "fsdd" | "folder".
    path: folder of audio ("fsdd": the `recordings/` folder or a folder holding it; relative paths are resolved
        against the current directory).
    sample_rate: Hz after resampling. split_by: "file" | "speaker" ("folder" only; fsdd uses its official split:
        takes 0-4 test, `fsdd_valid_takes` of the rest valid).
    speaker_regex: first group of a match on the file stem names the speaker; empty -> parent folder name.
    valid_fraction, test_fraction: shares of files or speakers ("folder", "synthetic-speech").
    reset_at_file_boundary: start each clip on a window boundary with an empty memory (tail padded, not scored).
    skip_bad: report unreadable files and go on. strict_format: stereo / non-16-bit files are errors.
    max_files: use at most this many files per split (0 = all), for CPU presets.
    download: fsdd only: fetch the release into `path` when absent (never in tests).
    synth_*: size of the synthetic corpus; recur_gap_s: distance at which its syllable themes recur.
    """
    dataset: str = "synthetic-speech"
    path: str = ""
    sample_rate: int = 8000
    split_by: str = "file"
    speaker_regex: str = ""
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    fsdd_valid_takes: int = 5
    reset_at_file_boundary: bool = False
    skip_bad: bool = False
    strict_format: bool = False
    max_files: int = 0
    download: bool = False
    seed: int = 0
    synth_files: int = 120
    synth_seconds: float = 3.0
    synth_speakers: int = 6
    recur_gap_s: float = 1.0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"data.dataset={self.dataset!r}: expected one of {', '.join(DATASETS)}")
        if self.dataset in ("fsdd", "folder") and not self.path:
            raise ValueError(f"data.path is empty: dataset {self.dataset!r} needs a folder of audio files")
        if self.split_by not in ("file", "speaker"):
            raise ValueError(f"data.split_by={self.split_by!r}: expected 'file' or 'speaker'")
        if not 1000 <= self.sample_rate <= 96_000:
            raise ValueError(f"data.sample_rate={self.sample_rate}: expected 1000..96000 Hz")
        for name in ("valid_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 0.5:
                raise ValueError(f"data.{name}={getattr(self, name)}: expected a fraction in (0, 0.5)")
        if not 1 <= self.fsdd_valid_takes <= 40:
            raise ValueError(f"data.fsdd_valid_takes={self.fsdd_valid_takes}: expected 1..40")
        if self.max_files < 0 or self.synth_files < 3 or self.synth_speakers < 1 or self.synth_seconds <= 0:
            raise ValueError("data.max_files must be >= 0, data.synth_files >= 3, data.synth_speakers >= 1, "
                             "data.synth_seconds > 0")
        if self.speaker_regex:
            try:
                re.compile(self.speaker_regex)
            except re.error as e:
                raise ValueError(f"data.speaker_regex={self.speaker_regex!r} is not a regular expression: {e}")


@dataclass
class Corpus:
    """Mu-law clips per split. splits[name]: list of [N_i] uint8 tensors; names[name]: their file names."""
    splits: dict[str, list[torch.Tensor]]
    names: dict[str, list[str]]
    bad_files: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) skipped under skip_bad
    sample_rate: int = 8000

    def samples(self, split: str) -> int:
        return sum(int(c.numel()) for c in self.splits[split])


def fsdd_split(stem: str, valid_takes: int) -> str | None:
    """Official FSDD split by take index: 0-4 test; the next `valid_takes` takes valid; the rest train."""
    m = FSDD_NAME.match(stem)
    if not m:
        return None
    take = int(m.group(3))
    return "test" if take < 5 else "valid" if take < 5 + valid_takes else "train"


def find_fsdd_recordings(path: str | Path) -> Path:
    """The folder holding `{digit}_{speaker}_{take}.wav` files: `path` itself or `path/recordings`."""
    path = Path(path)
    for cand in (path, path / "recordings"):
        if cand.is_dir() and any(FSDD_NAME.match(p.stem) for p in cand.glob("*.wav")):
            return cand
    raise AudioError(path, "no FSDD recordings here ({digit}_{speaker}_{take}.wav); set data.path to the "
                           "`recordings` folder, or data.download=true to fetch the release")


def download_fsdd(dest: str | Path, url: str = FSDD_RELEASE) -> Path:
    """Download and unpack the FSDD release's `recordings/` into `dest/recordings` (atomic rename). Not for tests."""
    import io
    import os
    import tarfile
    import tempfile
    import urllib.request

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / "recordings"
    if final.is_dir() and any(final.glob("*.wav")):
        return final
    with urllib.request.urlopen(url, timeout=120) as r:
        blob = r.read()
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".recordings."))
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for m in tar.getmembers():
            if m.isfile() and "/recordings/" in m.name and m.name.endswith(".wav") and ".." not in m.name:
                (tmp / Path(m.name).name).write_bytes(tar.extractfile(m).read())
    os.replace(tmp, final)
    return final


def speaker_of(path: Path, root: Path, regex: str) -> str:
    if regex:
        m = re.search(regex, path.stem)
        if m is None:
            raise AudioError(path, f"file name does not match data.speaker_regex={regex!r}")
        return m.group(1) if m.groups() else m.group(0)
    return path.parent.name if path.parent != root else path.stem


def assign_splits(keys: list[str], valid_fraction: float, test_fraction: float, seed: int, what: str) -> dict[str, str]:
    """Seeded split of distinct keys (files or speakers) -> {key: split}; each split gets at least one key."""
    uniq = sorted(set(keys))
    if len(uniq) < 3:
        raise ValueError(f"splitting by {what} needs at least 3 distinct {what}s, found {len(uniq)}: {uniq[:5]}")
    order = np.random.default_rng(seed).permutation(len(uniq))
    n_test = max(1, round(test_fraction * len(uniq)))
    n_valid = max(1, round(valid_fraction * len(uniq)))
    out = {}
    for rank, i in enumerate(order):
        out[uniq[i]] = "test" if rank < n_test else "valid" if rank < n_test + n_valid else "train"
    return out


def read_files(files: list[Path], cfg: SpeechDataConfig, bad: list[tuple[str, str]]) -> dict[Path, torch.Tensor]:
    """Decode and mu-law-encode files -> {path: [N] uint8}; a bad one raises AudioError (naming it) unless
    cfg.skip_bad, which records it in `bad`."""
    policy = AudioPolicy(strict=cfg.strict_format)
    out = {}
    for f in files:
        try:
            out[f] = encode_clip(read_audio(f, cfg.sample_rate, policy))
        except AudioError as e:
            if not cfg.skip_bad:
                raise
            bad.append((e.path, e.reason))
    return out


def split_folder(cfg: SpeechDataConfig, splits: tuple[str, ...], bad: list[tuple[str, str]]
                 ) -> dict[str, dict[Path, torch.Tensor]]:
    """Mu-law clips per split for the folder-backed datasets.

    fsdd: the official split by take, so only the requested splits are read. folder: every file is read first
    and the split is drawn over the readable ones, so a skipped bad file never leaves a split empty.
    """
    if cfg.dataset == "fsdd":
        root = Path(cfg.path)
        if cfg.download and not (root.is_dir() and any(root.rglob("*.wav"))):
            download_fsdd(root)
        root = find_fsdd_recordings(root)
        by_split: dict[str, list[Path]] = {s: [] for s in splits}
        for f in list_audio_files(root):
            s = fsdd_split(f.stem, cfg.fsdd_valid_takes)
            if s is None:
                warnings.warn(f"{f}: not an FSDD name ({{digit}}_{{speaker}}_{{take}}.wav); ignored", stacklevel=2)
            elif s in by_split:
                by_split[s].append(f)
        return {s: read_files(limit(fs, cfg.max_files, cfg.seed), cfg, bad) for s, fs in by_split.items()}
    root = Path(cfg.path)
    audio = read_files(list_audio_files(root), cfg, bad)
    files = list(audio)
    keys = {f: speaker_of(f, root, cfg.speaker_regex) if cfg.split_by == "speaker" else str(f) for f in files}
    n_keys = len(set(keys.values()))
    if n_keys < 3:   # say where, and which files were skipped (assign_splits knows neither)
        raise AudioError(root, f"{n_keys} readable {cfg.split_by}(s) here, and splitting by {cfg.split_by} needs "
                               f"at least 3 (one per split){skipped_note(bad)}; add audio files or fix the skipped ones")
    table = assign_splits(list(keys.values()), cfg.valid_fraction, cfg.test_fraction, cfg.seed, cfg.split_by)
    split_of = {f: table[keys[f]] for f in files}
    return {s: {f: audio[f] for f in limit([f for f in files if split_of[f] == s], cfg.max_files, cfg.seed)}
            for s in splits}


def limit(items: list, n: int, seed: int) -> list:
    """A seeded subset of n items (all if n == 0), kept in their original order."""
    if n == 0 or len(items) <= n:
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
    return [items[i] for i in keep]


def encode_clip(wave: np.ndarray) -> torch.Tensor:
    """[N] float in [-1, 1] -> [N] uint8 mu-law classes (per clip: no float copy of a whole corpus is ever made;
    2,500 FSDD clips encode faster one by one than concatenated)."""
    return mu_law_encode(torch.from_numpy(wave))


def skipped_note(bad: list[tuple[str, str]], show: int = 10) -> str:
    """"; N unreadable file(s) skipped: PATH (reason), ..." for error messages ("" if none were skipped)."""
    if not bad:
        return ""
    listed = "; ".join(f"{p} ({r})" for p, r in bad[:show])
    more = f"; and {len(bad) - show} more" if len(bad) > show else ""
    return f"; {len(bad)} unreadable file(s) skipped under --skip-bad: {listed}{more}"


def load_corpus(cfg: SpeechDataConfig, splits: tuple[str, ...] = ("train", "valid", "test")) -> Corpus:
    """Read, resample and mu-law-encode the requested splits.

    Bad files raise AudioError naming the file; with cfg.skip_bad they are collected in `Corpus.bad_files`
    and the rest is used (an error if a split ends up empty).
    """
    clips: dict[str, list[torch.Tensor]] = {s: [] for s in splits}
    names: dict[str, list[str]] = {s: [] for s in splits}
    bad: list[tuple[str, str]] = []
    if cfg.dataset == "synthetic-speech":
        from speech.synth import synthetic_corpus

        utts = synthetic_corpus(cfg.synth_files, cfg.synth_seconds, cfg.synth_speakers, cfg.sample_rate, cfg.seed,
                                cfg.recur_gap_s)
        table = assign_splits([u[0] for u in utts], cfg.valid_fraction, cfg.test_fraction, cfg.seed, "file") \
            if cfg.split_by == "file" else None
        if table is None:
            spk = assign_splits([u[1] for u in utts], cfg.valid_fraction, cfg.test_fraction, cfg.seed, "speaker")
        for name, speaker, x in utts:
            s = table[name] if table is not None else spk[speaker]
            if s in clips:
                clips[s].append(x)
                names[s].append(name)
        for s in splits:
            keep = limit(list(range(len(clips[s]))), cfg.max_files, cfg.seed)
            clips[s], names[s] = [encode_clip(clips[s][i]) for i in keep], [names[s][i] for i in keep]
        return Corpus(clips, names, bad, cfg.sample_rate)
    for s, audio in split_folder(cfg, splits, bad).items():
        if not audio:
            raise AudioError(cfg.path, f"split {s!r} has no usable audio files{skipped_note(bad)}")
        clips[s], names[s] = list(audio.values()), [str(f) for f in audio]
    return Corpus(clips, names, bad, cfg.sample_rate)
