"""Input embeddings and output heads of the language model.

- `TiedSoftmax`: one [V, d] matrix for input and output (byte and subword models).
- `AdaptiveInput` (Baevski & Auli, 2019) + `AdaptiveSoftmax` (Grave et al., 2017), the word-level
  WikiText-103 setting of the paper: the vocabulary is split at `cutoffs` into a head and tail clusters,
  tail clusters get narrower embeddings (d / div_value^i) projected to d.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def usable_cutoffs(cutoffs: tuple[int, ...], vocab_size: int) -> list[int]:
    """Cutoffs inside the vocabulary (WikiText-2's 33k words keeps only 20000 of [20000, 40000, 200000])."""
    return [c for c in cutoffs if 0 < c < vocab_size - 1]


class ScaledEmbedding(nn.Embedding):
    """tokens [B, T] -> [B, T, d], scaled by sqrt(d) as in TransformerXL (an nn.Embedding, so that
    core.count_parameters leaves it, and the output layer tied to it, out of the non-embedding count)."""

    def __init__(self, vocab_size: int, d: int):
        super().__init__(vocab_size, d)
        nn.init.normal_(self.weight, std=0.02)
        self.scale = math.sqrt(d)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.weight) * self.scale


class AdaptiveInput(nn.Module):
    """tokens [B, T] -> [B, T, d]: cluster i embeds with width d / div_value^i, then projects to d."""

    def __init__(self, vocab_size: int, d: int, cutoffs: list[int], div_value: float = 4.0):
        super().__init__()
        self.bounds = [0, *cutoffs, vocab_size]
        self.d = d
        self.emb = nn.ModuleList()
        self.proj = nn.ModuleList()
        for i in range(len(self.bounds) - 1):
            width = max(1, int(d // (div_value ** i)))
            self.emb.append(nn.Embedding(self.bounds[i + 1] - self.bounds[i], width))
            nn.init.normal_(self.emb[-1].weight, std=width ** -0.5)
            self.proj.append(nn.Linear(width, d, bias=False))
        self.scale = math.sqrt(d)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        flat = tokens.reshape(-1)
        out = None
        for i, (emb, proj) in enumerate(zip(self.emb, self.proj)):
            lo, hi = self.bounds[i], self.bounds[i + 1]
            mask = (flat >= lo) & (flat < hi)
            part = proj(emb((flat - lo).clamp(0, hi - lo - 1))) * mask.unsqueeze(-1)
            out = part if out is None else out + part
        return (out * self.scale).view(*tokens.shape, self.d)


class TiedSoftmax(nn.Module):
    """Full softmax whose output matrix is the input embedding (tied) or its own (untied)."""

    def __init__(self, vocab_size: int, d: int, tied_to: ScaledEmbedding | None):
        super().__init__()
        self.tied_to = [tied_to]  # a list so the embedding is not registered twice as a submodule
        self.weight = None if tied_to is not None else nn.Parameter(torch.randn(vocab_size, d) * 0.02)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def _weight(self) -> torch.Tensor:
        return self.weight if self.weight is not None else self.tied_to[0].weight

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """h: [N, d] -> [N, V] logits in at least float32 (float64 in a float64 model; bf16 is upcast)."""
        logits = F.linear(h, self._weight(), self.bias)
        return logits.to(torch.promote_types(logits.dtype, torch.float32))

    def log_prob(self, h: torch.Tensor) -> torch.Tensor:
        """h: [N, d] -> [N, V] log-probabilities (at least float32)."""
        return F.log_softmax(self.logits(h), dim=-1)

    def nll(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """h: [N, d], target: [N] -> [N] nats."""
        return F.cross_entropy(self.logits(h), target, reduction="none")


class AdaptiveSoftmax(nn.Module):
    """torch.nn.AdaptiveLogSoftmaxWithLoss behind the same nll / log_prob interface."""

    def __init__(self, vocab_size: int, d: int, cutoffs: list[int], div_value: float = 4.0):
        super().__init__()
        self.inner = nn.AdaptiveLogSoftmaxWithLoss(d, vocab_size, cutoffs, div_value=div_value)

    def log_prob(self, h: torch.Tensor) -> torch.Tensor:
        return self.inner.log_prob(h.float())

    def nll(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.autocast(h.device.type, enabled=False):
            return -self.inner(h.float(), target).output
