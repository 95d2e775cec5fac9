"""What the docs promise about the core's semantics, tested exactly as stated (README "The memory module",
docs/contracts.md): TransformerXL's same_length mask, float64 runs staying float64, and which memories do and
do not depend on where the stream is cut into windows."""
import math

import pytest
import torch

from core import CompressiveTransformer, CTConfig
from core.attention import attention_mask


def txl_same_length_mask(qlen: int, mlen: int, mem_len: int) -> torch.Tensor:
    """TransformerXL's same_length mask, transcribed from kimiyoung's mem_transformer.py (1 = masked):
    mask_len = klen - mem_len; mask_shift_len = qlen - mask_len if mask_len > 0 else qlen;
    dec_attn_mask = triu(all_ones, 1 + mlen) + tril(all_ones, -mask_shift_len). Returns allowed [qlen, klen]."""
    klen = mlen + qlen
    all_ones = torch.ones(qlen, klen)
    mask_len = klen - mem_len
    mask_shift_len = qlen - mask_len if mask_len > 0 else qlen
    masked = torch.triu(all_ones, 1 + mlen) + torch.tril(all_ones, -mask_shift_len)
    return masked == 0


@pytest.mark.parametrize("mem_len", [1, 4, 6, 13])
@pytest.mark.parametrize("qlen", [1, 3, 5, 8])
def test_same_length_mask_is_transformerxls_while_the_memory_fills(mem_len, qlen):
    """Every memory fill level from empty to full: the configured length, not the current one, sets the reach."""
    for mlen in range(mem_len + 1):
        ours = attention_mask(qlen, mlen, True, None, "cpu", reach=mem_len)
        assert torch.equal(ours, txl_same_length_mask(qlen, mlen, mem_len)), (qlen, mlen, mem_len)
    # without same_length: causal only (TransformerXL's triu(ones, 1 + mlen))
    causal = torch.triu(torch.ones(qlen, 2 + qlen), 1 + 2) == 0
    assert torch.equal(attention_mask(qlen, 2, False, None, "cpu", reach=mem_len), causal)


def test_same_length_reaches_the_configured_memory_through_the_stack():
    """A Compressive Transformer counts its compressed slots as keys: its reach is the configured
    n_cm + n_m, also while memory and compressed memory are still filling. The attention weights the stack
    returns are zero exactly where TransformerXL's mask (with mem_len = n_cm + n_m) forbids, in every layer
    and window from an empty memory on."""
    torch.manual_seed(0)
    cfg = CTConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32, mem_len=6, cmem_len=3, compression_rate=2,
                   dropout=0.0, same_length=True)
    for model_cfg in (cfg, cfg.replace(mem_len=9, cmem_len=0)):
        model = CompressiveTransformer(model_cfg).double().eval()
        mem = model.init_memory(2, dtype=torch.float64)
        for window in range(6):
            n_prefix = mem.cmem_lens()[0] + mem.mem_len
            out = model(torch.randn(2, 5, 16, dtype=torch.float64), mem, return_attention=True)
            expected = txl_same_length_mask(5, n_prefix, model_cfg.mem_len + model_cfg.cmem_len)
            for probs in out.attention:
                assert torch.equal(probs > 0, expected.expand_as(probs)), (model_cfg.cmem_len, window)
            mem = out.memory
        assert mem.mem_len + mem.cmem_lens()[0] == 9              # the memory filled up along the way


def test_float64_model_gets_float64_sinusoids(monkeypatch):
    """The position embeddings the attention receives are float64 and equal sin/cos computed in float64
    (float32 sinusoids are off by ~1e-4 at distances of a few thousand)."""
    cfg = CTConfig(d_model=8, n_layers=1, n_heads=2, d_ff=16, mem_len=3000, cmem_len=0, dropout=0.0)
    model = CompressiveTransformer(cfg).double().eval()
    attn = model.layers[0].attn
    seen = []
    forward = attn.forward
    monkeypatch.setattr(attn, "forward", lambda h, mems, pos, *a, **k: seen.append(pos) or forward(h, mems, pos, *a, **k))
    mem = model.init_memory(1, dtype=torch.float64)
    mem = model(torch.randn(1, 3000, 8, dtype=torch.float64), mem).memory
    model(torch.randn(1, 4, 8, dtype=torch.float64), mem)
    pos = seen[-1]                                                  # [K, d] for distances K-1 .. 0
    k = pos.shape[0]
    assert k == 3004 and pos.dtype == torch.float64
    ref = torch.tensor([[f(dist * 10000 ** (-2 * m / 8)) for f in (math.sin, math.cos) for m in range(4)]
                        for dist in range(k - 1, -1, -1)], dtype=torch.float64)
    torch.testing.assert_close(pos, ref, rtol=0, atol=1e-12)


