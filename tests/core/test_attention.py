"""Relative attention against a naive float64 reference that builds the position term explicitly."""
import math

import pytest
import torch

from core import CompressiveTransformer, CTConfig
import core.attention as core_attention
from core.attention import (RecomputedRelativeAttention, RelativeMultiHeadAttention, _rel_shift, attention_mask,
                            position_rows, relative_position_embedding, sinusoid_positions)


def naive_relative_attention(attn, h, prefix, clamp_len=-1, same_length=False):
    """Score(i, j) = (q_i + u)·k_j + (q_i + v)·W_r R(P + i - j), with no rel-shift anywhere."""
    b, t, d = h.shape
    p = prefix.shape[1]
    n_heads, dh = attn.n_heads, attn.d_head
    w = attn.qkv.weight.double()
    x = torch.cat([prefix, h], 1).double()
    q = (h.double() @ w[:d].T).view(b, t, n_heads, dh)
    k = (x @ w[d:2 * d].T).view(b, p + t, n_heads, dh)
    v = (x @ w[2 * d:].T).view(b, p + t, n_heads, dh)
    u, vb = attn.r_w_bias.double(), attn.r_r_bias.double()
    wr = attn.r_net.weight.double()
    out = torch.zeros(b, t, n_heads, dh, dtype=torch.float64)
    for i in range(t):
        scores = torch.full((b, n_heads, p + t), -math.inf, dtype=torch.float64)
        for j in range(p + t):
            dist = p + i - j
            if dist < 0 or (same_length and p > 0 and j <= i):
                continue
            r = sinusoid_positions(torch.tensor([float(min(dist, clamp_len) if clamp_len > 0 else dist)],
                                                dtype=torch.float64), d)
            r = (r.double() @ wr.T).view(n_heads, dh)
            scores[:, :, j] = ((q[:, i] + u) * k[:, j]).sum(-1) + ((q[:, i] + vb) * r).sum(-1)
        probs = torch.softmax(scores / math.sqrt(dh), dim=-1)                 # [B, H, K]
        out[:, i] = torch.einsum("bhk,bkhd->bhd", probs, v)
    out = out.reshape(b, t, d) @ attn.out.weight.double().T
    return out


def biased_attention(d_model: int, n_heads: int, seed: int) -> RelativeMultiHeadAttention:
    """A float64 attention module whose position biases u and v are not zero."""
    torch.manual_seed(seed)
    attn = RelativeMultiHeadAttention(d_model, n_heads, dropatt=0.0).double()
    with torch.no_grad():
        attn.r_w_bias.normal_()
        attn.r_r_bias.normal_()
    return attn


@pytest.mark.parametrize("clamp_len,same_length", [(-1, False), (5, False), (-1, True)])
def test_relative_attention_matches_naive_reference(clamp_len, same_length):
    torch.manual_seed(0)
    cfg = CTConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, mem_len=6, cmem_len=4, compression_rate=2,
                   dropout=0.0, clamp_len=clamp_len, same_length=same_length)
    model = CompressiveTransformer(cfg).double()
    attn = model.layers[0].attn
    with torch.no_grad():
        attn.r_w_bias.normal_()
        attn.r_r_bias.normal_()
    b, t, cm, m = 2, 5, 4, 6
    h = torch.randn(b, t, 16, dtype=torch.float64)
    prefix = torch.randn(b, cm + m, 16, dtype=torch.float64)     # [cmem; mem]
    pos = relative_position_embedding(cm + m + t, 16, clamp_len, "cpu", torch.float64)
    mask = attention_mask(t, cm + m, same_length, None, "cpu")
    out, probs, *_ = attn(h, (prefix[:, :cm], prefix[:, cm:]), pos, mask, need_weights=True)
    ref = naive_relative_attention(attn, h, prefix, clamp_len, same_length)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(probs.sum(-1), torch.ones(b, 2, t, dtype=torch.float64))


@pytest.mark.parametrize("width_pad", [1, 5])
def test_rel_shift_aligns_distances(width_pad):
    """Column m < K of the head-major product holds distance K-1-m (columns from K on are the pad); after the
    shift entry (i, j) of every (batch, head) holds (K - T) + i - j, the distance of key j from query i,
    whatever the pad's width."""
    b, h, t, k = 2, 3, 3, 7
    column_distance = torch.cat([torch.arange(k - 1, -1, -1).float(), torch.full((width_pad,), -1.0)])  # [L]
    product = column_distance.expand(h, b * t, k + width_pad).contiguous()
    y = _rel_shift(product, b, t, k)
    assert y.shape == (b, h, t, k)
    for i in range(t):
        for j in range(k - t + i + 1):                                                    # the causal part
            assert (y[:, :, i, j] == (k - t) + i - j).all()


def test_rel_shift_view_never_aliases():
    """Backward writes dS through the view: every (i, j) must own its element, or a masked entry's zero
    could overwrite an allowed entry's gradient."""
    b, h, t, k = 2, 2, 4, 9
    product = torch.zeros(h, b * t, position_rows(k))
    _rel_shift(product, b, t, k).copy_(torch.ones(b, h, t, k))
    assert product.sum() == b * h * t * k


def test_position_rows_are_padded_and_aligned():
    for k in (1, 15, 16, 384, 385):
        assert position_rows(k) > k and position_rows(k) % 16 == 0 and position_rows(k) - k <= 16


