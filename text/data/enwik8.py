"""enwik8: the first 10^8 bytes of an English Wikipedia XML dump (Hutter Prize), byte-level.

Standard split 90M / 5M / 5M bytes (as in TransformerXL and the Compressive Transformer paper, Section 5).
The raw file is checked against its size and the MD5 and SHA-1 published with the Hutter Prize
(http://mattmahoney.net/dc/textdata.html); a prefix is accepted only with `allow_partial` and then split
proportionally (90/5/5) and flagged partial in the manifest.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from .cache import Builder, load_or_build
from .errors import DataError
from .files import download, not_found, source_stamp
from .vocab import ByteVocab

URL = "http://mattmahoney.net/dc/enwik8.zip"
SIZE = 100_000_000
MD5 = "a1fa5ffddb56f4953e226637dabbb36a"
SHA1 = "57b8363b814821dc9d47aa4d41f58733519076b2"
SPLIT_BYTES = (90_000_000, 5_000_000, 5_000_000)


def default_source(data_dir: Path) -> Path:
    return Path(data_dir).expanduser() / "downloads" / "enwik8.zip"


def read_bytes(path: Path) -> bytes:
    """The raw bytes from a local `enwik8.zip` (single member `enwik8`) or a raw file."""
    if not path.exists():
        raise not_found(path, "file not found; pass an enwik8.zip or raw enwik8 file (or omit --source to download)")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise DataError(f"{path}: expected one member (enwik8) in the zip, found {names}")
                return z.read(names[0])
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
            raise DataError(f"{path}: damaged zip ({e}); delete it and download again from {URL}") from None
    return path.read_bytes()


def build(b: Builder, source: Path, allow_partial: bool) -> None:
    data = read_bytes(source)
    b.add_source(source_stamp(source))
    digests = {"md5": None, "sha1": None}
    if len(data) == SIZE:
        digests = {"md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest()}
        if digests["md5"] != MD5 or digests["sha1"] != SHA1:
            raise DataError(
                f"{source}: 100,000,000 bytes but the checksum is wrong (md5 {digests['md5']}, expected {MD5}); "
                f"the file is damaged or not enwik8: delete it and download again from {URL}"
            )
        sizes = SPLIT_BYTES
    elif len(data) < SIZE and allow_partial:
        n = len(data)
        n_valid = n_test = n * SPLIT_BYTES[1] // SIZE
        sizes = (n - n_valid - n_test, n_valid, n_test)
        b.mark_partial(f"enwik8 prefix of {n:,} bytes (not the full 100,000,000), split 90/5/5 proportionally")
    else:
        what = "longer than" if len(data) > SIZE else "shorter than"
        hint = "" if len(data) > SIZE else " (a prefix or truncated download: pass --allow-partial to use it anyway)"
        raise DataError(f"{source}: {len(data):,} bytes, {what} enwik8's 100,000,000{hint}")
    b.manifest["enwik8_checksums"] = {"md5": digests["md5"], "sha1": digests["sha1"], "verified": digests["md5"] == MD5}
    b.set_vocab(ByteVocab())
    arr = np.frombuffer(data, dtype=np.uint8)
    start = 0
    for split, n in zip(("train", "valid", "test"), sizes):
        b.add_split(split, arr[start:start + n], [0], source=f"{source.name}[{start}:{start + n}]")
        start += n


def prepare(data_dir: Path, source, allow_partial: bool):
    src = Path(source).expanduser() if source else default_source(data_dir)
    if source is None and not src.exists():
        download(URL, src)
    params = {"dataset": "enwik8", "source": str(src.resolve()), "allow_partial": bool(allow_partial)}
    return load_or_build(data_dir, "enwik8", "byte", params, lambda b: build(b, src, allow_partial))
