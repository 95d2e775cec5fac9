"""Test-wide settings.

Tests use tiny tensors: one intra-op thread is faster for them than two, and it keeps the suite fast
when the two cores are shared with other work (OpenMP threads otherwise spin waiting for each other).
"""
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def default_dtype():
    """default_dtype(torch.float64): sets torch's default dtype for this test only (restored after)."""
    saved = torch.get_default_dtype()
    yield torch.set_default_dtype
    torch.set_default_dtype(saved)
