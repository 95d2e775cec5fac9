"""Small file helpers shared by the dataset builders: hashing, downloads, strict UTF-8 reads."""
from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from .errors import DataError

NO_DOWNLOAD_ENV = "CTBENCH_NO_DOWNLOAD"
_CHUNK = 1 << 20


def not_found(path: Path, what: str) -> DataError:
    """`path: what`, saying which directory a relative path was looked up in."""
    where = "" if Path(path).is_absolute() else f" (looked up from the current directory {Path.cwd()})"
    return DataError(f"{path}: {what}{where}")


def progress(iterable=None, **kw):
    """A tqdm bar on stderr, shown only when stderr is a terminal (data preparation takes minutes to
    hours on the full datasets; logs and tests stay clean)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=None, mininterval=1.0, dynamic_ncols=True, **kw)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a whole file, read in 1 MiB chunks (enwik8 and PG-19 do not fit in a string)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digests(path: Path, algorithms: tuple[str, ...]) -> dict[str, str]:
    """Several digests in one pass over the file."""
    hs = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            for h in hs.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hs.items()}


def source_stamp(path: Path, with_hash: bool = True) -> dict:
    """What the manifest records about one source file: enough to notice that it changed."""
    st = path.stat()
    stamp = {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    if with_hash:
        stamp["sha256"] = file_digest(path)
    return stamp


def read_utf8(path: Path) -> str:
    """Read a text file strictly as UTF-8; a bad byte names the file and its offset."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise not_found(path, "file not found") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: invalid UTF-8 at byte {e.start} ({e.reason}); re-download the file or convert "
            "it to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def download(url: str, dest: Path) -> Path:
    """Fetch `url` into `dest` atomically (a `.part` file renamed at the end), with a progress bar.

    Refuses when the environment variable CTBENCH_NO_DOWNLOAD is set (the test suite sets it), so a
    missing file in a test is an error rather than a silent 100 MB fetch.
    """
    dest = Path(dest)
    if os.environ.get(NO_DOWNLOAD_ENV):
        raise DataError(
            f"{dest}: not present and downloads are disabled ({NO_DOWNLOAD_ENV} is set); "
            f"fetch {url} yourself and pass it with --source"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        from tqdm import tqdm

        with urllib.request.urlopen(url, timeout=60) as r, open(part, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                for chunk in iter(lambda: r.read(_CHUNK), b""):
                    f.write(chunk)
                    bar.update(len(chunk))
        os.replace(part, dest)
    except OSError as e:
        if part.exists():
            part.unlink()
        raise DataError(f"{dest}: download from {url} failed ({e}); download it by hand and pass --source") from None
    return dest
