"""Auxiliary compression losses (Rae et al., 2020, Section 3.2 and Algorithm 2).

Both losses train the compressor only: their inputs and the main network's weights enter with stopped
gradients (``detach``), so the main network is never shaped by, nor frozen by, the compression loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def content_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Content-based attention without positions. q: [B, H, T, dh], k, v: [B, H, N, dh] -> [B, H, T, dh].

    On the CPU it is written out (two batched matmuls around a softmax): at the loss's sizes (N = the evicted
    memories, tens to hundreds of keys) torch's CPU flash kernel runs 2-6x slower forward and backward, in
    bf16 most of all (core/bench.py's profile: 13% of a bf16 Compressive Transformer step). GPUs keep SDPA."""
    if q.is_cuda:
        return F.scaled_dot_product_attention(q, k, v)
    scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def attention_reconstruction_loss(q: torch.Tensor, old_k: torch.Tensor, old_v: torch.Tensor,
                                  comp_k: torch.Tensor, comp_v: torch.Tensor) -> torch.Tensor:
    """Algorithm 2's attention-reconstruction loss, in the form we use.

    The paper (Algorithm 2) sums, over layers, the L2 norm of the difference of two content attentions
    without a scale:

        L_attn = sum_i || attn(h, old_mem) - attn(h, f_c(old_mem)) ||_2,
        attn(h, m) = softmax((h W_q)(m W_k)^T) (m W_v).

    We compute, per layer, the *mean of the squared* differences over [B, H, T, d_head], with the content
    attention scaled by 1/sqrt(d_head) (``content_attention``), and the stack sums the layers
    (``compression_loss_weight`` times the sum, see CTOutput.aux_loss). Why: the mean keeps the loss's
    size independent of batch, window, width and heads (the paper's norm grows with all of them, so its
    weight would need retuning per preset); the scale is the one the main attention reads the compressed
    memory with, so the compressor is trained for the attention it will serve. Both reach zero exactly
    when the two attentions agree, so a perfect compression minimises either; the gradients' size and
    their weighting across tokens differ (squared error weighs large errors more than the norm does).
    docs/contracts.md names this choice beside the paper's formula.

    q: [B, H, T, dh] queries of the current window (detached); old_k, old_v: [B, H, N, dh] keys and
    values of the old memories (detached); comp_k, comp_v: [B, H, n, dh] keys and values of
    f_c(old_mem), made with stopped gradients into W_k, W_v, so only the compressor learns from this.
    """
    return F.mse_loss(content_attention(q, comp_k, comp_v), content_attention(q, old_k, old_v))


class AutoencodingDecoder(nn.Module):
    """Reconstructs the c old memories of each group from its compressed memory: [B, n, d] -> [B, n*c, d]."""

    def __init__(self, d_model: int, rate: int):
        super().__init__()
        self.rate = rate
        self.proj = nn.Linear(d_model, d_model * rate)

    def forward(self, compressed: torch.Tensor) -> torch.Tensor:
        b, n, d = compressed.shape
        return self.proj(compressed).view(b, n * self.rate, d)


def autoencoding_loss(decoder: AutoencodingDecoder, compressed: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """|| old_mem - g(f_c(old_mem)) ||^2 with old detached. compressed: [B, n, d]; old: [B, n*c, d]."""
    return F.mse_loss(decoder(compressed), old.detach())
