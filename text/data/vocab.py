"""Vocabularies: bytes (enwik8), words (WikiText), sentencepiece subwords (PG-19, books), tokens (longrange).

All share one small interface: `.size`, `.encode(str) -> list[int]`, `.decode(ids) -> str`,
`.fingerprint` (sha256 of the saved form; a checkpoint stores it so a model is never evaluated with
another dataset's vocabulary) and `save(dir) -> info`, `load_vocab(dir, info)`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Sequence

from core.run.io import atomic_write_bytes

from .errors import DataError

EOS = "<eos>"
UNK = "<unk>"
NEWLINE = "<nl>"  # paragraph break in subword streams (sentencepiece itself drops newlines)


def split_on(ids: Iterable[int], separator: int) -> list[list[int]]:
    """Cut an id sequence at each `separator` id (dropped): lines of a word stream, paragraphs of a subword one."""
    parts: list[list[int]] = [[]]
    for i in ids:
        i = int(i)
        if i == separator:
            parts.append([])
        else:
            parts[-1].append(i)
    return parts


class Vocab:
    kind = "base"

    def __init__(self, payload: bytes):
        self._payload = payload
        self.fingerprint = hashlib.sha256(self.kind.encode() + b"\0" + payload).hexdigest()

    size: int

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def save(self, directory: Path) -> dict:
        """Write the vocabulary file into `directory`; returns the manifest entry."""
        name = f"vocab.{self.kind}"
        atomic_write_bytes(Path(directory) / name, self._payload)
        return {"kind": self.kind, "file": name, "size": self.size, "fingerprint": self.fingerprint}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class ByteVocab(Vocab):
    """256 byte values; text is UTF-8, newlines kept as byte 10."""

    kind = "byte"

    def __init__(self, payload: bytes = b"bytes-256"):
        super().__init__(payload)
        self.size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


class SymbolVocab(Vocab):
    """A list of symbols, id = position. Words (WikiText) and the longrange tokens use it.

    encode: whitespace-separated symbols; each newline becomes `<eos>` when the vocabulary has one
    (the WikiText convention of one `<eos>` per line). Unknown symbols map to `<unk>` when present.
    """

    kind = "symbols"

    def __init__(self, symbols: Sequence[str]):
        symbols = list(symbols)
        super().__init__("\n".join(symbols).encode("utf-8"))
        self.symbols = symbols
        self.index = {s: i for i, s in enumerate(symbols)}
        if len(self.index) != len(symbols):
            raise DataError("vocabulary has duplicate symbols")
        self.size = len(symbols)

    @classmethod
    def from_payload(cls, payload: bytes) -> "SymbolVocab":
        return cls(payload.decode("utf-8").split("\n"))

    def lookup(self, symbol: str) -> int:
        i = self.index.get(symbol)
        if i is None:
            i = self.index.get(UNK)
            if i is None:
                raise DataError(f"symbol {symbol!r} is not in the vocabulary and it has no {UNK}")
        return i

    def encode(self, text: str) -> list[int]:
        lines = text.split("\n")
        ids: list[int] = []
        for k, line in enumerate(lines):
            ids.extend(self.lookup(w) for w in line.split())
            if k < len(lines) - 1 and EOS in self.index:
                ids.append(self.index[EOS])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        eos = self.index.get(EOS, -1)
        return "\n".join(" ".join(self.symbols[i] for i in line) for line in split_on(ids, eos))


class SentencePieceVocab(Vocab):
    """A trained sentencepiece model plus one `<nl>` piece that separates paragraphs."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        super().__init__(model_proto)
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.size = self.sp.get_piece_size()
        self.newline_id = self.sp.piece_to_id(NEWLINE)
        if self.sp.id_to_piece(self.newline_id) != NEWLINE:
            raise DataError(f"sentencepiece model has no {NEWLINE} piece: it was not trained by ctbench")

    def encode_paragraphs(self, paragraphs: list[str]) -> list[list[int]]:
        return self.sp.encode(paragraphs, num_threads=2)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        lines = text.split("\n")
        for k, piece in enumerate(self.encode_paragraphs(lines)):
            ids.extend(piece)
            if k < len(lines) - 1:
                ids.append(self.newline_id)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return "\n".join(self.sp.decode(part) for part in split_on(ids, self.newline_id))


_KINDS = {"byte": ByteVocab, "symbols": SymbolVocab.from_payload, "sentencepiece": SentencePieceVocab}


def load_vocab(directory: Path, info: dict) -> Vocab:
    """Load the vocabulary a manifest entry describes, checking it is the one the cache was built with."""
    path = Path(directory) / info["file"]
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: vocabulary file missing; delete {directory} to rebuild the cache") from None
    vocab = _KINDS[info["kind"]](payload)
    if vocab.fingerprint != info["fingerprint"]:
        raise DataError(
            f"{path}: vocabulary does not match its manifest (another dataset's vocabulary?); "
            f"delete {directory} to rebuild the cache"
        )
    return vocab
