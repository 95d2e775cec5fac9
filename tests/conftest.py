"""Test-wide settings.

Tests use tiny tensors: one intra-op thread is faster for them than two, and it keeps the suite fast
when the two cores are shared with other work (OpenMP threads otherwise spin waiting for each other).
"""
import pytest
import torch

from core.run.precision import FLAGS_ENV

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def cpu_without_native_bf16():
    """Every test sees a CPU without native bf16 unless it sets CTBENCH_CPU_FLAGS itself, so that
    `precision = "auto"` resolves to fp32 on every machine and exact comparisons hold whether or not the
    CPU (this one, CI's) has AVX512-BF16 or AMX. The bf16 paths are tested on purpose, with the flags set
    (tests/core/test_precision.py, test_bench.py, rl's learner). Session-wide, so that module-scoped fixtures
    (trained runs shared by several tests) see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FLAGS_ENV, "avx2 fma")
        yield


@pytest.fixture
def default_dtype():
    """default_dtype(torch.float64): sets torch's default dtype for this test only (restored after)."""
    saved = torch.get_default_dtype()
    yield torch.set_default_dtype
    torch.set_default_dtype(saved)
