"""Helpers for the text data tests: where the shared real data lives, and no downloads."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def shared(sub: str) -> Path:
    """Path of ../shared/data/<sub>, or skip the test with the reason when it is absent."""
    p = SHARED / sub
    if not p.exists():
        pytest.skip(f"{p} absent (the real-data checks need ../shared/data next to the repository)")
    return p


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    """Tests never download: a code path that would fetch raises DataError instead."""
    monkeypatch.setenv("CTBENCH_NO_DOWNLOAD", "1")
