"""PG-19 (Rae et al. 2020) and `books:DIR`, any folder of Project Gutenberg style .txt books.

Subword level: a sentencepiece BPE vocabulary (32,000 pieces in the paper; BPE because sentencepiece
trains it ~15x faster than unigram at the same compression here) trained on the training books
only. Hard line wraps are undone (a paragraph is one line for sentencepiece) and paragraph breaks are
kept as one `<nl>` piece, so samples keep their layout. Each book is a document (memory resets there).
Word-level perplexity = exp(total nats / whitespace-separated words of the split's text); on the
official PG-19 splits the official word counts are used.

`books:DIR` splits whole books into train / valid / test deterministically by a hash of the file name
(at least one book in each held-out split) and strips the Project Gutenberg header and license footer
(everything outside the `*** START OF` / `*** END OF` markers), as PG-19 did.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .cache import Builder, load_or_build
from .errors import DataError
from .files import not_found, progress, read_utf8, source_stamp
from .vocab import NEWLINE, SentencePieceVocab

OFFICIAL_DIRS = {"train": "train", "valid": "validation", "test": "test"}
OFFICIAL_BOOKS = {"valid": 50, "test": 100}
OFFICIAL_WORDS = {"valid": 3_007_061, "test": 6_966_499}
DOWNLOAD_HINT = "download PG-19 with `gsutil -m cp -r gs://deepmind-gutenberg DIR` (https://github.com/deepmind/pg19)"
HELD_OUT_FRACTION = 0.05
_START = re.compile(r"^\s*\*\*\*\s*START OF.*$", re.MULTILINE)
_END = re.compile(r"^\s*\*\*\*\s*END OF.*$", re.MULTILINE)
_PARAGRAPH = re.compile(r"\n\s*\n")


def strip_gutenberg(text: str) -> tuple[str, bool]:
    """(body between the `*** START OF` and `*** END OF` lines, whether both markers were found).

    A missing marker keeps that end of the text (some books lack the footer)."""
    start, end = _START.search(text), None
    body_from = start.end() if start else 0
    end = _END.search(text, body_from)
    body_to = end.start() if end else len(text)
    return text[body_from:body_to], bool(start and end)


def paragraphs(text: str) -> list[str]:
    """Paragraphs with hard line wraps joined: blank lines separate paragraphs."""
    paras = (" ".join(p.split()) for p in _PARAGRAPH.split(text))
    return [p for p in paras if p]


def split_books(paths: list[Path], max_books: int | None) -> dict[str, list[Path]]:
    """Whole books to splits by a hash of the file name: stable when books are added elsewhere in the folder."""
    order = sorted(paths, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
    if max_books:
        order = order[:max_books]
    if len(order) < 3:
        raise DataError(f"{paths[0].parent if paths else 'books folder'}: needs at least 3 books "
                        f"(one each for train, valid, test), found {len(order)}")
    n_held = max(1, round(len(order) * HELD_OUT_FRACTION))
    return {"valid": order[:n_held], "test": order[n_held:2 * n_held], "train": order[2 * n_held:]}


def train_sentencepiece(paras, vocab_size: int, seed: int, where: str = "the training books") -> SentencePieceVocab:
    import io

    import sentencepiece as spm

    if vocab_size < 300:
        raise DataError(f"vocab_size={vocab_size}: too small for a byte-fallback sentencepiece model (use >= 300)")
    model = io.BytesIO()
    # sentencepiece only takes its sampling seed process-wide; set it right before training
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(paras), model_writer=model, vocab_size=vocab_size, model_type="bpe",
            character_coverage=0.9999, byte_fallback=True, user_defined_symbols=[NEWLINE],
            input_sentence_size=2_000_000, shuffle_input_sentence=True, hard_vocab_limit=False,
            num_threads=2, minloglevel=2,
        )
    except RuntimeError as e:
        raise DataError(f"sentencepiece training on {where} failed: {e}".strip()) from None
    return SentencePieceVocab(model.getvalue())


def read_book(path: Path, strip: bool) -> tuple[str, bool | None]:
    """(text, whether the Gutenberg markers were found; None when not stripping)."""
    text = read_utf8(path)
    if not strip:
        return text, None
    body, found = strip_gutenberg(text)
    if not body.split():
        raise DataError(f"{path}: no text left after stripping the Project Gutenberg header and footer")
    return body, found


def build(b: Builder, name: str, books: dict[str, list[Path]], strip: bool, vocab_size: int, seed: int) -> None:
    """Books are read one at a time (twice for train: vocabulary, then encoding), so PG-19's 11 GB of
    text never sits in memory."""
    for split, paths in books.items():
        if not paths:
            raise DataError(f"split {split!r} has no books; add .txt files")
        for p in paths:
            b.add_source(source_stamp(p))
    train_paras = (q for p in progress(books["train"], desc="vocabulary", unit="book", leave=False)
                   for q in paragraphs(read_book(p, strip)[0]))
    vocab = train_sentencepiece(train_paras, vocab_size, seed, where=f"the training books in {books['train'][0].parent}")
    b.set_vocab(vocab)
    missing = []
    for split in ("train", "valid", "test"):
        w = b.split_writer(split, source=str(books[split][0].parent))
        words = 0
        for p in progress(books[split], desc=f"encode {split}", unit="book", leave=False):
            text, found = read_book(p, strip)
            if found is False:
                missing.append(p.name)
            words += len(text.split())
            w.start_document()
            for ids in vocab.encode_paragraphs(paragraphs(text)):
                w.append(ids + [vocab.newline_id])
        info = {"books": [p.name for p in books[split]], "word_count_computed": words}
        if name == "pg19" and len(books[split]) == OFFICIAL_BOOKS.get(split):
            words, info["word_count_source"] = OFFICIAL_WORDS[split], "official"
        w.close(word_count=words, **info)
    if strip:
        b.manifest["gutenberg_markers_missing"] = sorted(missing)


def _names_digest(books: dict[str, list[Path]]) -> str:
    """Part of the cache key: adding or removing a book makes a new variant (edits are caught by mtimes)."""
    names = "\n".join(f"{split}/{p.name}" for split in sorted(books) for p in books[split])
    return hashlib.sha256(names.encode()).hexdigest()[:16]


def prepare_pg19(data_dir: Path, source, vocab_size: int, seed: int, max_books: int | None, allow_partial: bool):
    if source is None:
        raise DataError(f"pg19: pass --source DIR holding train/ validation/ test/; {DOWNLOAD_HINT}")
    root = Path(source).expanduser()
    books = {}
    for split, sub in OFFICIAL_DIRS.items():
        d = root / sub
        if not d.is_dir():
            raise not_found(d, f"missing; {DOWNLOAD_HINT}")
        books[split] = sorted(d.glob("*.txt"))[:max_books] if max_books else sorted(d.glob("*.txt"))
    if max_books and not allow_partial:
        raise DataError(f"{root}: max_books={max_books} uses part of PG-19; pass --allow-partial")
    params = {"dataset": "pg19", "source": str(root.resolve()), "vocab_size": vocab_size, "seed": seed,
              "max_books": max_books, "books": _names_digest(books)}

    def _build(b: Builder) -> None:
        if max_books:
            b.mark_partial(f"at most {max_books} books per split")
        build(b, "pg19", books, strip=False, vocab_size=vocab_size, seed=seed)

    return load_or_build(data_dir, "pg19", "subword", params, _build)


def prepare_books(directory: str, data_dir: Path, vocab_size: int, seed: int, max_books: int | None):
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise not_found(root, f"not a folder of .txt books (books:{directory})")
    books = split_books(sorted(root.glob("*.txt")), max_books)
    params = {"dataset": "books", "source": str(root.resolve()), "vocab_size": vocab_size, "seed": seed,
              "max_books": max_books, "books": _names_digest(books)}
    name = f"books_{re.sub(r'[^A-Za-z0-9_.-]', '_', root.name)}"
    return load_or_build(data_dir, name, "subword", params,
                         lambda b: build(b, "books", books, strip=True, vocab_size=vocab_size, seed=seed))
