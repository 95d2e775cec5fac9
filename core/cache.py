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
needed and reads any smaller K as a view of its newest rows.

    cache = model.init_cache(memory)                      # projects the memories already there
    out = model(x, memory, kv_cache=cache)                # same result as model(x, memory)
    memory, cache = out.memory, out.kv_cache
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LayerCache:
    """One layer. k, v: the keys and values of its [cmem; mem] slots, oldest first, as consecutive parts
    (each [B, H, N_i, dh], views into the previous step's keys: updating the cache copies nothing, the
    attention's one concatenation does); n_cmem: how many of the slots are compressed ones (in front);
    r: [H, L, dh], ``RelativeMultiHeadAttention.position_keys`` for R = n_distances distances (R-1, ..., 0,
    then the zero pad)."""

    k: tuple[torch.Tensor, ...]
    v: tuple[torch.Tensor, ...]
    n_cmem: int
    r: torch.Tensor
    n_distances: int

    @property
    def n_slots(self) -> int:
        return sum(part.shape[2] for part in self.k)

    def position_keys(self, n_keys: int) -> torch.Tensor:
        """The position keys of K <= R keys, as a view: [H, L - R + K, dh], the distances K-1..0 and the
        zero pad after them (the rel-shift needs only rows longer than K)."""
        return self.r[:, self.n_distances - n_keys:]

    def advance(self, k: torch.Tensor, v: torch.Tensor, n_mem: int, n_cmem: int, new_k: torch.Tensor,
                new_v: torch.Tensor) -> "LayerCache":
        """The cache after one window. k, v: [B, H, C + M + T, dh], what the attention read (this cache's
        slots, then the window's); n_mem, n_cmem: the memory's sizes after the window (the newest n_mem of
        mem + window stay); new_k, new_v: [B, H, N, dh], the compressed slots created in the window."""
        n_old = max(0, n_cmem - new_k.shape[2])                 # surviving old compressed slots (the newest)
        c, n_new = self.n_cmem, n_cmem - n_old

        def keep(full: torch.Tensor, new: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return full[:, :, c - n_old:c], new[:, :, new.shape[2] - n_new:], full[:, :, full.shape[2] - n_mem:]
        return LayerCache(keep(k, new_k), keep(v, new_v), n_cmem, self.r, self.n_distances)


@dataclass(frozen=True)
class KVCache:
    """The per-layer caches of a stack (``CompressiveTransformer.init_cache``). Valid for the Memory it
    was built or advanced with, and only in eval mode without gradient (the forward checks both)."""

    layers: tuple[LayerCache, ...]