def test_float64_most_used_usage_is_float64_and_exact():
    """most_used's usage (the mean attention each memory received, summed over windows) follows the model's
    dtype and equals a float64 recount from the attention weights the stack returns."""
    torch.manual_seed(1)
    cfg = CTConfig(d_model=8, n_layers=1, n_heads=2, d_ff=16, mem_len=6, cmem_len=4, compression_rate=2,
                   compression="most_used", dropout=0.0)
    model = CompressiveTransformer(cfg).double().eval()
    mem = model.init_memory(2, dtype=torch.float64)
    received: dict[int, list[torch.Tensor]] = {}                    # stream position -> per-window mean weight
    seen = 0
    for t in (4, 5, 3, 4):
        out = model(torch.randn(2, t, 8, dtype=torch.float64), mem, return_attention=True)
        probs = out.attention[0]                                    # [B, H, T, n_cm + n_m + T]
        n_mem = mem.mem_len
        keys = list(range(seen - n_mem, seen + t))                  # stream positions of the [mem; window] keys
        per_key = probs.mean(dim=(1, 2))[:, probs.shape[-1] - len(keys):]
        for col, p in enumerate(keys):
            received.setdefault(p, []).append(per_key[:, col])
        mem, seen = out.memory, seen + t
    lm = mem.layers[0]
    assert lm.usage_sum.dtype == torch.float64 and lm.pending_usage.dtype == torch.float64
    in_mem = range(seen - lm.mem.shape[1], seen)
    expect_sum = torch.stack([sum(received[p]) for p in in_mem], 1)
    expect_count = torch.tensor([float(len(received[p])) for p in in_mem], dtype=torch.float64).expand(2, -1)
    torch.testing.assert_close(lm.usage_sum, expect_sum, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(lm.usage_count, expect_count, rtol=0, atol=0)


def _memories_after(model, stream, cuts):
    mem, start = model.init_memory(1, dtype=torch.float64), 0
    for c in cuts:
        mem = model(stream[:, start:start + c], mem).memory
        start += c
    assert start == stream.shape[1]
    return mem


@pytest.mark.parametrize("compression", ["conv", "max_pool", "gru"])
def test_window_cuts_change_deeper_layers_but_not_layer_0(compression):
    """README: token-by-token generation gives the same memories as whole windows *in layer 0 only* (its
    memories are the inputs themselves; compression groups never depend on the cuts). Deeper layers store the
    outputs of the layer below, which depend on what each position could attend to, hence on the cuts."""
    torch.manual_seed(3)
    cfg = CTConfig(d_model=8, n_layers=2, n_heads=2, d_ff=16, mem_len=4, cmem_len=6, compression_rate=3,
                   compression=compression, dropout=0.0)
    model = CompressiveTransformer(cfg).double().eval()
    stream = torch.randn(1, 30, 8, dtype=torch.float64)
    whole = _memories_after(model, stream, [30])
    for cuts in ([1] * 30, [4, 7, 1, 2, 9, 5, 2]):
        other = _memories_after(model, stream, cuts)
        for name in ("mem", "cmem", "pending"):
            torch.testing.assert_close(getattr(other.layers[0], name), getattr(whole.layers[0], name))
        assert not torch.allclose(other.layers[1].mem, whole.layers[1].mem, atol=1e-3)
        assert not torch.allclose(other.layers[1].cmem, whole.layers[1].cmem, atol=1e-3)


def test_most_used_is_group_local_but_not_window_invariant():
    """README: most_used keeps one memory of each group of c (group-local), but which one depends on the
    attention it received, hence on where the stream is cut: not window-invariant, even in layer 0."""
    torch.manual_seed(2)
    c = 3
    cfg = CTConfig(d_model=8, n_layers=1, n_heads=2, d_ff=16, mem_len=4, cmem_len=6, compression_rate=c,
                   compression="most_used", dropout=0.0)
    model = CompressiveTransformer(cfg).double().eval()
    stream = torch.randn(1, 22, 8, dtype=torch.float64)
    picks = []
    for cuts in ([22], [1] * 22, [5, 3, 7, 4, 3]):
        lm = _memories_after(model, stream, cuts).layers[0]
        evicted = 22 - lm.mem.shape[1] - lm.pending.shape[1]        # positions 0 .. evicted-1 were compressed
        assert lm.cmem.shape[1] == evicted // c == 6
        groups = stream[0, :evicted].view(-1, c, 8)                 # [n, c, d]
        pick = [[int(i) for i in range(c) if torch.equal(groups[g, i], lm.cmem[0, g])] for g in range(6)]
        assert all(len(p) == 1 for p in pick)                       # every slot is one member of its group
        picks.append([p[0] for p in pick])
    assert picks[0] != picks[1] or picks[0] != picks[2]              # ... but which member depends on the cuts


def test_attention_reconstruction_loss_is_the_documented_formula():
    """core/losses.py documents our form of Algorithm 2: per layer the mean over [B, H, T, d_head] of the squared
    difference of two content attentions scaled by 1/sqrt(d_head) (the paper: an unscaled sum of L2 norms)."""
    from core.losses import attention_reconstruction_loss
    torch.manual_seed(4)
    b, h, t, n, c, dh = 2, 3, 5, 6, 2, 4
    q = torch.randn(b, h, t, dh, dtype=torch.float64)
    old_k, old_v = torch.randn(2, b, h, n * c, dh, dtype=torch.float64)
    comp_k, comp_v = torch.randn(2, b, h, n, dh, dtype=torch.float64)

    def attend(k, v):
        return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), dim=-1) @ v

    expected = ((attend(comp_k, comp_v) - attend(old_k, old_v)) ** 2).mean()
    torch.testing.assert_close(attention_reconstruction_loss(q, old_k, old_v, comp_k, comp_v), expected,
                               rtol=1e-12, atol=0)
