"""The language model: embedding -> core stack (or LSTM) -> softmax head (design.md, data flow).

    lm = LanguageModel(model_cfg, vocab_size)
    state = lm.init_state(batch_size)                    # core.Memory, or LSTMState for the LSTM
    out = lm(tokens, state, targets, reset=reset)        # tokens, targets: [B, T]; reset: [B] bool
    out.nll [B, T] nats; out.state (not detached); out.aux_loss (compression loss, 0 for TXL/LSTM)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core import CompressiveTransformer, Memory

from .config import ModelConfig
from .embedding import AdaptiveInput, AdaptiveSoftmax, ScaledEmbedding, TiedSoftmax, usable_cutoffs
from .lstm import LSTMBody, LSTMState


@dataclass
class LMOutput:
    nll: torch.Tensor                      # [B, T] nats per target token
    state: object                          # next Memory / LSTMState
    aux_loss: torch.Tensor                 # scalar
    compression_losses: torch.Tensor | None = None   # [n_layers], detached
    attention: list | None = None          # per layer [B, H, T, K]


class LanguageModel(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg, self.vocab_size = cfg, vocab_size
        d = cfg.d_model
        cutoffs = usable_cutoffs(cfg.cutoffs, vocab_size)
        if cfg.embedding == "adaptive" and cutoffs:
            self.embed = AdaptiveInput(vocab_size, d, cutoffs, cfg.div_value)
            self.head = AdaptiveSoftmax(vocab_size, d, cutoffs, cfg.div_value)
        else:
            self.embed = ScaledEmbedding(vocab_size, d)
            self.head = TiedSoftmax(vocab_size, d, self.embed if cfg.embedding == "tied" else None)
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.arch == "lstm":
            self.body = LSTMBody(d, cfg.n_layers, cfg.dropout)
        else:
            self.body = CompressiveTransformer(cfg.ct_config())

    # ------------------------------------------------------------------------------------ state
    def init_state(self, batch_size: int, device=None):
        if device is None:
            device = next(self.parameters()).device
        if isinstance(self.body, LSTMBody):
            return self.body.init_state(batch_size, device)
        return self.body.init_memory(batch_size, device)

    def load_state(self, state: dict, device):
        if isinstance(self.body, LSTMBody):
            return LSTMState.from_state_dict(state).to(device)
        return Memory.from_state_dict(state).to(device)

    def with_memory_sizes(self, mem_len: int | None = None, cmem_len: int | None = None) -> "LanguageModel":
        """The same weights with other memory sizes (evaluation; core's with_memory_sizes)."""
        if isinstance(self.body, LSTMBody) or (mem_len is None and cmem_len is None):
            return self
        import copy
        clone = copy.copy(self)
        clone._modules = dict(self._modules)
        clone._modules["body"] = self.body.with_memory_sizes(mem_len=mem_len, cmem_len=cmem_len)
        return clone

    @property
    def mem_sizes(self) -> tuple[int, int]:
        if isinstance(self.body, LSTMBody):
            return 0, 0
        return self.body.cfg.mem_len, self.body.cfg.cmem_len

    # ------------------------------------------------------------------------------------ forward
    def hidden(self, tokens: torch.Tensor, state, reset: torch.Tensor | None = None,
               return_attention: bool = False):
        """tokens: [B, T] -> (hidden [B, T, d], next state, aux_loss, compression_losses, attention)."""
        if reset is not None and bool(reset.any()):
            state = state.reset_rows(reset.to(tokens.device))
        x = self.drop(self.embed(tokens))
        if isinstance(self.body, LSTMBody):
            h, state = self.body(x, state)
            return h, state, x.new_zeros(()), None, None
        out = self.body(x, state, return_attention=return_attention)
        return self.drop(out.hidden), out.memory, out.aux_loss, out.compression_losses, out.attention

    def forward(self, tokens: torch.Tensor, state, targets: torch.Tensor, reset: torch.Tensor | None = None,
                return_attention: bool = False) -> LMOutput:
        h, state, aux, comp, att = self.hidden(tokens, state, reset, return_attention)
        nll = self.head.nll(h.reshape(-1, h.shape[-1]), targets.reshape(-1)).view(targets.shape)
        return LMOutput(nll=nll, state=state, aux_loss=aux, compression_losses=comp, attention=att)

    def init_cache(self, state):
        """The core's KVCache of `state` for generation (core/cache.py); None for the LSTM."""
        return None if isinstance(self.body, LSTMBody) else self.body.init_cache(state)

    def next_token_logprobs(self, tokens: torch.Tensor, state, cache=None) -> tuple[torch.Tensor, object, object]:
        """tokens: [B, T] -> (log-probabilities of the token after the last one [B, V], next state, next
        cache). cache: None, or the KVCache of `state` (eval mode, no gradient): same result, faster."""
        if cache is None:
            h, state, *_ = self.hidden(tokens, state)
        else:
            out = self.body(self.drop(self.embed(tokens)), state, kv_cache=cache)
            h, state, cache = self.drop(out.hidden), out.memory, out.kv_cache
        return self.head.log_prob(h[:, -1]), state, cache
