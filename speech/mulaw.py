"""8-bit mu-law companding (ITU-T G.711 formula, as in WaveNet, van den Oord et al. 2016, Section 2.2).

The paper (Rae et al. 2020, Section 5.6) models raw speech as a sequence of 256-way mu-law classes.
Both directions are plain torch so that they run on any device and inside data loaders.
"""
from __future__ import annotations

import math

import torch

MU = 255
N_CLASSES = MU + 1


def mu_law_encode(x: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Quantise a waveform to mu-law classes.

    x: [...] float in [-1, 1] (values outside are clipped) -> [...] uint8 in [0, mu] (int64 if mu > 255).
    F(x) = sign(x) ln(1 + mu|x|) / ln(1 + mu), then uniform quantisation of F on [-1, 1] into mu+1 bins.
    One byte per sample is how corpora are held (2.1e9 samples, the paper's corpus size, are 2 GiB, not the
    16 GiB of int64); models get int64 only per batch (speech/streams.py).
    """
    x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32).clamp(-1.0, 1.0)
    f = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return ((f + 1) / 2 * mu + 0.5).floor().clamp(0, mu).to(torch.uint8 if mu <= 255 else torch.int64)


def mu_law_decode(q: torch.Tensor, mu: int = MU, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of `mu_law_encode` (bin centres back to amplitudes).

    q: [...] int in [0, mu] -> [...] float in [-1, 1]; x = sign(y) ((1 + mu)^|y| - 1) / mu with y = 2q/mu - 1.
    """
    y = 2 * q.to(dtype) / mu - 1
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


def mu_law_error_bound(x: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Largest round-trip error the quantiser allows at amplitude x: [...] -> [...].

    Encoding rounds F(x) to the nearest of mu+1 levels spaced 2/mu apart, so |F(x) - y| <= 1/mu; decoding is
    monotone with derivative dx/dy = ln(1+mu) (1+mu)^|y| / mu, so the error is at most that slope at
    |y| = F(|x|) + 1/mu, times 1/mu.
    """
    f = torch.log1p(mu * x.abs().clamp(max=1.0)) / math.log1p(mu)
    slope = math.log1p(mu) * torch.exp((f + 1 / mu).clamp(max=1.0) * math.log1p(mu)) / mu
    return slope / mu
