import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from text.data import DataError, prepare_dataset
from text.data import cache as cache_mod
from text.data import enwik8, pg19
from text_data_fixtures import no_download, shared  # noqa: F401

PREFIX = "enwik8_prefix/enwik8_first_4000000_bytes"


def only_cache_dirs(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.is_dir() and p.name != "downloads")


# ------------------------------------------------------------------------------------------------ enwik8
def test_enwik8_prefix_needs_allow_partial(tmp_path):
    src = shared(PREFIX)
    with pytest.raises(DataError, match="allow-partial") as e:
        prepare_dataset("enwik8", tmp_path, source=src)
    assert src.name in str(e.value)
    assert only_cache_dirs(tmp_path) == []

    ds = prepare_dataset("enwik8", tmp_path, source=src, allow_partial=True)
    raw = np.frombuffer(src.read_bytes(), dtype=np.uint8)
    assert ds.partial and ds.unit == "byte" and ds.vocab.size == 256 and "prefix" in ds.manifest["partial_reason"]
    assert [len(ds.split(s)) for s in ("train", "valid", "test")] == [3_600_000, 200_000, 200_000]
    assert np.array_equal(np.concatenate([ds.split(s) for s in ("train", "valid", "test")]), raw)
    assert ds.split("valid").dtype == np.uint8 and isinstance(ds.split("valid"), np.memmap)
    assert ds.train_counts.sum() == 3_600_000 and ds.train_counts[ord("\n")] > 0  # newlines kept
    assert ds.word_count("test") is None
    sums = dict(line.split()[::-1] for line in (src.parent / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert ds.manifest["sources"][0]["sha256"] == sums[src.name]
    text = "<page>\n  <title>Héllo</title>"
    assert ds.vocab.decode(ds.vocab.encode(text)) == text


def test_enwik8_zip_source_and_cache_reuse(tmp_path):
    data = shared(PREFIX).read_bytes()[:200_000]
    z = tmp_path / "enwik8.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("enwik8", data)
    ds = prepare_dataset("enwik8", tmp_path / "cache", source=z, allow_partial=True)
    assert bytes(np.concatenate([ds.split(s) for s in ("train", "valid", "test")])) == data
    stamp = (ds.path / "manifest.json").stat().st_mtime_ns
    again = prepare_dataset("enwik8", tmp_path / "cache", source=z, allow_partial=True)
    assert again.path == ds.path and (ds.path / "manifest.json").stat().st_mtime_ns == stamp  # reused

    # a corrupted array (same size) is detected and rebuilt
    arr = ds.path / "valid.npy"
    raw = bytearray(arr.read_bytes())
    raw[-1] ^= 0xFF
    arr.write_bytes(bytes(raw))
    fixed = prepare_dataset("enwik8", tmp_path / "cache", source=z, allow_partial=True)
    assert bytes(fixed.split("valid")) == data[180_000:190_000]
    # a changed source makes the cache stale
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("enwik8", data[:100_000])
    assert len(prepare_dataset("enwik8", tmp_path / "cache", source=z, allow_partial=True).split("train")) == 90_000


def test_enwik8_bad_files(tmp_path):
    fake = tmp_path / "enwik8"
    with open(fake, "wb") as f:
        f.truncate(enwik8.SIZE)  # the right size, the wrong bytes
    with pytest.raises(DataError, match="checksum") as e:
        prepare_dataset("enwik8", tmp_path / "c", source=fake)
    assert str(fake) in str(e.value)
    with pytest.raises(DataError, match="not found"):
        prepare_dataset("enwik8", tmp_path / "c", source=tmp_path / "nope.zip")
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("enwik8", os.urandom(50_000))
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[:-100])  # a truncated download
    with pytest.raises(DataError) as e:
        prepare_dataset("enwik8", tmp_path / "c", source=cut)
    assert "cut.zip" in str(e.value)
    # with no source and no file, it would download: refused in tests, naming the URL
    with pytest.raises(DataError, match="mattmahoney.net"):
        prepare_dataset("enwik8", tmp_path / "c")


def test_enwik8_download_path_checks_the_file(tmp_path, monkeypatch):
    calls = []

    def fake_download(url, dest):
        calls.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dest, "w") as f:
            f.writestr("enwik8", b"x" * 1000)
        return dest

    monkeypatch.setattr(enwik8, "download", fake_download)
    with pytest.raises(DataError, match="shorter than"):
        prepare_dataset("enwik8", tmp_path)
    assert calls == [enwik8.URL] and (tmp_path / "downloads" / "enwik8.zip").exists()


