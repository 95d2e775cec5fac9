"""Shared fixtures for the speech tests: the FSDD copy (skipped when absent) and tiny preset overrides.
(One torch thread for all tests is set in tests/conftest.py.)"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FSDD = REPO.parent / "shared" / "data" / "fsdd" / "recordings"


@pytest.fixture
def fsdd_dir() -> Path:
    if not FSDD.is_dir() or not any(FSDD.glob("*.wav")):
        pytest.skip(f"FSDD copy not found at {FSDD} (../shared/data/fsdd/recordings)")
    return FSDD
