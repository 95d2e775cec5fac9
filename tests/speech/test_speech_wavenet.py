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


def twins(kernel=3, layers=5, cycle=4):
    """The same weights as SpeechWaveNet with context 'reread' and 'carry' (float64, eval mode)."""
    from speech.models import SpeechWaveNet

    out = []
    for context in ("reread", "carry"):
        cfg = WaveNetConfig(n_layers=layers, dilation_cycle=cycle, kernel_size=kernel, residual_channels=8,
                            dilation_channels=8, skip_channels=8, context=context)
        torch.manual_seed(0)
        out.append(SpeechWaveNet(cfg).double().eval())
    return out


def test_carried_tails_give_the_logits_of_rereading_and_of_the_whole_stream():
    """Windows shorter than the widest layer's tail (16 samples at kernel 3, dilation 8), one row reset
    mid-stream: 'carry' gives the logits 'reread' gives, and both equal one pass over silence + the stream."""
    reread, carry = twins()
    assert max(carry.net.tail_lengths) == 16
    B, T, n = 3, 10, 5
    stream = torch.randint(0, 256, (B, T * n), generator=torch.Generator().manual_seed(1))
    resets = [torch.zeros(B, dtype=torch.bool) for _ in range(n)]
    resets[3][1] = True
    got = {}
    for model in (reread, carry):
        state, out = model.init_state(B), []
        for w in range(n):
            logits, state, _ = model(stream[:, w * T:(w + 1) * T], state, resets[w])
            out.append(logits)
        got[model.wn_cfg.context] = torch.cat(out, 1)
    assert torch.allclose(got["carry"], got["reread"], atol=1e-10)
    silence = reread._silence(B)
    whole = reread.net(torch.cat([silence, stream], 1))[:, silence.shape[1]:]
    keep = torch.tensor([True, False, True])
    assert torch.allclose(got["carry"][keep], whole[keep], atol=1e-10)
    again = reread.net(torch.cat([silence[1:2], stream[1:2, 3 * T:]], 1))[:, silence.shape[1]:]
    assert torch.allclose(got["carry"][1, 3 * T:], again[0], atol=1e-10)     # the reset row starts afresh
    assert not torch.allclose(got["carry"][1, 3 * T:], whole[1, 3 * T:], atol=1e-3)


def test_carry_reads_each_sample_once_and_keeps_no_graph():
    """Each layer's convolution reads the window plus its own tail (not the receptive field again), and the
    carried state is detached, as a TXL memory is."""
    reread, carry = twins()
    lengths = {"reread": [], "carry": []}
    for model in (reread, carry):
        start = model.init_state(2)       # carry's start runs silence through the net once: not counted
        for conv in model.net.dilated:
            conv.register_forward_hook(lambda m, inp, out, c=model.wn_cfg.context: lengths[c].append(inp[0].shape[2]))
        model.train()
        logits, state, _ = model(torch.randint(0, 256, (2, 10)), start)
        logits.sum().backward()
    T, rf = 10, carry.wn_cfg.receptive_field
    assert lengths["carry"] == [T + L for L in carry.net.tail_lengths]
    assert lengths["reread"] == [T + rf - 1 + L for L in carry.net.tail_lengths]
    assert all(not t.requires_grad and t.grad_fn is None for t in state.tails)


def test_bad_context_names_the_field():
    with pytest.raises(ValueError, match="wavenet.context"):
        WaveNetConfig(context="cached")
