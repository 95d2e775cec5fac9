"""Compression functions f_c: [B, n*c, d] old memories -> [B, n, d] compressed memories.

Section 3.2 of Rae et al. (2020) compares max/mean pooling, 1D convolution, dilated convolution and
most-used; ``gru`` is the recurrent compressor of the paper's open question 2. Every compressor works
on consecutive groups of c memories, so the compressed memory does not depend on how the stream was
cut into windows. Compressors are chosen by name from ``COMPRESSORS``.
"""
from __future__ import annotations

import torch
from torch import nn


class Compressor(nn.Module):
    """Interface: forward(old [B, n*c, d], usage [B, n*c] or None) -> [B, n, d]."""

    def __init__(self, d_model: int, rate: int):
        super().__init__()
        self.d_model, self.rate = d_model, rate

    def groups(self, old: torch.Tensor) -> torch.Tensor:
        """old: [B, n*c, d] -> [B, n, c, d]."""
        b, m, d = old.shape
        return old.view(b, m // self.rate, self.rate, d)


class MaxPool(Compressor):
    def forward(self, old, usage=None):
        return self.groups(old).amax(dim=2)


class MeanPool(Compressor):
    def forward(self, old, usage=None):
        return self.groups(old).mean(dim=2)


class Conv(Compressor):
    """1D convolution with kernel size = stride = c (the paper's best compressor)."""

    def __init__(self, d_model, rate):
        super().__init__(d_model, rate)
        self.conv = nn.Conv1d(d_model, d_model, kernel_size=rate, stride=rate)

    def forward(self, old, usage=None):
        # A strided convolution is a linear map of each flattened group: one matmul, no im2col. The group is
        # flattened channel-major ([d, c], as the weight [d_out, d_in, c] lies), so the weight needs no copy.
        b, m, d = old.shape
        groups = self.groups(old).transpose(2, 3).reshape(b * (m // self.rate), d * self.rate)   # [B*n, d*c]
        out = torch.nn.functional.linear(groups, self.conv.weight.view(self.d_model, -1), self.conv.bias)
        return out.view(b, m // self.rate, self.d_model)


class DilatedConv(Compressor):
    """A stack of causal convolutions with kernel 2 and dilations 1, 2, 4, ... inside each group of c,
    whose last position summarises the group (WaveNet-style dilation, group-local)."""

    def __init__(self, d_model, rate):
        super().__init__(d_model, rate)
        dilations, span = [], 1
        while span < rate:
            dilations.append(span)
            span *= 2
        self.dilations = dilations or [1]
        self.layers = nn.ModuleList(nn.Conv1d(d_model, d_model, 2, dilation=dl) for dl in self.dilations)

    def forward(self, old, usage=None):
        g = self.groups(old)                                           # [B, n, c, d]
        b, n, c, d = g.shape
        x = g.reshape(b * n, c, d).transpose(1, 2)                     # [B*n, d, c]
        for dl, conv in zip(self.dilations, self.layers):
            y = conv(torch.nn.functional.pad(x, (dl, 0)))             # causal padding keeps length c
            x = y if conv is self.layers[0] else x + torch.tanh(y)    # residual after the first layer
        return x[:, :, -1].view(b, n, d)


class MostUsed(Compressor):
    """Keeps, of each group of c memories, the one that received the most attention on average
    (its usage), so n*c memories become n, in temporal order."""

    def forward(self, old, usage=None):
        if usage is None:
            raise ValueError("most_used compression needs the memories' attention usage")
        g = self.groups(old)                                           # [B, n, c, d]
        pick = usage.view(usage.shape[0], -1, self.rate).argmax(dim=-1)    # [B, n]
        return torch.gather(g, 2, pick[..., None, None].expand(-1, -1, 1, g.shape[-1])).squeeze(2)


class GRUCompressor(Compressor):
    """A GRU reads each group of c memories; its last state is the compressed memory."""

    def __init__(self, d_model, rate):
        super().__init__(d_model, rate)
        self.gru = nn.GRU(d_model, d_model, batch_first=True)

    def forward(self, old, usage=None):
        g = self.groups(old)
        b, n, c, d = g.shape
        _, last = self.gru(g.reshape(b * n, c, d))
        return last[0].view(b, n, d)


COMPRESSORS: dict[str, type[Compressor]] = {
    "max_pool": MaxPool,
    "mean_pool": MeanPool,
    "conv": Conv,
    "dilated_conv": DilatedConv,
    "most_used": MostUsed,
    "gru": GRUCompressor,
}


def build_compressor(name: str, d_model: int, rate: int) -> Compressor:
    if name not in COMPRESSORS:
        raise ValueError(f"compression: unknown compressor {name!r}; choose one of {', '.join(COMPRESSORS)}")
    return COMPRESSORS[name](d_model, rate)
