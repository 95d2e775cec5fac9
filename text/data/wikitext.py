"""WikiText-103 and WikiText-2 (Merity et al. 2016), the tokenised v1 release: `wiki.{train,valid,test}.tokens`.

Word-level: one `<eos>` per line (the TransformerXL convention), vocabulary from the training file
sorted by count (ties in order of first appearance) so that adaptive softmax cutoffs fall on frequency
bands; per-word training counts are kept (`ds.train_counts`) for frequency-stratified evaluation
(the paper's Table 7). Documents start at top-level headings (` = Title = `).
"""
from __future__ import annotations

import zipfile
from array import array
from collections import Counter
from pathlib import Path

import numpy as np

from .cache import Builder, load_or_build
from .errors import DataError
from .files import download, not_found, progress, read_utf8, source_stamp
from .vocab import EOS, UNK, SymbolVocab

URLS = {
    "wikitext103": ("https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip",
                    "https://wikitext.smerity.com/wikitext-103-v1.zip"),
    "wikitext2": ("https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
                  "https://wikitext.smerity.com/wikitext-2-v1.zip"),
}
# Published token counts (Merity et al. 2016), <eos> included: a mismatch means a truncated or edited file.
TOKENS = {
    "wikitext103": {"train": 103_227_021, "valid": 217_646, "test": 245_569},
    "wikitext2": {"train": 2_088_628, "valid": 217_646, "test": 245_569},
}
FILES = {"train": "wiki.train.tokens", "valid": "wiki.valid.tokens", "test": "wiki.test.tokens"}
# Without the train file (allow_partial), the validation file's last articles (about this fraction of its
# tokens) are held out as the valid split and the rest is trained on.
HELD_OUT = 0.1


def _read_sources(source: Path) -> dict[str, tuple[str, str]]:
    """{split: (where, text)} from a folder of .tokens files or the official zip; missing splits left out."""
    if not source.exists():
        raise not_found(source, "not found; pass the folder with wiki.*.tokens or the official zip")
    out = {}
    if source.is_dir():
        for split, fname in FILES.items():
            p = source / fname
            if p.exists():
                out[split] = (str(p), read_utf8(p))
        return out
    try:
        with zipfile.ZipFile(source) as z:
            for member in z.namelist():
                for split, fname in FILES.items():
                    if member.endswith("/" + fname) or member == fname:
                        try:
                            out[split] = (f"{source}:{member}", z.read(member).decode("utf-8"))
                        except UnicodeDecodeError as e:
                            raise DataError(f"{source}:{member}: invalid UTF-8 at byte {e.start}; re-download") from None
    except zipfile.BadZipFile as e:
        raise DataError(f"{source}: not a folder or a valid zip ({e}); re-download it") from None
    return out


def _lines(text: str):
    """Yield each line's words plus `<eos>`; the file's final newline does not open an extra line.
    A generator: WikiText-103's 103M words as Python lists would need several GB."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        yield line.split() + [EOS]


def build_vocab(text: str) -> SymbolVocab:
    counts: Counter = Counter()
    for words in _lines(text):
        counts.update(words)
    return SymbolVocab(sorted(counts, key=lambda w: -counts[w]))  # stable sort: ties keep first appearance


def _is_heading(words: list[str]) -> bool:
    """` = Title = ` (an article start), not ` = = Section = = `."""
    return len(words) >= 4 and words[0] == "=" and words[-2] == "=" and words[1] != "="


def encode_text(vocab: SymbolVocab, text: str, where: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(ids [N], document starts, number of out-of-vocabulary words mapped to <unk>)."""
    unk = vocab.index.get(UNK, -1)
    buf = array("i")  # compact int32 accumulator: no per-word Python objects kept
    starts, oov = [], 0
    for words in progress(_lines(text), desc=f"encode {Path(where).name}", unit="line", leave=False):
        if _is_heading(words):
            starts.append(len(buf))
        ids = [vocab.index.get(w, -1) for w in words]
        if -1 in ids:
            if unk < 0:
                raise DataError(f"{where}: {words[ids.index(-1)]!r} is not in the vocabulary and it has no {UNK}; "
                                "are the .tokens files all from the same WikiText release?")
            oov += ids.count(-1)
            ids = [unk if i < 0 else i for i in ids]
        buf.extend(ids)
    return np.frombuffer(buf, dtype=np.int32).copy(), np.array(starts, dtype=np.int64), oov


