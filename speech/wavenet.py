"""WaveNet baseline (van den Oord et al. 2016), the paper's speech comparison (Rae et al. 2020, Section 5.6).

Dilated causal convolutions (dilations 1, 2, ..., 2^(cycle-1), repeated), gated units tanh(W_f x) * sigmoid(W_g x),
1x1 residual and skip convolutions, a ReLU-1x1-ReLU-1x1 head to a 256-way softmax over mu-law classes.
The input layer is an embedding (a 1x1 convolution of the one-hot input), so the receptive field is exactly
(kernel - 1) * sum(dilations) + 1 samples.

Generation is incremental ("Fast WaveNet", Paine et al. 2016): each layer keeps a circular queue of its last
(kernel - 1) * dilation inputs, so one new sample costs O(layers), not a recompute of the receptive field.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class WaveNetConfig:
    """n_layers dilated layers; dilation of layer i is 2 ** (i % dilation_cycle)."""
    n_layers: int = 30
    dilation_cycle: int = 10
    kernel_size: int = 2
    residual_channels: int = 256
    dilation_channels: int = 256
    skip_channels: int = 256
    n_classes: int = 256
    dropout: float = 0.0
    # how training windows continue a stream (speech.models.SpeechWaveNet): "reread" prepends the previous
    # receptive_field - 1 samples and recomputes them, with gradient; "carry" keeps each layer's last
    # (kernel - 1) * dilation inputs from the previous window, detached as a TXL memory is: the same logits for
    # a fraction of the compute (window 1024, field 2047: ~1/2.7), no gradient into the previous window
    context: str = "reread"

    def __post_init__(self):
        if self.context not in ("reread", "carry"):
            raise ValueError(f"wavenet.context={self.context!r}: expected 'reread' or 'carry'")
        for name in ("n_layers", "dilation_cycle", "residual_channels", "dilation_channels", "skip_channels",
                     "n_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"wavenet.{name}={getattr(self, name)}: must be >= 1")
        if self.kernel_size < 2:
            raise ValueError(f"wavenet.kernel_size={self.kernel_size}: must be >= 2")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"wavenet.dropout={self.dropout}: expected 0 <= dropout < 1")

    @property
    def dilations(self) -> list[int]:
        return [2 ** (i % self.dilation_cycle) for i in range(self.n_layers)]

    @property
    def receptive_field(self) -> int:
        return (self.kernel_size - 1) * sum(self.dilations) + 1


class WaveNet(nn.Module):
    """tokens: [B, T] int64 mu-law classes -> logits [B, T, n_classes]; logits[:, t] predicts tokens[:, t + 1]."""

    def __init__(self, cfg: WaveNetConfig):
        super().__init__()
        self.cfg = cfg
        R, D, S, k = cfg.residual_channels, cfg.dilation_channels, cfg.skip_channels, cfg.kernel_size
        self.embed = nn.Embedding(cfg.n_classes, R)
        self.dilated = nn.ModuleList(nn.Conv1d(R, 2 * D, k, dilation=d) for d in cfg.dilations)
        self.residual = nn.ModuleList(nn.Conv1d(D, R, 1) for _ in cfg.dilations)
        self.skip = nn.ModuleList(nn.Conv1d(D, S, 1) for _ in cfg.dilations)
        self.head1 = nn.Conv1d(S, S, 1)
        self.head2 = nn.Conv1d(S, cfg.n_classes, 1)
        self.drop = nn.Dropout(cfg.dropout)

    def _layer(self, i: int, x: torch.Tensor, conv_out: torch.Tensor, skips: torch.Tensor):
        """Gate, residual and skip of layer i. x: [B, R, T] layer input; conv_out: [B, 2D, T]."""
        f, g = conv_out.chunk(2, dim=1)
        z = self.drop(torch.tanh(f) * torch.sigmoid(g))
        return x + self.residual[i](z), skips + self.skip[i](z)

    def _head(self, skips: torch.Tensor) -> torch.Tensor:
        """skips: [B, S, T] -> logits [B, T, n_classes]."""
        return self.head2(F.relu(self.head1(F.relu(skips)))).transpose(1, 2)

    def forward(self, tokens: torch.Tensor, return_layer_inputs: bool = False):
        """tokens: [B, T] -> logits [B, T, V] (and, if asked, the per-layer inputs [B, R, T] for cache prefill)."""
        x = self.embed(tokens).transpose(1, 2)  # [B, R, T]
        skips = x.new_zeros(x.shape[0], self.cfg.skip_channels, x.shape[2])
        inputs = []
        for i, d in enumerate(self.cfg.dilations):
            inputs.append(x)
            pad = (self.cfg.kernel_size - 1) * d
            x, skips = self._layer(i, x, self.dilated[i](F.pad(x, (pad, 0))), skips)
        logits = self._head(skips)
        return (logits, inputs) if return_layer_inputs else logits

    @property
    def tail_lengths(self) -> list[int]:
        """Per layer the (kernel - 1) * dilation past inputs its convolution reads."""
        return [(self.cfg.kernel_size - 1) * d for d in self.cfg.dilations]

    def forward_carry(self, tokens: torch.Tensor, tails: list[torch.Tensor]):
        """A window that continues a stream. tokens: [B, T]; tails: per layer i its inputs [B, R, L_i] at the
        L_i = (k-1) d_i steps before the window (what zero padding stands for in `forward`).
        Returns (logits [B, T, V], the tails after the window, detached: per layer [B, R, L_i])."""
        x = self.embed(tokens).transpose(1, 2)  # [B, R, T]
        skips = x.new_zeros(x.shape[0], self.cfg.skip_channels, x.shape[2])
        after = []
        for i, (tail, L) in enumerate(zip(tails, self.tail_lengths)):
            seq = torch.cat([tail.to(x.dtype), x], 2)            # [B, R, L + T]
            after.append(seq[:, :, seq.shape[2] - L:].detach())
            x, skips = self._layer(i, x, self.dilated[i](seq), skips)
        return self._head(skips), after

    @torch.no_grad()
    def tails_after(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """The tails (see `forward_carry`) after reading tokens [B, P], P >= receptive_field - 1 from a zero
        start: every tail then depends on the tokens only, never on the zero padding."""
        _, inputs = self.forward(tokens, return_layer_inputs=True)
        return [x[:, :, x.shape[2] - L:] for x, L in zip(inputs, self.tail_lengths)]

    # --- incremental generation -----------------------------------------------------------------------------
    def init_queues(self, batch_size: int, device=None, dtype=None) -> list[torch.Tensor]:
        """Per layer i a queue [B, (k-1) * d_i, R] of past layer inputs; zeros = the causal zero padding."""
        dtype = dtype or self.embed.weight.dtype
        R = self.cfg.residual_channels
        return [torch.zeros(batch_size, L, R, device=device, dtype=dtype) for L in self.tail_lengths]

    def prefill(self, tokens: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Queues after reading tokens: [B, P] in one parallel pass; returns (queues, logits of the last step [B, V]).

        Queue i holds layer i's inputs at times P-(k-1)d_i .. P-1 in circular order for step P (see `step`).
        """
        B, P = tokens.shape
        logits, inputs = self.forward(tokens, return_layer_inputs=True)
        queues = []
        for x, q in zip(inputs, self.init_queues(B, tokens.device, inputs[0].dtype)):
            L = q.shape[1]
            n = min(L, P)
            times = torch.arange(P - n, P, device=tokens.device)
            q[:, times % L] = x[:, :, P - n:].transpose(1, 2)
            queues.append(q)
        return queues, logits[:, -1]

    def step_weights(self) -> list[tuple[torch.Tensor, ...]]:
        """Per layer the matrices one generation step needs, fused so a step is two matmuls per layer:
        (dilated [k R, 2D] with taps oldest first, its bias [2D], residual+skip [D, R + S], their bias [R + S])."""
        out = []
        for conv, res, skip in zip(self.dilated, self.residual, self.skip):
            w = conv.weight.permute(2, 1, 0).reshape(-1, conv.weight.shape[0])  # [k, R, 2D] -> [k R, 2D]
            rs = torch.cat([res.weight[:, :, 0], skip.weight[:, :, 0]], 0).t()  # [D, R + S]
            out.append((w.contiguous(), conv.bias, rs.contiguous(), torch.cat([res.bias, skip.bias])))
        return out

    @torch.inference_mode()
    def step(self, token: torch.Tensor, queues: list[torch.Tensor], t: int,
             weights: list[tuple[torch.Tensor, ...]] | None = None) -> torch.Tensor:
        """One sample at time t. token: [B] int64; queues updated in place; weights from `step_weights()`
        (computed here if not given; pass them when stepping many times). Returns logits [B, V].

        Queue i, length L = (k-1) d_i, holds the input at time s in slot s % L, so the inputs at t - m d_i
        (m = 1..k-1) sit at (t - m d_i) % L; the current input then overwrites the oldest slot, t % L.
        """
        k, R = self.cfg.kernel_size, self.cfg.residual_channels
        weights = weights or self.step_weights()
        x = self.embed(token)  # [B, R]
        skips = None
        for d, q, (w, b, rs_w, rs_b) in zip(self.cfg.dilations, queues, weights):
            L = q.shape[1]
            taps = torch.cat([q[:, (t - m * d) % L] for m in range(k - 1, 0, -1)] + [x], 1)  # [B, k R]
            f, g = torch.addmm(b, taps, w).chunk(2, dim=1)
            q[:, t % L] = x
            rs = torch.addmm(rs_b, torch.tanh(f) * torch.sigmoid(g), rs_w)
            x = x + rs[:, :R]
            skips = rs[:, R:] if skips is None else skips + rs[:, R:]
        h = F.relu(F.linear(F.relu(skips), self.head1.weight[:, :, 0], self.head1.bias))
        return F.linear(h, self.head2.weight[:, :, 0], self.head2.bias)
