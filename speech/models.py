"""The three speech models behind one interface (the paper's Section 5.6 comparison).

    logits, state, aux_loss = model(inputs, state, reset)
    inputs: [B, T] int64 mu-law classes; reset: [B] bool or None (rows whose memory/context is emptied first);
    logits: [B, T, 256], logits[:, t] predicts inputs[:, t + 1]; aux_loss: scalar (compression loss, else 0).

- SpeechTransformer: mu-law embedding -> core stack (Compressive Transformer, or TransformerXL with
  cmem_len = 0) -> linear 256-way softmax; its state is the core Memory.
- SpeechWaveNet: WaveNet whose state continues each stream across windows, as the Transformers' memories do:
  the last receptive_field - 1 input samples, re-read with each window (wavenet.context = "reread"), or each
  layer's last (kernel - 1) * dilation inputs, carried detached (wavenet.context = "carry"). Both give the
  logits of the model run over the whole stream; "carry" computes each sample once.
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


@dataclass
class WaveNetTails:
    """Per layer i its last (kernel - 1) * dilation_i inputs: [B, R, L_i] in the residual stream's dtype, detached."""
    tails: list[torch.Tensor]

    def detach(self) -> "WaveNetTails":
        return WaveNetTails([t.detach() for t in self.tails])

    def state_dict(self) -> dict:
        return {"tails": list(self.tails)}

    def to(self, device) -> "WaveNetTails":
        return WaveNetTails([t.to(device) for t in self.tails])


class SpeechWaveNet(nn.Module):
    kind = "wavenet"

    def __init__(self, wn_cfg):
        super().__init__()
        self.wn_cfg = wn_cfg
        self.net = WaveNet(wn_cfg)
        self.carry = wn_cfg.context == "carry"

    @property
    def context_len(self) -> int:
        return self.wn_cfg.receptive_field - 1

    def _silence(self, batch_size: int, device=None) -> torch.Tensor:
        return torch.full((batch_size, self.context_len), SILENCE, dtype=torch.int64, device=device)

    def _silence_tails(self, device=None) -> list[torch.Tensor]:
        """The tails after a receptive field of silence, with the current weights: [1, R, L_i] per layer."""
        return self.net.tails_after(self._silence(1, device))

    def init_state(self, batch_size: int, device=None) -> WaveNetContext | WaveNetTails:
        if self.carry:
            return WaveNetTails([t.expand(batch_size, -1, -1).clone() for t in self._silence_tails(device)])
        return WaveNetContext(self._silence(batch_size, device))

    def load_state(self, state: dict | None, batch_size: int, device=None) -> WaveNetContext | WaveNetTails:
        if state is None:
            return self.init_state(batch_size, device)
        want = "tails" if self.carry else "tokens"
        if want not in state:
            raise ValueError(f"the checkpoint's WaveNet state was written with model.wavenet.context = "
                             f"{'reread' if self.carry else 'carry'!r}: resume with that setting")
        if self.carry:
            return WaveNetTails([t.to(device) for t in state["tails"]])
        return WaveNetContext(state["tokens"].to(device))

    def forward(self, inputs: torch.Tensor, state: WaveNetContext | WaveNetTails, reset: torch.Tensor | None = None):
        if self.carry:
            tails = state.tails
            if reset is not None and bool(reset.any()):
                rows = reset.to(inputs.device)[:, None, None]
                tails = [torch.where(rows, s, t) for s, t in zip(self._silence_tails(inputs.device), tails)]
            logits, after = self.net.forward_carry(inputs, tails)
            return logits, WaveNetTails(after), logits.new_zeros(())
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
