"""Re-mention distances on real text: how far back a word was last seen, and the model's loss by that distance.

The paper's central claim is that the compressed memory helps with dependencies beyond a TransformerXL's
reach (Rae et al. 2020, Sections 1 and 5). The generated `longrange` corpus tests it with a known answer;
this module asks the same question of real text (enwik8, PG-19 / books:DIR, WikiText): for every scored
token, the distance from the start of its word back to the start of the previous occurrence of the same
word in the same document, and the loss summed per distance bin (RUN_DIR/analysis/remention.json).

Words (compared case-sensitively, as strings; "The" and "the" are different words):
    byte    (enwik8) maximal runs of [A-Za-z0-9] and bytes >= 0x80. Bytes >= 0x80 are the parts of multi-byte
            UTF-8 characters, taken as letters (so "café" is one word; a rare non-letter such as an em dash
            glues its neighbours into one word). XML markup is text here: `&quot;` holds the word "quot".
    subword (pg19, books) a word starts at a piece that begins with sentencepiece's "▁" (and after a
            paragraph break, a control piece or a document start) and takes the pieces up to the next
            start. Its string is the pieces' text with leading and trailing non-alphanumeric characters
            stripped ("(Holmes," and "Holmes" are one word); its start is its first piece that holds a
            word character (alphanumeric, or a byte-fallback piece of a byte >= 0x80).
    word    (wikitext) each token is a word, the id is its string.
A token in no word (spaces, punctuation-only pieces or words, `<nl>`, `<eos>`, `<unk>`) is "no word"; the
tokens of a word seen for the first time in its document are "first mention". Distances are in tokens
(bytes for enwik8) between the starts of the two occurrences, so every token of a word shares the
word's distance. Documents: `ds.doc_starts(split)` (books; WikiText articles; enwik8 is one document).

Bins: distance d >= 1 falls in bin i when edges[i-1] < d <= edges[i] (edges[-1] := 0), or in the open bin
after the last edge. The default edges (`grid`) are every multiple of 16 up to 16,384, the powers of two
up to 2^20, and the run's own reach edges (window; + memory; + compression rate x compressed memory), so
that a report can re-bucket the sums at the edges of any CT / TXL pair built from our presets (all their
reach edges are multiples of 16 below 16,384) without the dataset.
"""
from __future__ import annotations

import math
import re

import numpy as np

FIRST = -1      # distance code: the word's first occurrence in its document
NO_WORD = -2    # distance code: the token is in no word
LN2 = math.log(2.0)
_BYTE_WORD = re.compile(rb"[A-Za-z0-9\x80-\xff]+")
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_STRIP = re.compile(r"^[\W_]+|[\W_]+$")   # leading / trailing characters that are not alphanumeric


def grid(reach_edges=(), fine: int = 16, fine_until: int = 16384, max_pow: int = 20) -> list[int]:
    """Bin edges: multiples of `fine` up to `fine_until`, powers of two up to 2^max_pow, and `reach_edges`."""
    edges = set(range(fine, fine_until + 1, fine)) | {2 ** k for k in range(max_pow + 1)}
    return sorted(edges | {int(e) for e in reach_edges if e and e > 0})


def reach_edges(window: int, mem_len: int, cmem_len: int, rate: int) -> list[int]:
    """The distances a model attends over in one layer: [T, T + n_m, T + n_m + c * n_cm] (the compressed
    part only with a compressed memory; the memory part only with a memory)."""
    edges = [window]
    if mem_len:
        edges.append(window + mem_len)
    if cmem_len:
        edges.append(edges[-1] + rate * cmem_len)
    return edges


