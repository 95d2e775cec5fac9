"""The prepared-dataset cache: one folder per dataset variant, holding memory-mapped token arrays and
a `manifest.json`.

Layout (`DATA_DIR/<name>-<key>/`):
    manifest.json          written last; its presence under the final name is what makes a cache trusted
    train.npy valid.npy test.npy              1-D token ids (uint8 / uint16 / int32)
    train.docs.npy ...                        int64 document start offsets per split
    train_counts.npy       optional [V] int64 training counts per token id
    vocab.<kind>           the vocabulary (see vocab.py)
    <extra>.npy            dataset-specific arrays (longrange annotations)

A build happens in `DATA_DIR/.tmp-<name>-<random>/` and is renamed into place only when complete, so an
interrupted or failed preparation leaves nothing that a later run would trust. A lock file serialises
concurrent preparations of the same variant (several DDP ranks on one machine).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from core.run.io import atomic_write_json

from .errors import DataError
from .files import file_digest, progress
from .vocab import Vocab, load_vocab

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
_ALIASES = {"validation": "valid", "val": "valid", "dev": "valid"}
_HASH_LIMIT = 64 << 20  # files up to this size are re-hashed on every load; larger ones are size-checked


def canonical_split(name: str) -> str:
    name = _ALIASES.get(name, name)
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}: use one of {', '.join(SPLITS)}")
    return name


def token_dtype(vocab_size: int) -> np.dtype:
    """The narrowest dtype that holds every id (uint8 for bytes, uint16 for most vocabularies)."""
    if vocab_size <= 256:
        return np.dtype(np.uint8)
    if vocab_size <= 65536:
        return np.dtype(np.uint16)
    return np.dtype(np.int32)


class Dataset:
    """A prepared dataset, read from its cache folder. Token arrays are memory-mapped, never loaded whole."""

    def __init__(self, path: Path, manifest: dict, vocab: Vocab):
        self.path = Path(path)
        self.manifest = manifest
        self.vocab = vocab
        self.name: str = manifest["name"]
        self.unit: str = manifest["unit"]
        self.partial: bool = bool(manifest["partial"])

    def split(self, name: str) -> np.ndarray:
        """Token ids of a split: [N] memory-mapped, read-only."""
        return np.load(self.path / f"{canonical_split(name)}.npy", mmap_mode="r")

    def doc_starts(self, name: str) -> np.ndarray:
        """Offsets (into `split(name)`) where documents start: [D] int64, sorted, first is 0."""
        return np.load(self.path / f"{canonical_split(name)}.docs.npy")

    @property
    def train_counts(self) -> np.ndarray | None:
        """[V] int64 number of occurrences of each id in the training split (None if not kept)."""
        p = self.path / "train_counts.npy"
        return np.load(p) if p.exists() else None

    def word_count(self, split: str) -> int | None:
        """Whitespace-separated words of the split's original text, for word-level perplexity
        (exp(total nats / words)); None where the unit already is the word or words do not apply."""
        return self.manifest["splits"][canonical_split(split)].get("word_count")

    def array(self, name: str) -> np.ndarray:
        """A dataset-specific extra array saved with the cache (e.g. longrange annotations)."""
        p = self.path / f"{name}.npy"
        if not p.exists():
            raise DataError(f"{p}: dataset {self.name} has no array {name!r}")
        return np.load(p, mmap_mode="r")

    def check_vocab(self, fingerprint: str, where: str = "the checkpoint") -> None:
        """Raise DataError unless `fingerprint` (stored by a trainer) is this dataset's vocabulary."""
        if fingerprint != self.vocab.fingerprint:
            raise DataError(
                f"{where} was made with a different vocabulary than dataset {self.name} at {self.path} "
                f"({fingerprint[:12]} vs {self.vocab.fingerprint[:12]}): evaluate it on the dataset it was "
                "trained on, or retrain"
            )

    def __repr__(self) -> str:
        sizes = {s: self.manifest["splits"][s]["tokens"] for s in SPLITS}
        flag = ", partial" if self.partial else ""
        return f"Dataset({self.name!r}, unit={self.unit}, vocab={self.vocab.size}, tokens={sizes}{flag})"


