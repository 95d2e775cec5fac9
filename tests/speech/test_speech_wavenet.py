import pytest
import torch

from speech.generate import default_prime, wavenet_generate_cached, wavenet_generate_naive
from speech.wavenet import WaveNet, WaveNetConfig


def tiny(kernel=2, layers=6, cycle=3, dtype=torch.float64):
    cfg = WaveNetConfig(n_layers=layers, dilation_cycle=cycle, kernel_size=kernel, residual_channels=8,
                        dilation_channels=8, skip_channels=8)
    torch.manual_seed(0)
    return WaveNet(cfg).to(dtype).eval()


@pytest.mark.parametrize("kernel", [2, 3])
def test_causality_and_receptive_field(kernel):
    m = tiny(kernel)
    rf = m.cfg.receptive_field
    assert rf == (kernel - 1) * sum(m.cfg.dilations) + 1
    T, t = rf + 20, rf + 10
    emb = m.embed(torch.randint(0, 256, (1, T))).detach().requires_grad_(True)

    def out_from_embedding(e):  # forward from the embedded input so we can take gradients w.r.t. it
        orig = m.embed.forward
        m.embed.forward = lambda tok: e
        try:
            return m(torch.zeros(1, T, dtype=torch.int64))
        finally:
            m.embed.forward = orig

    logits = out_from_embedding(emb)
    logits[0, t].sum().backward()
    g = emb.grad[0].abs().sum(-1)  # [T]
    assert (g[t + 1:] == 0).all()            # causal: nothing from the future
    assert (g[t - rf + 1:t + 1] > 0).all()   # the whole receptive field is used
    assert (g[:t - rf + 1] == 0).all()       # and nothing beyond it


def test_incremental_step_matches_forward():
    m = tiny(kernel=3)
    x = torch.randint(0, 256, (2, 40))
    full = m(x)
    queues, first = m.prefill(x[:, :5])
    steps = [first] + [m.step(x[:, t], queues, t) for t in range(5, 39)]
    assert torch.allclose(torch.stack(steps, 1), full[:, 4:39], atol=1e-10)


@pytest.mark.parametrize("prime_len", [1, 7, 100])
def test_cached_and_naive_generation_identical(prime_len):
    m = tiny()
    prime = torch.randint(0, 256, (2, prime_len))
    a = wavenet_generate_cached(m, 80, prime, torch.Generator().manual_seed(5))
    b = wavenet_generate_naive(m, 80, prime, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    c = wavenet_generate_cached(m, 80, prime, torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)  # the seed matters


def test_float32_generation_from_silence_identical():
    m = tiny(dtype=torch.float32)
    prime = default_prime(1, m.cfg.receptive_field - 1)
    a = wavenet_generate_cached(m, 50, prime, torch.Generator().manual_seed(0))
    b = wavenet_generate_naive(m, 50, prime, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_bad_config_names_field():
    with pytest.raises(ValueError, match="wavenet.kernel_size"):
        WaveNetConfig(kernel_size=1)