# ------------------------------------------------------------------------------------------- atomicity
def test_failed_preparation_leaves_nothing_trusted(tmp_path, monkeypatch):
    src = tmp_path / "e8"
    src.write_bytes(b"abc\n" * 10_000)
    real = cache_mod.Builder.add_split

    def crash(self, split, *a, **k):
        if split == "valid":
            raise KeyboardInterrupt("killed midway")
        return real(self, split, *a, **k)

    monkeypatch.setattr(cache_mod.Builder, "add_split", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("enwik8", tmp_path / "c", source=src, allow_partial=True)
    assert only_cache_dirs(tmp_path / "c") == []   # no cache and no leftover temporary folder
    monkeypatch.setattr(cache_mod.Builder, "add_split", real)
    # a crash that could not clean up (power loss) leaves a .tmp folder: never trusted, never in the way
    (tmp_path / "c" / ".tmp-enwik8-junk").mkdir()
    ds = prepare_dataset("enwik8", tmp_path / "c", source=src, allow_partial=True)
    assert len(ds.split("train")) == 36_000
    # a cache folder without its manifest (written last) is rebuilt
    (ds.path / "manifest.json").unlink()
    assert prepare_dataset("enwik8", tmp_path / "c", source=src, allow_partial=True).manifest["splits"]


# -------------------------------------------------------------------------------------------- wikitext
def test_wikitext2_validation_file_prepares(tmp_path):
    src = shared("wikitext2")
    with pytest.raises(DataError, match="wiki.train.tokens") as e:
        prepare_dataset("wikitext2", tmp_path, source=src)
    assert "allow-partial" in str(e.value)
    ds = prepare_dataset("wikitext2", tmp_path, source=src, allow_partial=True)
    assert ds.partial and ds.unit == "word" and ds.manifest["vocab_from"] == "wiki.valid.tokens"
    # the validation file is split by whole articles: train, then about the last 10% held out as valid
    train, valid = ds.split("train"), ds.split("valid")
    assert len(train) + len(valid) == 217_646 and len(ds.split("test")) == 245_569  # published counts
    assert 0.05 < len(valid) / 217_646 < 0.15 and ds.doc_starts("valid")[0] == 0
    v = ds.vocab
    assert v.decode(valid[:1]) == "=" and v.decode(valid[1:2]) != "="             # an article heading, not a section
    eos = v.index["<eos>"]
    counts = ds.train_counts
    assert np.array_equal(counts, np.bincount(train, minlength=v.size))        # training counts: the train part only
    assert counts[eos] + int((valid == eos).sum()) == 3760                     # one <eos> per line of the file
    assert v.symbols[0] == "the" and "<unk>" in v.index                         # vocabulary: the whole file
    assert ds.manifest["splits"]["test"]["oov_to_unk"] > 0
    lines = (src / "wiki.valid.tokens").read_text().split("\n")
    assert v.decode(train[:len(lines[1].split()) + 2]) == "\n" + lines[1].strip() + "\n"
    starts = ds.doc_starts("train")
    for s in starts[1:6]:
        assert v.decode(train[s:s + 1]) == "="
    assert len(starts) > 50 and len(ds.doc_starts("valid")) == 5   # 5 whole articles held out
    assert ds.word_count("valid") is None


def test_wikitext_truncated_and_bad_utf8(tmp_path):
    src = shared("wikitext2")
    d = tmp_path / "wt"
    d.mkdir()
    (d / "wiki.train.tokens").write_text(" = A = \n the cat sat \n")
    (d / "wiki.valid.tokens").write_text(" the dog \n")
    shutil.copy(src / "wiki.test.tokens", d / "wiki.test.tokens")
    with pytest.raises(DataError, match="same WikiText release") as e:   # words outside a train vocabulary
        prepare_dataset("wikitext2", tmp_path / "c", source=d)
    assert "wiki.valid.tokens" in str(e.value)
    (d / "wiki.train.tokens").write_text(" = A = \n the cat sat <unk> \n")
    valid = (src / "wiki.valid.tokens").read_bytes()
    (d / "wiki.valid.tokens").write_bytes(valid[: len(valid) // 2])
    with pytest.raises(DataError, match="truncated") as e:
        prepare_dataset("wikitext2", tmp_path / "c", source=d)
    assert "wiki.valid.tokens" in str(e.value) and "217,646" in str(e.value)
    (d / "wiki.valid.tokens").write_bytes(b"good \xff bad\n")
    with pytest.raises(DataError, match="UTF-8") as e:
        prepare_dataset("wikitext2", tmp_path / "c", source=d)
    assert "wiki.valid.tokens" in str(e.value)
    (d / "wiki.valid.tokens").write_bytes(b"")
    with pytest.raises(DataError, match="empty") as e:
        prepare_dataset("wikitext2", tmp_path / "c", source=d, allow_partial=True)
    assert "wiki.valid.tokens" in str(e.value)
    assert only_cache_dirs(tmp_path / "c") == []


# ------------------------------------------------------------------------------------------ books / pg19
BOOK = """The Project Gutenberg eBook of {t}\n\nLicense blah.\n\n*** START OF THE PROJECT GUTENBERG EBOOK {t} ***\n
Chapter I.\n\n{body}\n\n*** END OF THE PROJECT GUTENBERG EBOOK {t} ***\n\nSection 5. General Information\n"""


def test_strip_gutenberg_and_paragraphs():
    text = BOOK.format(t="X", body="It was a dark\nand stormy night.\n\nThe end.")
    body, ok = pg19.strip_gutenberg(text)
    assert ok and "Gutenberg" not in body and "General Information" not in body
    assert pg19.paragraphs(body) == ["Chapter I.", "It was a dark and stormy night.", "The end."]
    assert pg19.strip_gutenberg("no markers at all")[1] is False


def test_books_gutenberg_prepares(tmp_path):
    src = shared("gutenberg")
    ds = prepare_dataset(f"books:{src}", tmp_path, vocab_size=400, max_books=4)
    splits = {s: ds.manifest["splits"][s]["books"] for s in ("train", "valid", "test")}
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [2, 1, 1]
    names = sorted(p.name for p in src.glob("*.txt"))
    assert splits == {s: [p.name for p in v] for s, v in pg19.split_books([src / n for n in names[::-1]], 4).items()}
    assert ds.unit == "subword" and ds.vocab.size == 400 and not ds.partial
    assert ds.manifest["gutenberg_markers_missing"] == [] or all(n in names for n in ds.manifest["gutenberg_markers_missing"])
    for split in ("valid", "test"):
        toks, starts = ds.split(split), ds.doc_starts(split)
        assert len(starts) == len(splits[split])
        text = ds.vocab.decode(toks[:3000])
        assert "START OF" not in text and "Project Gutenberg License" not in text
        book = (src / splits[split][0]).read_text()
        body, _ = pg19.strip_gutenberg(book)
        assert ds.word_count(split) == len(body.split())
        assert text.split("\n")[0] == pg19.paragraphs(body)[0]  # paragraph breaks survive as <nl>
    assert ds.train_counts.sum() == len(ds.split("train"))


def _write_books(root: Path, n: int, bad: str | None = None):
    root.mkdir(parents=True, exist_ok=True)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    for i in range(n):
        body = "\n\n".join(" ".join(words[(i + j + k) % 12] for k in range(9)) + "." for j in range(40))
        (root / f"{i}.txt").write_text(BOOK.format(t=f"Book {i}", body=body))
    if bad:
        (root / bad).write_bytes(b"*** START OF X ***\ncaf\xe9\n*** END OF X ***\n")


def test_books_and_pg19_bad_input(tmp_path):
    _write_books(tmp_path / "two", 2)
    with pytest.raises(DataError, match="at least 3 books"):
        prepare_dataset(f"books:{tmp_path / 'two'}", tmp_path / "c", vocab_size=300)
    with pytest.raises(DataError, match="not a folder"):
        prepare_dataset(f"books:{tmp_path / 'none'}", tmp_path / "c", vocab_size=300)
    _write_books(tmp_path / "bad", 4, bad="99.txt")
    with pytest.raises(DataError, match="UTF-8") as e:
        prepare_dataset(f"books:{tmp_path / 'bad'}", tmp_path / "c", vocab_size=300)
    assert "99.txt" in str(e.value)
    with pytest.raises(DataError, match="gsutil"):
        prepare_dataset("pg19", tmp_path / "c", source=tmp_path / "two")
    assert only_cache_dirs(tmp_path / "c") == []


def test_pg19_official_layout(tmp_path):
    root = tmp_path / "pg19"
    for sub, n in (("train", 3), ("validation", 1), ("test", 1)):
        _write_books(root / sub, n)
    with pytest.raises(DataError, match="vocab_size") as e:
        prepare_dataset("pg19", tmp_path / "c", source=root, vocab_size=300)
    assert str(root / "train") in str(e.value)
    ds = prepare_dataset("pg19", tmp_path / "c", source=root, vocab_size=400)
    assert ds.manifest["splits"]["valid"]["books"] == ["0.txt"] and len(ds.doc_starts("train")) == 3
    assert ds.word_count("valid") == ds.manifest["splits"]["valid"]["word_count_computed"]
    assert "word_count_source" not in ds.manifest["splits"]["valid"]  # 1 book is not the official split
    with pytest.raises(DataError, match="allow-partial"):
        prepare_dataset("pg19", tmp_path / "c", source=root, vocab_size=400, max_books=1)
    part = prepare_dataset("pg19", tmp_path / "c", source=root, vocab_size=400, max_books=1, allow_partial=True)
    assert part.partial and len(part.doc_starts("train")) == 1
    _write_books(root / "extra", 1)
    (root / "extra" / "0.txt").rename(root / "test" / "7.txt")   # a book added: a new cache variant
    grown = prepare_dataset("pg19", tmp_path / "c", source=root, vocab_size=400)
    assert grown.path != ds.path and grown.manifest["splits"]["test"]["books"] == ["0.txt", "7.txt"]


def test_vocabulary_from_another_dataset(tmp_path):
    src = tmp_path / "e8"
    src.write_bytes(b"hello world\n" * 1000)
    a = prepare_dataset("enwik8", tmp_path / "c", source=src, allow_partial=True)
    b = prepare_dataset("wikitext2", tmp_path / "c", source=shared("wikitext2"), allow_partial=True)
    a.check_vocab(a.vocab.fingerprint)
    with pytest.raises(DataError, match="different vocabulary") as e:
        b.check_vocab(a.vocab.fingerprint, where="checkpoint run/latest.pt")
    assert "run/latest.pt" in str(e.value)
    # a vocabulary file swapped in from another cache does not match the manifest's fingerprint
    from text.data.vocab import load_vocab

    shutil.copy(a.path / a.manifest["vocab"]["file"], b.path / b.manifest["vocab"]["file"])
    with pytest.raises(DataError, match="another dataset"):
        load_vocab(b.path, b.manifest["vocab"])


def test_unknown_spec(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare_dataset("imagenet", tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        prepare_dataset("longrange", tmp_path, longrange=__import__("text.data").data.LongRangeConfig(
            doc_len=64, train_docs=1, valid_docs=1, test_docs=1)).split("dev2")


def test_download_is_atomic_and_refused_in_tests(tmp_path, monkeypatch):
    from text.data.files import download

    with pytest.raises(DataError, match="wikitext"):
        prepare_dataset("wikitext103", tmp_path / "c")       # would download: refused, naming the URL
    src = tmp_path / "remote.bin"
    src.write_bytes(b"z" * 3000)
    monkeypatch.delenv("CTBENCH_NO_DOWNLOAD")
    dest = download(src.as_uri(), tmp_path / "dl" / "file.bin")   # the real code path, on a file:// URL
    assert dest.read_bytes() == src.read_bytes() and not (tmp_path / "dl" / "file.bin.part").exists()
    with pytest.raises(DataError, match="download"):
        download((tmp_path / "missing.bin").as_uri(), tmp_path / "dl" / "x.bin")
    assert not (tmp_path / "dl" / "x.bin").exists() and not (tmp_path / "dl" / "x.bin.part").exists()
