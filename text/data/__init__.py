"""Text datasets: preparation into a memory-mapped cache, vocabularies, and the stream batcher.

    from text.data import prepare_dataset, StreamBatcher
    ds = prepare_dataset("longrange", data_dir)          # or enwik8, wikitext103, wikitext2, pg19, books:DIR
    batches = StreamBatcher(ds.split("train"), batch_size=16, window=128, doc_starts=ds.doc_starts("train"))

See docs/text-data.md for each dataset, the download URLs and the cache layout.
"""
from __future__ import annotations

import os
from pathlib import Path

from .batching import StreamBatcher
from .cache import Dataset
from .errors import DataError
from .longrange import LongRangeConfig
from .vocab import Vocab

DEFAULT_DATA_DIR = Path("~/.cache/ctbench")
SPECS = ("enwik8", "wikitext103", "wikitext2", "pg19", "books:DIR", "longrange", "longrange-topic")

__all__ = ["prepare_dataset", "StreamBatcher", "Dataset", "DataError", "LongRangeConfig", "Vocab",
           "DEFAULT_DATA_DIR", "SPECS", "resolve_data_dir"]


def resolve_data_dir(given: str | Path | None = None) -> Path:
    """The dataset cache: `given` (--data-dir, data.data_dir), else $CTBENCH_DATA, else ~/.cache/ctbench."""
    return Path(given or os.environ.get("CTBENCH_DATA", "") or DEFAULT_DATA_DIR).expanduser()


def prepare_dataset(spec: str, data_dir=None, source=None, allow_partial: bool = False,
                    vocab_size: int = 32000, seed: int = 0, *, max_books: int | None = None,
                    longrange: LongRangeConfig | None = None) -> Dataset:
    """Prepare `spec` once into `data_dir` (reusing a valid cache) and return the Dataset.
    data_dir: the cache folder (None or "": $CTBENCH_DATA, else ~/.cache/ctbench).

    spec: "enwik8" | "wikitext103" | "wikitext2" | "pg19" | "books:DIR" | "longrange" | "longrange-topic".
    source: a local file or folder instead of the default download (enwik8: zip or raw file;
      wikitext: folder of wiki.*.tokens or the official zip; pg19: folder with train/ validation/ test/).
    allow_partial: accept incomplete data (an enwik8 prefix, WikiText without its train file, a PG-19
      subset); the manifest and `ds.partial` say so.
    vocab_size, seed: the sentencepiece vocabulary (pg19, books) and the longrange generator seed.
    max_books: use only this many books (books:DIR in total, pg19 per split) to keep tests quick.
    longrange: the generator's configuration (default LongRangeConfig(); for longrange-topic, the same in
      topic mode, default longrange.TOPIC_DEFAULT).
    """
    data_dir = resolve_data_dir(data_dir)
    if spec == "enwik8":
        from . import enwik8

        return enwik8.prepare(data_dir, source, allow_partial)
    if spec in ("wikitext103", "wikitext2"):
        from . import wikitext

        return wikitext.prepare(spec, data_dir, source, allow_partial)
    if spec == "pg19":
        from . import pg19

        return pg19.prepare_pg19(data_dir, source, vocab_size, seed, max_books, allow_partial)
    if spec.startswith("books:"):
        from . import pg19

        return pg19.prepare_books(spec[len("books:"):], data_dir, vocab_size, seed, max_books)
    if spec == "longrange":
        from . import longrange as lr

        return lr.prepare(data_dir, seed, longrange)
    if spec == "longrange-topic":
        from . import longrange as lr

        return lr.prepare(data_dir, seed, lr.topic_config(longrange))
    raise ValueError(f"unknown dataset {spec!r}: use one of {', '.join(SPECS)}")
