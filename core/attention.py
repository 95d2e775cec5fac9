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

import torch
import torch.nn.functional as F
from torch import nn


def sinusoid_positions(distances: torch.Tensor, d_model: int) -> torch.Tensor:
    """distances: [K] (float) -> [K, d_model] sinusoidal embeddings (sin half, cos half)."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d_model, 2, device=distances.device,
                                             dtype=torch.float32) / d_model))
    angles = distances.float()[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def relative_position_embedding(n_keys: int, d_model: int, clamp_len: int, device) -> torch.Tensor:
    """Embeddings of the distances K-1, ..., 0 (the order rel-shift expects): [K, d_model]."""
    distances = torch.arange(n_keys - 1, -1, -1.0, device=device)
    if clamp_len > 0:
        distances = distances.clamp(max=clamp_len)
    return sinusoid_positions(distances, d_model)


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """The pad-and-view rel-shift. x: [B, H, T, K] with column j holding distance K-1-j, K >= T.

    Returns y: [B, H, T, K] with y[..., i, j] = x[..., i, j + T - 1 - i], so y[i, j] holds distance
    (K - T) + i - j, the true distance of key j from query i. Entries with j > K - T + i are garbage
    and must be masked (they are the causal future).
    """
    b, h, t, k = x.shape
    padded = F.pad(x, (1, 0))                      # [B, H, T, K+1]
    padded = padded.view(b, h, k + 1, t)           # reinterpret the memory layout
    return padded[:, :, 1:].view(b, h, t, k)


def attention_mask(t: int, prefix: int, same_length: bool, key_valid: torch.Tensor | None,
                   device) -> torch.Tensor:
    """Boolean mask of allowed (query, key) pairs.

    t: window length T; prefix: P = n_cm + n_m keys before the window; key_valid: [B, P] or None
    (False for memory slots of a stream that was reset). Returns [T, K] or [B, 1, T, K], K = P + T.
    """
    k = prefix + t
    i = torch.arange(t, device=device)[:, None]
    j = torch.arange(k, device=device)[None, :]
    allowed = j <= prefix + i                      # causal: nothing from the future of the window
    if same_length and prefix > 0:
        allowed = allowed & (j > i)                # every query sees exactly P keys
    if key_valid is None:
        return allowed
    valid = torch.cat([key_valid, key_valid.new_ones(key_valid.shape[0], t)], dim=1)   # [B, K]
    return allowed[None, None] & valid[:, None, None, :]


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

    def project(self, x: torch.Tensor, part: slice, detach_weights: bool = False) -> torch.Tensor:
        """x: [B, N, d] -> heads [B, H, N*, d_head] for the rows ``part`` of the stacked qkv weight.

        ``detach_weights`` computes with stopped gradients into W (the compression losses use it);
        the weights themselves are never modified.
        """
        w = self.qkv.weight[part]
        y = F.linear(x, w.detach() if detach_weights else w)
        b, n, _ = y.shape
        return y.view(b, n, -1, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)

    def forward(self, h: torch.Tensor, prefix: torch.Tensor, pos_emb: torch.Tensor,
                mask: torch.Tensor, need_weights: bool = False):
        """h: [B, T, d] window; prefix: [B, P, d] = [cmem; mem]; pos_emb: [K, d] for distances K-1..0;
        mask: bool [T, K] or [B, 1, T, K] (True = allowed).

        Returns out [B, T, d], probs [B, H, T, K] (or None), q [B, H, T, dh], k and v [B, H, K, dh].
        """
        d = h.shape[-1]
        x = torch.cat([prefix, h], dim=1) if prefix.shape[1] else h
        q = self.project(h, slice(0, d))[0]                       # [B, H, T, dh]
        k, v = self.project(x, slice(d, 3 * d)).unbind(0)        # [B, H, K, dh] each
        r = self.r_net(pos_emb).view(-1, self.n_heads, self.d_head).transpose(0, 1)   # [H, K, dh]

        # The scale goes into the queries, so the [B, H, T, K] scores are built in place, once.
        q_u, q_v = (q + self.r_w_bias[:, None]) * self.scale, (q + self.r_r_bias[:, None]) * self.scale
        position = rel_shift(torch.matmul(q_v, r.transpose(-1, -2)))                 # BD: [B, H, T, K]
        if h.is_cuda and not need_weights:
            # Fused kernel on GPUs: the position term enters as an additive bias of the content scores.
            bias = position.masked_fill(~mask, float("-inf"))
            ctx = F.scaled_dot_product_attention(q_u, k, v, attn_mask=bias, scale=1.0,
                                                 dropout_p=self.dropatt.p if self.training else 0.0)
            probs = None
        else:
            scores = torch.matmul(q_u, k.transpose(-1, -2)).add_(position)          # AC + BD
            probs = torch.softmax(scores.masked_fill_(~mask, torch.finfo(scores.dtype).min), dim=-1)
            ctx = torch.matmul(self.dropatt(probs), v)                                # [B, H, T, dh]
        out = self.out(ctx.transpose(1, 2).reshape(h.shape))
        return out, probs, q, k, v