def build(b: Builder, name: str, source: Path, allow_partial: bool) -> None:
    texts = _read_sources(source)
    for split in ("valid", "test"):
        if split not in texts:
            raise DataError(f"{source}: {FILES[split]} is missing; re-download {URLS[name][0]}")
    if "train" not in texts and not allow_partial:
        raise DataError(
            f"{source}: {FILES['train']} is missing; re-download {URLS[name][0]}, or pass --allow-partial "
            "to build the vocabulary from the validation file (results then say partial)"
        )
    if source.is_dir():
        for split in texts:
            b.add_source(source_stamp(source / FILES[split]))
    else:
        b.add_source(source_stamp(source))
    vocab_from = "train" if "train" in texts else "valid"
    if vocab_from == "valid":
        b.mark_partial(f"{FILES['train']} absent: vocabulary built from {FILES['valid']}, whose articles up to "
                       f"{1 - HELD_OUT:.0%} of its tokens serve as the train split and the rest as the valid split")
    vocab = build_vocab(texts[vocab_from][1])
    b.set_vocab(vocab)
    b.manifest["vocab_from"] = FILES[vocab_from]
    for split in ("valid", "test", "train"):  # the small files first: a truncated one fails fast
        if split == "train" and vocab_from == "valid":
            continue                          # made from the validation file below
        ids, starts, oov = encode_text(vocab, texts[split][1], texts[split][0])
        expected = TOKENS[name][split]
        if len(ids) != expected:
            msg = f"{texts[split][0]}: {len(ids):,} tokens (with <eos>), the published {name} {split} has {expected:,}"
            if not allow_partial:
                raise DataError(msg + "; the file is truncated or edited: re-download it (or pass --allow-partial)")
            b.mark_partial(msg)
        if split == "valid" and vocab_from == "valid":
            # no train file: hold whole articles out, so that validation scores text the model was not trained on
            cut = held_out_start(ids, starts)
            b.add_split("train", ids[:cut], starts[starts < cut], source=texts[split][0], word_count=None,
                        oov_to_unk=oov)
            ids, starts = ids[cut:], starts[starts >= cut] - cut
        b.add_split(split, ids, starts, source=texts[split][0], word_count=None, oov_to_unk=oov)


def held_out_start(ids: np.ndarray, starts: np.ndarray) -> int:
    """The first article start at or after (1 - HELD_OUT) of the tokens (the last start if none is)."""
    if not len(starts):
        raise DataError("the validation file has no article headings (' = Title = ' lines) to split at")
    k = np.searchsorted(starts, int((1 - HELD_OUT) * len(ids)))
    return int(starts[min(k, len(starts) - 1)])


def prepare(name: str, data_dir: Path, source, allow_partial: bool):
    if source is None:
        src = Path(data_dir).expanduser() / "downloads" / URLS[name][0].rsplit("/", 1)[1]
        if not src.exists():
            for k, url in enumerate(URLS[name]):
                try:
                    download(url, src)
                    break
                except DataError:
                    if k == len(URLS[name]) - 1:
                        raise
    else:
        src = Path(source).expanduser()
    params = {"dataset": name, "source": str(src.resolve()), "allow_partial": bool(allow_partial),
              "held_out": HELD_OUT}
    return load_or_build(data_dir, name, "word", params, lambda b: build(b, name, src, allow_partial))
