"""Text sampling with the generation cache (core/cache.py) draws the same tokens as without it."""
import pytest
import torch

from text.config import ModelConfig
from text.model import LanguageModel
from text.run import generate_tokens


@pytest.mark.parametrize("arch,cmem_len,pre_ln,dtype", [("transformer", 4, False, torch.float64),
                                                         ("transformer", 0, True, torch.float64),
                                                         ("transformer", 4, True, torch.float32),
                                                         ("transformer", 0, True, torch.float32),
                                                         ("lstm", 0, False, torch.float32)])
def test_cached_sampling_draws_the_same_tokens(arch, cmem_len, pre_ln, dtype, default_dtype):
    default_dtype(dtype)                                # init_state builds memories of the default dtype
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, d_model=16, n_layers=2, n_heads=2, d_ff=32, mem_len=6, cmem_len=cmem_len,
                      compression_rate=3, dropout=0.0, pre_ln=pre_ln)
    model = LanguageModel(cfg, 13).eval()
    prompt = [1, 5, 2, 7, 7, 3, 9, 4, 0]

    def draw(cached):
        g = torch.Generator().manual_seed(5)
        return list(generate_tokens(model, prompt, 40, 1.0, g, window=4, cached=cached))

    tokens = draw(False)
    assert draw(True) == tokens and len(tokens) == 40
