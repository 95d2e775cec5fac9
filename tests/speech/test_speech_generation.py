"""Transformer audio sampling with the generation cache (core/cache.py) draws the same samples as without."""
import pytest
import torch

from core import CTConfig
from speech.generate import default_prime, transformer_generate
from speech.models import SpeechTransformer


@pytest.mark.parametrize("cmem_len,pre_ln,dtype", [(4, False, torch.float64), (0, True, torch.float64),
                                                   (4, True, torch.float32)])
def test_cached_transformer_generation_draws_the_same_samples(cmem_len, pre_ln, dtype, default_dtype):
    default_dtype(dtype)                                # init_state builds memories of the default dtype
    torch.manual_seed(0)
    cfg = CTConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32, mem_len=6, cmem_len=cmem_len, compression_rate=2,
                   dropout=0.0, pre_ln=pre_ln)
    model = SpeechTransformer(cfg, "compressive" if cmem_len else "txl").eval()
    prime = torch.cat([default_prime(2, 3), torch.randint(256, (2, 8), generator=torch.Generator().manual_seed(2))], 1)

    def draw(cached):      # 45 samples in windows of 5: memories fill, compress and evict while sampling
        return transformer_generate(model, 45, prime, torch.Generator().manual_seed(7), window=5, cached=cached)

    samples = draw(False)
    assert torch.equal(draw(True), samples) and samples.shape == (2, 45)
