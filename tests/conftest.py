"""Test-wide settings.

Tests use tiny tensors: one intra-op thread is faster for them than two, and it keeps the suite fast
when the two cores are shared with other work (OpenMP threads otherwise spin waiting for each other).
"""
import torch

torch.set_num_threads(1)