def _distances(starts: np.ndarray, keys: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """[W] distance from each word occurrence's start back to the previous occurrence of the same key in the
    same document (FIRST where there is none). starts, keys, docs: [W] int64 of the occurrences."""
    order = np.lexsort((starts, keys, docs))          # by document, then word, then position
    s, k, d = starts[order], keys[order], docs[order]
    same = (k[1:] == k[:-1]) & (d[1:] == d[:-1])
    dist_sorted = np.full(len(order), FIRST, dtype=np.int64)
    dist_sorted[1:][same] = s[1:][same] - s[:-1][same]
    out = np.empty_like(dist_sorted)
    out[order] = dist_sorted
    return out


def _doc_of(positions: np.ndarray, doc_starts, n: int) -> np.ndarray:
    starts = np.asarray(doc_starts if doc_starts is not None and len(doc_starts) else [0], dtype=np.int64)
    return np.searchsorted(starts, positions, side="right") - 1


def _finish(n: int, token_occ: np.ndarray, starts: list | np.ndarray, keys: list, doc_starts) -> np.ndarray:
    """Per-token distances [n] from word occurrences (token_occ: [n] occurrence index or -1)."""
    starts = np.asarray(starts, dtype=np.int64)
    out = np.full(n, NO_WORD, dtype=np.int64)
    if len(starts) == 0:
        return out
    _, key_ids = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    occ_dist = _distances(starts, key_ids.astype(np.int64).reshape(-1), _doc_of(starts, doc_starts, n))
    inside = token_occ >= 0
    out[inside] = occ_dist[token_occ[inside]]
    return out


def byte_distances(data, doc_starts=None) -> np.ndarray:
    """[N] int64 distance (bytes) of each byte's word to the word's previous occurrence, FIRST or NO_WORD.
    data: [N] uint8 (or bytes); doc_starts: sorted document offsets (None: one document)."""
    buf = np.asarray(data, dtype=np.uint8).tobytes() if not isinstance(data, (bytes, bytearray)) else bytes(data)
    n = len(buf)
    bounds = sorted({0, n, *(int(s) for s in (doc_starts if doc_starts is not None else []))})
    token_occ = np.full(n, -1, dtype=np.int64)
    starts, keys = [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):       # a word never spans a document boundary
        for m in _BYTE_WORD.finditer(buf, lo, hi):
            token_occ[m.start():m.end()] = len(starts)
            starts.append(m.start())
            keys.append(m.group())
    return _finish(n, token_occ, starts, keys, doc_starts)


def _piece_text(piece: str) -> tuple[str, bool]:
    """(the piece's text without the word-start mark, whether it holds a word character)."""
    b = _BYTE_PIECE.match(piece)
    if b:
        value = int(b.group(1), 16)
        return piece, value >= 0x80 or chr(value).isalnum()
    text = piece.replace("\u2581", "")
    return text, any(ch.isalnum() for ch in text)


def subword_distances(tokens, pieces: list[str], breaks, doc_starts=None) -> np.ndarray:
    """[N] int64 distance (tokens) of each token's word to the word's previous occurrence, FIRST or NO_WORD.

    tokens: [N] ids; pieces: [V] sentencepiece piece strings ("▁" marks a word start, "<0xNN>" a byte);
    breaks: ids that are never in a word and end the current one (`<nl>`, control and unknown pieces)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    n, v = len(tokens), len(pieces)
    texts, wordish = zip(*(_piece_text(p) for p in pieces)) if v else ((), ())
    is_break = np.zeros(v, dtype=bool)
    is_break[list(breaks)] = True
    starts_word = np.array([p.startswith("\u2581") for p in pieces], dtype=bool) | is_break
    wordish = np.array(wordish, dtype=bool) & ~is_break
    new = starts_word[tokens].copy()                 # a token that opens a whitespace word
    if n:
        new[1:] |= is_break[tokens[:-1]]
        docs = np.asarray(doc_starts if doc_starts is not None else [0], dtype=np.int64)
        new[docs[(docs >= 0) & (docs < n)]] = True
        new[0] = True
    token_wordish = wordish[tokens]
    token_occ = np.full(n, -1, dtype=np.int64)
    starts, keys = [], []
    cuts = np.flatnonzero(new).tolist() + [n]
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        inside = np.flatnonzero(token_wordish[lo:hi])
        if not len(inside):
            continue
        key = _STRIP.sub("", "".join(texts[t] for t in tokens[lo:hi].tolist()))
        if not key:
            continue
        token_occ[lo + inside] = len(starts)
        starts.append(lo + int(inside[0]))
        keys.append(key)
    return _finish(n, token_occ, starts, keys, doc_starts)


def word_distances(tokens, symbols: list[str], doc_starts=None) -> np.ndarray:
    """[N] int64 distance (tokens) back to the previous occurrence of the same word-level token; symbols
    without an alphanumeric character and `<...>` specials (`<eos>`, `<unk>`) are NO_WORD."""
    tokens = np.asarray(tokens, dtype=np.int64)
    is_word = np.array([any(c.isalnum() for c in s) and not (s.startswith("<") and s.endswith(">")) for s in symbols],
                       dtype=bool)
    occ = np.flatnonzero(is_word[tokens])
    token_occ = np.full(len(tokens), -1, dtype=np.int64)
    token_occ[occ] = np.arange(len(occ))
    out = np.full(len(tokens), NO_WORD, dtype=np.int64)
    if len(occ):
        dist = _distances(occ.astype(np.int64), tokens[occ], _doc_of(occ, doc_starts, len(tokens)))
        out[occ] = dist
    return out


def split_distances(ds, split: str) -> np.ndarray | None:
    """[N] distances for every token of a prepared dataset's split, or None where words do not apply (the
    generated corpora, which have their own annotations)."""
    from .data.vocab import ByteVocab, SentencePieceVocab, SymbolVocab

    tokens = np.asarray(ds.split(split))
    docs = ds.doc_starts(split)
    vocab = ds.vocab
    if isinstance(vocab, ByteVocab):
        return byte_distances(tokens, docs)
    if isinstance(vocab, SentencePieceVocab):
        sp = vocab.sp
        pieces = [sp.id_to_piece(i) for i in range(vocab.size)]
        breaks = [i for i in range(vocab.size) if sp.is_control(i) or sp.is_unknown(i)] + [vocab.newline_id]
        return subword_distances(tokens, pieces, breaks, docs)
    if isinstance(vocab, SymbolVocab) and ds.unit == "word":
        return word_distances(tokens, vocab.symbols, docs)
    return None


def histogram(distance: np.ndarray, loss_nats: np.ndarray, edges: list[int]) -> dict:
    """Token counts and loss sums (bits) per distance bin, and for first mentions and tokens in no word.
    distance: [N] of the scored tokens (codes FIRST / NO_WORD); loss_nats: [N]."""
    d = np.asarray(distance, dtype=np.int64)
    bits = np.asarray(loss_nats, dtype=np.float64) / LN2
    found = d > 0
    idx = np.searchsorted(np.asarray(edges, dtype=np.int64), d[found], side="left")   # edges[i-1] < d <= edges[i]
    nb = len(edges) + 1
    part = lambda m: {"tokens": int(m.sum()), "bits_sum": float(bits[m].sum())}  # noqa: E731
    return {"edges": [int(e) for e in edges],
            "tokens": np.bincount(idx, minlength=nb).astype(int).tolist(),
            "bits_sum": np.bincount(idx, weights=bits[found], minlength=nb).tolist(),
            "first_mention": part(d == FIRST), "no_word": part(d == NO_WORD),
            "overall": part(np.ones(len(d), dtype=bool))}


def rebucket(hist: dict, edges: list[int]) -> list[dict]:
    """The histogram's bins merged at `edges` (each must be one of the histogram's edges): one dict per
    bucket (lo, hi], the last open (hi None), with tokens and bits (mean bits per token, None when empty)."""
    fine = hist["edges"]
    missing = [e for e in edges if e not in fine]
    if missing:
        raise ValueError(f"edges {missing} are not bin edges of the histogram")
    cut = [0] + [fine.index(e) + 1 for e in edges] + [len(fine) + 1]
    out = []
    for k in range(len(cut) - 1):
        t = int(sum(hist["tokens"][cut[k]:cut[k + 1]]))
        s = float(sum(hist["bits_sum"][cut[k]:cut[k + 1]]))
        out.append({"lo": 0 if k == 0 else edges[k - 1], "hi": edges[k] if k < len(edges) else None,
                    "tokens": t, "bits": s / t if t else None})
    return out


def report(ds, split: str, loss_nats, positions, window: int, mem_len: int, cmem_len: int, rate: int) -> dict | None:
    """RUN_DIR/analysis/remention.json for one evaluation (None where words do not apply): the histogram at
    `grid(reach)`, the reach edges, and the buckets at this run's own reach."""
    dist = split_distances(ds, split)
    if dist is None:
        return None
    reach = reach_edges(window, mem_len, cmem_len, rate)
    hist = histogram(dist[np.asarray(positions, dtype=np.int64)], loss_nats, grid(reach))
    return {"format": 1, "unit": ds.unit, "window": int(window), "mem_len": int(mem_len), "cmem_len": int(cmem_len),
            "compression_rate": int(rate), "reach_edges": reach, **hist,
            "buckets": rebucket(hist, reach),
            "note": "bins: edges[i-1] < distance <= edges[i] (tokens; bytes for enwik8) from the start of a "
                    "token's word to the start of the word's previous occurrence in the same document; "
                    "bits_sum: the model's loss summed in bits; words as text/remention.py defines them"}


def summary(rep: dict) -> dict:
    """The few numbers results.json keeps under "remention"."""
    mean = lambda p: p["bits_sum"] / p["tokens"] if p["tokens"] else None  # noqa: E731
    return {"reach_edges": rep["reach_edges"],
            "buckets": [{k: b[k] for k in ("lo", "hi", "tokens", "bits")} for b in rep["buckets"]],
            "first_mention": {"tokens": rep["first_mention"]["tokens"], "bits": mean(rep["first_mention"])},
            "no_word": {"tokens": rep["no_word"]["tokens"], "bits": mean(rep["no_word"])}}