class Builder:
    """Collects what a dataset module produces, in a temporary folder, and writes the manifest last."""

    def __init__(self, tmpdir: Path, name: str, unit: str, params: dict):
        self.dir = Path(tmpdir)
        self.manifest: dict = {
            "format": FORMAT_VERSION, "name": name, "unit": unit, "params": params,
            "partial": False, "partial_reason": None, "sources": [], "splits": {}, "files": {},
        }
        self.vocab: Vocab | None = None
        self.bar = progress(total=1 + len(SPLITS), desc=f"prepare {name}", unit="part")   # vocabulary, splits

    def _record(self, fname: str) -> None:
        p = self.dir / fname
        self.manifest["files"][fname] = {"bytes": p.stat().st_size, "sha256": file_digest(p)}

    def _save(self, fname: str, arr: np.ndarray) -> None:
        with open(self.dir / fname, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        self._record(fname)

    def set_vocab(self, vocab: Vocab) -> None:
        self.vocab = vocab
        info = vocab.save(self.dir)
        self._record(info["file"])
        self.manifest["vocab"] = info
        self.bar.update(1)

    def add_source(self, stamp: dict) -> None:
        self.manifest["sources"].append(stamp)

    def mark_partial(self, reason: str) -> None:
        self.manifest["partial"] = True
        prev = self.manifest["partial_reason"]
        self.manifest["partial_reason"] = reason if not prev else f"{prev}; {reason}"

    def split_writer(self, split: str, source: str) -> "SplitWriter":
        """Stream a split to disk piece by piece (PG-19's billions of tokens never sit in memory)."""
        if self.vocab is None:
            raise RuntimeError("set_vocab before writing splits")
        return SplitWriter(self, split, source)

    def add_split(self, split: str, tokens: np.ndarray, doc_starts, source: str,
                  word_count: int | None = None, **info) -> None:
        """A whole split at once. tokens: [N] ids; doc_starts: offsets of document starts (0 is implied)."""
        w = self.split_writer(split, source)
        w.append(tokens)
        w.doc_starts.extend(int(d) for d in doc_starts)
        w.close(word_count=word_count, **info)

    def add_array(self, name: str, arr: np.ndarray) -> None:
        self._save(f"{name}.npy", np.asarray(arr))

    def finish(self) -> dict:
        missing = [s for s in SPLITS if s not in self.manifest["splits"]]
        if missing or self.vocab is None:
            raise RuntimeError(f"dataset builder did not produce {missing or 'a vocabulary'}")
        self.manifest["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        atomic_write_json(self.dir / "manifest.json", self.manifest)
        return self.manifest


class SplitWriter:
    """Appends token ids to a raw file, then turns it into `<split>.npy` (+ documents, + train counts)."""

    def __init__(self, builder: Builder, split: str, source: str):
        self.b, self.split, self.source = builder, split, source
        self.dtype = token_dtype(builder.vocab.size)
        self.raw_path = builder.dir / f"{split}.raw"
        self.raw = open(self.raw_path, "wb")
        self.n = 0
        self.doc_starts: list[int] = [0]
        self.counts = np.zeros(builder.vocab.size, dtype=np.int64)

    def start_document(self) -> None:
        self.doc_starts.append(self.n)

    def append(self, ids) -> None:
        ids = np.asarray(ids)
        if len(ids) == 0:
            return
        if ids.min() < 0 or ids.max() >= len(self.counts):
            raise RuntimeError(f"split {self.split}: ids outside the vocabulary")
        self.raw.write(ids.astype(self.dtype, copy=False).tobytes())
        self.counts += np.bincount(ids, minlength=len(self.counts))
        self.n += len(ids)

    def close(self, word_count: int | None = None, **info) -> None:
        self.raw.close()
        if self.n < 2:
            raise DataError(f"{self.source}: split {self.split!r} is empty (needs at least 2 tokens); check the file")
        fname = f"{self.split}.npy"
        with open(self.b.dir / fname, "wb") as out, open(self.raw_path, "rb") as raw:
            np.lib.format.write_array_header_1_0(
                out, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (self.n,)})
            shutil.copyfileobj(raw, out, 1 << 24)
        self.raw_path.unlink()
        self.b._record(fname)
        docs = np.unique(np.asarray(self.doc_starts, dtype=np.int64))
        self.b._save(f"{self.split}.docs.npy", docs[docs < self.n])
        if self.split == "train":
            self.b._save("train_counts.npy", self.counts)
        self.b.manifest["splits"][self.split] = {
            "tokens": self.n, "docs": int((docs < self.n).sum()), "word_count": word_count, "source": self.source, **info}
        self.b.bar.update(1)


def cache_key(params: dict) -> str:
    blob = json.dumps({"format": FORMAT_VERSION, **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def validate(path: Path) -> tuple[dict | None, str]:
    """(manifest, "") when the cache folder is complete and current, else (None, why not)."""
    mpath = path / "manifest.json"
    if not mpath.exists():
        return None, "no manifest"
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as e:
        return None, f"unreadable manifest ({e})"
    if manifest.get("format") != FORMAT_VERSION:
        return None, f"format {manifest.get('format')} != {FORMAT_VERSION}"
    for fname, info in manifest.get("files", {}).items():
        p = path / fname
        if not p.exists():
            return None, f"{fname} missing"
        if p.stat().st_size != info["bytes"]:
            return None, f"{fname} has {p.stat().st_size} bytes, manifest says {info['bytes']}"
        if info["bytes"] <= _HASH_LIMIT and file_digest(p) != info["sha256"]:
            return None, f"{fname} checksum differs from the manifest (corrupt)"
    for src in manifest.get("sources", []):
        p = Path(src["path"])
        # a deleted source is fine (the cache is self-contained); a changed one makes the cache stale
        if p.exists() and (p.stat().st_size != src["bytes"] or p.stat().st_mtime_ns != src["mtime_ns"]):
            return None, f"source {p} changed since the cache was built"
    return manifest, ""


@contextlib.contextmanager
def _lock(path: Path):
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock, the atomic rename still protects readers
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load_or_build(data_dir: Path, name: str, unit: str, params: dict,
                  build: Callable[[Builder], None]) -> Dataset:
    """Return the cached dataset variant `params`, building it (atomically) if absent, stale or corrupt."""
    data_dir = Path(data_dir).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    final = data_dir / f"{name}-{cache_key(params)}"
    with _lock(data_dir / f".{final.name}.lock"):
        manifest, why = validate(final)
        if manifest is None:
            if final.exists():
                log.warning("rebuilding %s: %s", final, why)
            tmp = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".tmp-{final.name}-"))
            print(f"preparing {name} in {final.resolve()}", file=sys.stderr, flush=True)
            builder = Builder(tmp, name, unit, params)
            try:
                build(builder)
                manifest = builder.finish()
                if final.exists():
                    trash = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".trash-{final.name}-"))
                    os.replace(final, trash / "old")
                    shutil.rmtree(trash, ignore_errors=True)
                os.replace(tmp, final)
            finally:
                builder.bar.close()
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        return Dataset(final, manifest, load_vocab(final, manifest["vocab"]))
