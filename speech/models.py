"""The three speech models behind one interface (the paper's Section 5.6 comparison).

    logits, state, aux_loss = model(inputs, state, reset)
    inputs: [B, T] int64 mu-law classes; reset: [B] bool or None (rows whose memory/context is emptied first);
    logits: [B, T, 256], logits[:, t] predicts inputs[:, t + 1]; aux_loss: scalar (compression loss, else 0).

- SpeechTransformer: mu-law embedding -> core stack (Compressive Transformer, or TransformerXL with
  cmem_len = 0) -> linear 256-way softmax; its state is the core Memory.
- SpeechWaveNet: WaveNet whose state is the last receptive_field - 1 input samples of each stream, so windows
  continue each stream exactly as the Transformers' memories do.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from speech.mulaw import N_CLASSES
from speech.streams import SILENCE
from speech.wavenet import WaveNet


class SpeechTransformer(nn.Module):
    kind = "transformer"

    def __init__(self, ct_cfg, kind: str = "compressive"):
        super().__init__()
        from core import CompressiveTransformer

        self.kind, self.ct_cfg = kind, ct_cfg
        self.embed = nn.Embedding(N_CLASSES, ct_cfg.d_model)
        self.core = CompressiveTransformer(ct_cfg)
        self.head = nn.Linear(ct_cfg.d_model, N_CLASSES)

    def init_state(self, batch_size: int, device=None):
        return self.core.init_memory(batch_size=batch_size, device=device)

    def load_state(self, state: dict | None, batch_size: int, device=None):
        from core import Memory

        return self.init_state(batch_size, device) if state is None else Memory.from_state_dict(state).to(device)

    def forward(self, inputs: torch.Tensor, state, reset: torch.Tensor | None = None):
        if reset is not None and bool(reset.any()):
            state = state.reset_rows(reset.to(inputs.device))
        out = self.core(self.embed(inputs), state)
        return self.head(out.hidden), out.memory, out.aux_loss


@dataclass
class WaveNetContext:
    """The previous receptive_field - 1 input samples of each stream: tokens [B, R - 1] int64."""
    tokens: torch.Tensor

    def detach(self) -> "WaveNetContext":
        return self

    def state_dict(self) -> dict:
        return {"tokens": self.tokens}

    def to(self, device) -> "WaveNetContext":
        return WaveNetContext(self.tokens.to(device))


class SpeechWaveNet(nn.Module):
    kind = "wavenet"

    def __init__(self, wn_cfg):
        super().__init__()
        self.wn_cfg = wn_cfg
        self.net = WaveNet(wn_cfg)

    @property
    def context_len(self) -> int:
        return self.wn_cfg.receptive_field - 1

    def init_state(self, batch_size: int, device=None) -> WaveNetContext:
        return WaveNetContext(torch.full((batch_size, self.context_len), SILENCE, dtype=torch.int64, device=device))

    def load_state(self, state: dict | None, batch_size: int, device=None) -> WaveNetContext:
        return self.init_state(batch_size, device) if state is None else WaveNetContext(state["tokens"].to(device))

    def forward(self, inputs: torch.Tensor, state: WaveNetContext, reset: torch.Tensor | None = None):
        ctx = state.tokens
        if reset is not None and bool(reset.any()):
            ctx = torch.where(reset.to(ctx.device)[:, None], torch.full_like(ctx, SILENCE), ctx)
        seq = torch.cat([ctx, inputs], 1)
        logits = self.net(seq)[:, ctx.shape[1]:]
        nxt = WaveNetContext(seq[:, seq.shape[1] - self.context_len:]) if self.context_len else state
        return logits, nxt, logits.new_zeros(())


def build_model(model_cfg) -> nn.Module:
    """ModelConfig -> SpeechTransformer | SpeechWaveNet."""
    if model_cfg.kind == "wavenet":
        return SpeechWaveNet(model_cfg.wavenet)
    return SpeechTransformer(model_cfg.transformer, kind=model_cfg.kind)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(all parameters, parameters outside the input embedding)."""
    from core import count_parameters

    return count_parameters(model, exclude_embeddings=False), count_parameters(model, exclude_embeddings=True)
