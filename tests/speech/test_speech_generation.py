"""Transformer audio sampling with the generation cache (core/cache.py) draws the same samples as without."""
import pytest
import torch

from core import CTConfig
from speech import generate
from speech.generate import default_prime, sample_token, transformer_generate
from speech.models import SpeechTransformer


@pytest.mark.parametrize("cmem_len,pre_ln,dtype,same_length,prime_len", [
    (4, False, torch.float64, False, 11), (0, True, torch.float64, False, 13), (4, True, torch.float32, False, 13),
    (4, False, torch.float64, True, 13)])
def test_cached_transformer_generation_draws_the_same_samples(cmem_len, pre_ln, dtype, same_length, prime_len,
                                                              default_dtype, monkeypatch):
    """The cached path reads partial windows incrementally (a prime leaving 1 or 3 samples in the current
    window) and re-reads them under same_length."""
    default_dtype(dtype)                                # init_state builds memories of the default dtype
    torch.manual_seed(0)
    cfg = CTConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32, mem_len=6, cmem_len=cmem_len, compression_rate=2,
                   dropout=0.0, pre_ln=pre_ln, same_length=same_length)
    model = SpeechTransformer(cfg, "compressive" if cmem_len else "txl").eval()
    noise = torch.randint(256, (2, prime_len - 3), generator=torch.Generator().manual_seed(2))
    prime = torch.cat([default_prime(2, 3), noise], 1)

    logits = []

    def recording(sampled_logits, *args):
        logits.append(sampled_logits)
        return sample_token(sampled_logits, *args)
    monkeypatch.setattr(generate, "sample_token", recording)

    def draw(cached):      # 45 samples in windows of 5: memories fill, compress and evict while sampling
        logits.clear()
        samples = transformer_generate(model, 45, prime, torch.Generator().manual_seed(7), window=5, cached=cached)
        return samples, torch.stack(logits)

    samples, reference = draw(False)
    samples_c, logits_c = draw(True)
    assert torch.equal(samples_c, samples) and samples.shape == (2, 45)
    if dtype == torch.float64:
        torch.testing.assert_close(logits_c, reference, rtol=1e-10, atol=1e-10)
    else:
        torch.testing.assert_close(logits_c, reference)
