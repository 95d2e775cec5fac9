"""KVCache: every layer's projected memory keys and values, kept across generation steps.

A memory slot never changes once written, and neither do its key and value while the weights stay
fixed (generation: eval mode, no gradient). Without a cache, sampling one token at a time projects all
n_cm + n_m slots of every layer again for every token. The cache mirrors the Memory slot for slot: per
layer, the keys and values of [cmem; mem] in the order the attention reads them. The stack updates it
beside the Memory (``out = model(x, memory, kv_cache=cache)``; carry ``out.memory`` and ``out.kv_cache``):
- the window's keys/values enter with its positions: they are the ones its attention just computed;
- the memories evicted from the FIFO leave with their keys/values;
- compressed slots are projected once, when the compressor creates them; the oldest leave with them.
The position term W_r R depends only on the distances: each layer keeps it for the largest K it has
needed and reads any smaller K as the newest rows of it.

    cache = model.init_cache(memory)                      # projects the memories already there
    out = model(x, memory, kv_cache=cache)                # same result as model(x, memory)
    memory, cache = out.memory, out.kv_cache
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LayerCache:
    """One layer. k, v: [B, H, C + M, dh], keys and values of its [cmem; mem] slots (oldest first);
    n_cmem: C, the number of compressed slots in front; r: [H, R, dh], W_r R for distances R-1, ..., 0."""

    k: torch.Tensor
    v: torch.Tensor
    n_cmem: int
    r: torch.Tensor

    def position_keys(self, n_keys: int) -> torch.Tensor:
        """W_r R for distances K-1..0 after a row of zeros (the rel-shift's pad; W_r has no bias, so the
        projected pad is zero too): [H, K+1, dh], as ``RelativeMultiHeadAttention.position_keys``."""
        return F.pad(self.r[:, self.r.shape[1] - n_keys:], (0, 0, 1, 0))

    def advance(self, k: torch.Tensor, v: torch.Tensor, n_mem: int, n_cmem: int, new_k: torch.Tensor,
                new_v: torch.Tensor) -> "LayerCache":
        """The cache after one window. k, v: [B, H, C + M + T, dh], what the attention read (this cache's
        slots, then the window's); n_mem, n_cmem: the memory's sizes after the window (the newest n_mem of
        mem + window stay); new_k, new_v: [B, H, N, dh], the compressed slots created in the window."""
        def keep(old: torch.Tensor, new: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
            cmem = torch.cat([old[:, :, :self.n_cmem], new], dim=2)
            return torch.cat([cmem[:, :, cmem.shape[2] - n_cmem:], full[:, :, full.shape[2] - n_mem:]], dim=2)
        return LayerCache(keep(self.k, new_k, k), keep(self.v, new_v, v), n_cmem, self.r)


@dataclass(frozen=True)
class KVCache:
    """The per-layer caches of a stack (``CompressiveTransformer.init_cache``). Valid for the Memory it
    was built or advanced with, and only in eval mode without gradient (the forward checks both)."""

    layers: tuple[LayerCache, ...]

    @property
    def n_slots(self) -> int:
        """C + M of the first layer (every layer has as many memories; compressed counts may differ)."""
        return self.layers[0].k.shape[2]