def test_full_stack_with_memories_matches_reference_per_layer():
    """A whole forward pass with non-empty cmem and mem: layer 0's attention equals the reference."""
    torch.manual_seed(1)
    cfg = CTConfig(d_model=16, n_layers=2, n_heads=4, d_ff=32, mem_len=4, cmem_len=4, compression_rate=2,
                   compression="mean_pool", dropout=0.0)
    model = CompressiveTransformer(cfg).double().eval()
    mem = model.init_memory(2, dtype=torch.float64)
    for _ in range(3):                                           # fill mem and cmem
        mem = model(torch.randn(2, 4, 16, dtype=torch.float64), mem).memory
    lm = mem.layers[0]
    assert lm.cmem.shape[1] == 4 and lm.mem.shape[1] == 4
    x = torch.randn(2, 4, 16, dtype=torch.float64)
    layer = model.layers[0]
    captured = {}

    def keep_output(module, inputs, output):
        captured["out"] = output[0]
    layer.attn.register_forward_hook(keep_output)
    model(x, mem)
    ref = naive_relative_attention(layer.attn, x, torch.cat([lm.cmem, lm.mem], 1))
    torch.testing.assert_close(captured["out"], ref, rtol=1e-9, atol=1e-9)


def test_causality_outputs_do_not_depend_on_future_inputs():
    torch.manual_seed(2)
    cfg = CTConfig(d_model=16, n_layers=3, n_heads=2, d_ff=32, mem_len=5, cmem_len=3, compression_rate=2,
                   dropout=0.0)
    model = CompressiveTransformer(cfg).eval()
    mem = model.init_memory(1)
    mem = model(torch.randn(1, 7, 16), mem).memory
    x = torch.randn(1, 9, 16)
    base = model(x, mem).hidden
    for t in range(9):
        x2 = x.clone()
        x2[:, t + 1:] += torch.randn_like(x2[:, t + 1:])
        out = model(x2, mem).hidden
        torch.testing.assert_close(out[:, :t + 1], base[:, :t + 1], rtol=0, atol=0)
        if t + 1 < 9:
            assert not torch.allclose(out[:, t + 1:], base[:, t + 1:])


@pytest.mark.parametrize("keep", [True, False], ids=["probabilities-kept", "recomputed"])
@pytest.mark.parametrize("same_length", [False, True])
def test_recomputed_attention_equals_explicit_path(same_length, keep, monkeypatch):
    """The CPU path that keeps the probabilities for backward, or recomputes them there (above
    KEEP_PROBS_BYTES), gives the explicit path's output and the same gradients for every input and weight
    (float64), with invalid memory slots masked."""
    monkeypatch.setattr(core_attention, "KEEP_PROBS_BYTES", core_attention.KEEP_PROBS_BYTES if keep else 0)
    attn = biased_attention(16, 4, seed=3)
    b, t, cm, m = 3, 5, 4, 6
    h = torch.randn(b, t, 16, dtype=torch.float64, requires_grad=True)
    cmem = torch.randn(b, cm, 16, dtype=torch.float64, requires_grad=True)
    mem = torch.randn(b, m, 16, dtype=torch.float64)
    pos = relative_position_embedding(cm + m + t, 16, -1, "cpu").double()
    key_valid = torch.ones(b, cm + m, dtype=torch.bool)
    key_valid[1, :cm + 2] = False                                   # a stream reset two windows ago
    mask = attention_mask(t, cm + m, same_length, key_valid, "cpu")
    results = []
    for need_weights in (True, False):                              # True forces the explicit path
        out = attn(h, (cmem, mem), pos, mask, need_weights=need_weights)[0]
        grads = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel(), dtype=torch.float64)
                                     .view_as(out)).sum(), [h, cmem, *attn.parameters()])
        results.append((out, grads))
    (out_e, grads_e), (out_r, grads_r) = results
    torch.testing.assert_close(out_r, out_e, rtol=1e-10, atol=1e-10)
    for g_r, g_e in zip(grads_r, grads_e):
        torch.testing.assert_close(g_r, g_e, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("keep", [True, False], ids=["probabilities-kept", "recomputed"])
def test_recomputed_attention_gradcheck(keep, monkeypatch):
    monkeypatch.setattr(core_attention, "KEEP_PROBS_BYTES", core_attention.KEEP_PROBS_BYTES if keep else 0)
    torch.manual_seed(4)
    b, hh, t, k, dh = 2, 2, 3, 5, 4
    q = torch.randn(b, hh, t, dh, dtype=torch.float64, requires_grad=True)
    u, v_bias = (torch.randn(hh, dh, dtype=torch.float64, requires_grad=True) for _ in range(2))
    kk, v = (torch.randn(b, hh, k, dh, dtype=torch.float64, requires_grad=True) for _ in range(2))
    r_padded = torch.randn(hh, k + 3, dh, dtype=torch.float64, requires_grad=True)   # rows K..: the shift's pad
    mask = attention_mask(t, k - t, False, None, "cpu")
    assert torch.autograd.gradcheck(RecomputedRelativeAttention.apply, (q, u, v_bias, 0.5, kk, v, r_padded, mask))


def test_fused_gpu_path_equals_explicit_path_on_the_cpu():
    """The SDPA path the GPU takes, run on the CPU in float64: the same output as the explicit path."""
    attn = biased_attention(32, 4, seed=5)
    h, mem = torch.randn(2, 5, 32, dtype=torch.float64), torch.randn(2, 7, 32, dtype=torch.float64)
    pos = relative_position_embedding(12, 32, -1, "cpu").double()
    key_valid = torch.ones(2, 7, dtype=torch.bool)
    key_valid[0, :3] = False
    mask = attention_mask(5, 7, False, key_valid, "cpu")
    out, _, q, k, v = attn(h, (mem,), pos, mask, need_weights=True)
    ctx = attn.fused_attention(q, k, v, attn.position_keys(pos), mask)
    torch.testing.assert_close(attn.out(ctx.transpose(1, 2).reshape(h.shape)), out, rtol=1e-10, atol=1e-10)
