"""Relative multi-head attention over [compressed memory; memory; window].

TransformerXL's relative positional attention (Dai et al., 2019, Section 3.3): the score between query
i and key j is

    A_ij = (q_i + u)·k_j  +  (q_i + v)·W_r R_{i-j}
           \\_ content _/     \\___ position ___/

with sinusoids R of the relative distance, a global content bias u (``r_w_bias``) and position bias v
(``r_r_bias``). The position term is computed once against all K distances and aligned by the
pad-and-view rel-shift. The Compressive Transformer attends over compressed memories exactly as over
memories: each compressed slot is one more position further back (Rae et al., 2020, Section 3).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def sinusoid_positions(distances: torch.Tensor, d_model: int) -> torch.Tensor:
    """distances: [K] -> [K, d_model] sinusoidal embeddings (sin half, cos half), computed in the distances'
    dtype when it is float64 (a float64 model gets float64 positions) and in float32 otherwise."""
    dtype = torch.promote_types(distances.dtype, torch.float32)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d_model, 2, device=distances.device, dtype=dtype) / d_model))
    angles = distances.to(dtype)[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def relative_position_embedding(n_keys: int, d_model: int, clamp_len: int, device,
                                dtype: torch.dtype | None = None) -> torch.Tensor:
    """Embeddings of the distances K-1, ..., 0 (the order rel-shift expects): [K, d_model] in ``dtype``
    (default: torch's default dtype)."""
    distances = torch.arange(n_keys - 1, -1, -1.0, device=device, dtype=dtype)
    if clamp_len > 0:
        distances = distances.clamp(max=clamp_len)
    return sinusoid_positions(distances, d_model)


def attention_mask(t: int, prefix: int, same_length: bool, key_valid: torch.Tensor | None,
                   device, reach: int | None = None) -> torch.Tensor:
    """Boolean mask of allowed (query, key) pairs.

    t: window length T; prefix: P = n_cm + n_m keys before the window; key_valid: [B, P] or None
    (False for memory slots of a stream that was reset). Returns [T, K] or [B, 1, T, K], K = P + T.

    same_length (TransformerXL's evaluation setting): query i sees only the keys at distance
    P + i - j < reach, where reach is the *configured* memory size n_cm + n_m (None: P, a full memory).
    This is TransformerXL's mask (mem_transformer.py: triu(ones, 1 + mlen) + tril(ones, -mask_shift_len),
    mask_shift_len = qlen - (klen - mem_len)) with mem_len = n_cm + n_m: the compressed slots count as
    keys like the memories, and while the memory is still filling each query sees up to `reach` keys
    of what exists, not just P. reach = 0 (no memory configured) leaves the mask causal.
    """
    k = prefix + t
    i = torch.arange(t, device=device)[:, None]
    j = torch.arange(k, device=device)[None, :]
    allowed = j <= prefix + i                      # causal: nothing from the future of the window
    reach = prefix if reach is None else reach
    if same_length and reach > 0:
        allowed = allowed & (j > prefix + i - reach)   # every query sees at most `reach` keys
    if key_valid is None:
        return allowed
    valid = torch.cat([key_valid, key_valid.new_ones(key_valid.shape[0], t)], dim=1)   # [B, K]
    return allowed[None, None] & valid[:, None, None, :]


def _biased_queries(q, r_w_bias, r_r_bias, scale):
    """q: [B, H, T, dh]; biases [H, dh] -> (q + u) * scale, (q + v) * scale, each [B, H, T, dh] in q's dtype.
    The scale goes into the queries, so the [B, H, T, K] scores are built in place, once. Under autocast q is
    bf16 and the biases float32: adding them in q's dtype rounds the sum once, as the matmul's cast of a
    float32 sum would, without making float32 copies of the queries to cast back."""
    return (torch.add(q, r_w_bias.to(q.dtype)[:, None]).mul_(scale),
            torch.add(q, r_r_bias.to(q.dtype)[:, None]).mul_(scale))


def _head_major_position(q_v: torch.Tensor, r_padded: torch.Tensor, n_keys: int):
    """The position term BD, computed head-major and rel-shifted without a copy.

    q_v: [B, H, T, dh]; r_padded: [H, L, dh], the projected sinusoids of distances K-1..0 followed by
    L - K >= 1 rows of zeros (see ``position_rows``). Returns (q_v as [H, B*T, dh], the product
    [H, B*T, L], BD as a [B, H, T, K] view of it).
    """
    b, h, t, dh = q_v.shape
    qv_heads = q_v.transpose(0, 1).reshape(h, b * t, dh)
    product = torch.bmm(qv_heads, r_padded.transpose(1, 2))                         # [H, B*T, L]
    return qv_heads, product, _rel_shift(product, b, t, n_keys)


def position_rows(n_keys: int) -> int:
    """L, the rows of the padded position keys for K keys: at least one zero row after the K distances
    (the rel-shift reads each query's row from a different column, and needs rows of length > K), rounded
    up to a multiple of 16, since an odd width such as K + 1 slows the CPU's batched matmul ~1.6x."""
    return -(-(n_keys + 1) // 16) * 16


def _rel_shift(product: torch.Tensor, b: int, t: int, n_keys: int) -> torch.Tensor:
    """TransformerXL's pad-and-view rel-shift as a strided view. product: [H, B*T, L] with L > K, column
    m < K holding distance K-1-m for every query row (columns m >= K: the zero pad).

    Row i of each (head, batch) block is read from its column T-1-i on, with a row stride of L - 1, so
    entry (i, j) holds distance (K - T) + i - j, the true distance of key j from query i. Entries with
    j > K - T + i are the pad or the next row's values (the causal future) and must be masked; no two
    entries share an element, since rows are longer than K. Returns [B, H, T, K].
    """
    h, _, width = product.shape
    return product.as_strided((b, h, t, n_keys), (t * width, b * t * width, width - 1, 1),
                              product.storage_offset() + t - 1)


def _relative_scores(q_u, q_v, k, r_padded, mask):
    """Masked scores AC + BD: q_u, q_v [B, H, T, dh] (scaled); k [B, H, K, dh]; r_padded [H, L, dh].
    Returns the scores [B, H, T, K] and q_v as [H, B*T, dh]."""
    qv_heads, _, position = _head_major_position(q_v, r_padded, k.shape[2])
    scores = torch.matmul(q_u, k.transpose(-1, -2)).add_(position)                  # AC + BD
    # Adding 0 / the lowest float is exact here (|scores| << 1e31) and ~5x faster on CPUs than masked_fill_
    # with a mask broadcast over heads.
    lowest = scores.new_full((), torch.finfo(scores.dtype).min)
    return scores.add_(torch.where(mask, scores.new_zeros(()), lowest)), qv_heads


# A layer's attention probabilities up to this size are kept for backward; larger ones are recomputed there.
# At the bench's reference size they are 3-6 MiB a layer, and recomputing them cost ~10% of a bf16 CT step.
KEEP_PROBS_BYTES = 64 << 20


def _in_autocast_dtype(w: torch.Tensor) -> torch.Tensor:
    """A float32 weight in the autocast dtype when autocast is on for its device, else as it is. Cast once
    here because autocast casts a *slice* of a weight anew at every matmul that reads it (it caches casts
    of leaf tensors only): the per-part projections would cast the key/value rows once per part, and
    backward would cast each of their gradients back."""
    device = w.device.type
    if w.dtype == torch.float32 and torch.is_autocast_enabled(device):
        return w.to(torch.get_autocast_dtype(device))
    return w


class RecomputedRelativeAttention(torch.autograd.Function):
    """softmax(AC + BD) V that saves no [B, H, T, K] tensor but the probabilities for backward, and above
    KEEP_PROBS_BYTES not even those: then it keeps only its inputs and recomputes the probabilities in
    backward, as fused GPU kernels do, for one more pair of matmuls there. (The position term, the masked
    scores and their softmax's intermediates are never kept.)
    The CPU path without attention dropout uses it; its gradients equal the explicit path's
    (tests/core/test_attention.py). Under bf16 autocast, ``custom_fwd``/``custom_bwd`` run backward under
    the forward's autocast state, so the recomputed probabilities are the forward's, in bf16
    (tests/core/test_precision.py).

    Inputs: q [B, H, T, dh] (unscaled), r_w_bias and r_r_bias [H, dh], scale (float), k and v
    [B, H, K, dh], r_padded [H, L, dh] (see ``_head_major_position``), mask bool [T, K] or [B, 1, T, K].
    Output: [B, H, T, dh].
    """

    @staticmethod
    def _probs(q, r_w_bias, r_r_bias, scale, k, r_padded, mask):
        q_u, q_v = _biased_queries(q, r_w_bias, r_r_bias, scale)
        scores, qv_heads = _relative_scores(q_u, q_v, k, r_padded, mask)
        return torch.softmax(scores, dim=-1), q_u, qv_heads

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")   # backward runs under the forward's autocast state
    def forward(ctx, q, r_w_bias, r_r_bias, scale, k, v, r_padded, mask):
        probs, q_u, qv_heads = RecomputedRelativeAttention._probs(q, r_w_bias, r_r_bias, scale, k, r_padded, mask)
        ctx.kept = probs.numel() * probs.element_size() <= KEEP_PROBS_BYTES
        if ctx.kept:
            ctx.save_for_backward(k, v, r_padded, probs, q_u, qv_heads)
        else:
            ctx.save_for_backward(q, r_w_bias, r_r_bias, k, v, r_padded, mask)
        ctx.scale = scale
        return torch.matmul(probs, v)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad_out):
        if ctx.kept:
            k, v, r_padded, probs, q_u, qv_heads = ctx.saved_tensors
        else:
            q, r_w_bias, r_r_bias, k, v, r_padded, mask = ctx.saved_tensors
            probs, q_u, qv_heads = RecomputedRelativeAttention._probs(q, r_w_bias, r_r_bias, ctx.scale, k, r_padded,
                                                                      mask)
        grad_v = torch.matmul(probs.transpose(-1, -2), grad_out)
        # softmax backward: dS = P * (dP - rowsum(P * dP)); masked entries have P = 0, so dS = 0 there.
        grad_scores = torch.matmul(grad_out, v.transpose(-1, -2))
        grad_scores.sub_(torch.linalg.vecdot(grad_scores, probs).unsqueeze(-1)).mul_(probs)
        del probs
        grad_q_u = torch.matmul(grad_scores, k)
        grad_k = torch.matmul(grad_scores.transpose(-1, -2), q_u)
        # Through the rel-shift: dS written back into the view of the head-major product; the entries the
        # view does not cover (the start of each block, the pad between rows) get no gradient.
        b, h, t, n = grad_scores.shape
        grad_product = grad_scores.new_zeros(h, b * t, r_padded.shape[1])
        _rel_shift(grad_product, b, t, n).copy_(grad_scores)
        del grad_scores
        grad_q_v = torch.bmm(grad_product, r_padded).view(h, b, t, -1).transpose(0, 1)
        grad_r = torch.bmm(grad_product.transpose(1, 2), qv_heads)
        grad_q_u.mul_(ctx.scale)
        grad_q_v = grad_q_v * ctx.scale
        return (grad_q_u + grad_q_v, grad_q_u.sum((0, 2)), grad_q_v.sum((0, 2)), None, grad_k, grad_v, grad_r,
                None)


class RelativeMultiHeadAttention(nn.Module):
    """Multi-head attention with TransformerXL relative positions.

    The query comes from the window only; keys and values from [cmem; mem; window]. Key/value
    projections of all K positions are returned so the attention-reconstruction loss can reuse them.
    """

    def __init__(self, d_model: int, n_heads: int, dropatt: float):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.scale = 1.0 / math.sqrt(self.d_head)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)      # W_q, W_k, W_v stacked
        self.r_net = nn.Linear(d_model, d_model, bias=False)        # W_r, projects the sinusoids
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.r_w_bias = nn.Parameter(torch.zeros(n_heads, self.d_head))   # u
        self.r_r_bias = nn.Parameter(torch.zeros(n_heads, self.d_head))   # v
        self.dropatt = nn.Dropout(dropatt)

    def project(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x: [B, N, d]; w: rows of the stacked qkv weight, [m*d, d] -> heads [m, B, H, N, d_head]."""
        b, n, d = x.shape
        y = F.linear(x.reshape(b * n, d), w)             # 2-D: the weight's gradient comes out without a copy
        return y.view(b, n, -1, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)

    def forward(self, h: torch.Tensor, memories: Sequence[torch.Tensor], pos_emb: torch.Tensor,
                mask: torch.Tensor, need_weights: bool = False):
        """h: [B, T, d] window; memories: the P positions before it, oldest first, in parts ([cmem, mem]:
        [B, P_i, d] each); pos_emb: [K, d] for distances K-1..0; mask: bool [T, K] or [B, 1, T, K]
        (True = allowed).

        Returns out [B, T, d], probs [B, H, T, K] (or None), q [B, H, T, dh], k and v [B, H, K, dh].
        """
        d = h.shape[-1]
        # Each part is projected where it lies and the heads are joined along the key axis: k and v come
        # out contiguous, so the matmuls below neither copy them nor keep a [cmem; mem; window] copy of
        # the inputs for backward (the memories themselves are what the projection saves).
        # One split of the weight: its backward is one concatenation, where a slice per use would build
        # a zero-filled weight-sized gradient for each of them.
        w_q, w_kv = _in_autocast_dtype(self.qkv.weight).split([d, 2 * d])
        q = self.project(h, w_q).squeeze(0)                                            # [B, H, T, dh]
        parts = [self.project(x, w_kv) for x in (*memories, h) if x.shape[1]]
        k = torch.cat([p[0] for p in parts], dim=2)                                    # [B, H, K, dh]
        v = torch.cat([p[1] for p in parts], dim=2)
        r = self.position_keys(pos_emb)                                               # [H, L, dh]
        return (*self.attend(h, q, k, v, r, mask, need_weights), q, k, v)

    def forward_cached(self, h: torch.Tensor, k_mem: Sequence[torch.Tensor], v_mem: Sequence[torch.Tensor],
                       r: torch.Tensor, mask: torch.Tensor, need_weights: bool = False):
        """Generation (core/cache.py): ``forward`` with the memories' keys and values already projected,
        k_mem and v_mem in parts ([B, H, P_i, dh] each, oldest first), and the position keys r [H, L, dh] (L > K);
        only the window is projected. Returns what ``forward`` returns."""
        q, k_new, v_new = self.project(h, self.qkv.weight).unbind(0)                  # [B, H, T, dh] each
        k, v = torch.cat([*k_mem, k_new], dim=2), torch.cat([*v_mem, v_new], dim=2)    # [B, H, K, dh]
        return (*self.attend(h, q, k, v, r, mask, need_weights), q, k, v)

    def attend(self, h, q, k, v, r, mask, need_weights):
        """softmax(AC + BD) V through the output projection: h [B, T, d] (for its shape); q [B, H, T, dh];
        k, v [B, H, K, dh]; r [H, L, dh] (L > K). Returns out [B, T, d] and probs [B, H, T, K] (or None)."""
        explicit = need_weights or (self.training and self.dropatt.p > 0)
        if h.is_cuda and not need_weights:
            ctx, probs = self.fused_attention(q, k, v, r, mask), None
        elif not explicit:
            ctx = RecomputedRelativeAttention.apply(q, self.r_w_bias, self.r_r_bias, self.scale, k, v, r, mask)
            probs = None
        else:
            q_u, q_v = _biased_queries(q, self.r_w_bias, self.r_r_bias, self.scale)
            probs = torch.softmax(_relative_scores(q_u, q_v, k, r, mask)[0], dim=-1)      # [B, H, T, K]
            ctx = torch.matmul(self.dropatt(probs), v)                                # [B, H, T, dh]
        out = self.out(ctx.transpose(1, 2).reshape(-1, h.shape[-1])).view(h.shape)
        return out, probs

    def position_keys(self, pos_emb: torch.Tensor) -> torch.Tensor:
        """pos_emb [K, d] -> W_r R, head-major, followed by rows of zeros (the rel-shift's pad): [H, L, dh]
        with L = position_rows(K)."""
        n_pad = position_rows(pos_emb.shape[0]) - pos_emb.shape[0]
        return self.r_net(F.pad(pos_emb, (0, 0, 0, n_pad))).view(-1, self.n_heads, self.d_head).transpose(0, 1)

    def fused_attention(self, q, k, v, r_padded, mask) -> torch.Tensor:
        """The GPU path: PyTorch's fused attention kernel, with the position term BD entering as an additive
        bias of the content scores. Shapes as in ``RecomputedRelativeAttention``; returns [B, H, T, dh]."""
        q_u, q_v = _biased_queries(q, self.r_w_bias, self.r_r_bias, self.scale)
        bias = _head_major_position(q_v, r_padded, k.shape[2])[2].masked_fill(~mask, float("-inf"))       # [B, H, T, K]
        return F.scaled_dot_product_attention(q_u, k, v, attn_mask=bias, scale=1.0,
                                              dropout_p=self.dropatt.p if self.training else 0.0)
