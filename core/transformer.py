"""CompressiveTransformer: the layer stack of Rae et al. (2020), Algorithm 1.

For each layer i and window h^(i) of T positions:
  1. attend over [cmem^(i); mem^(i); h^(i)] with relative positions (causal within the window);
  2. push h^(i) into the FIFO mem^(i); the oldest memories that overflow n_m are evicted;
  3. evicted memories are compressed c-to-1 by f_c^(i) and pushed into the FIFO cmem^(i) of size n_cm;
  4. the compression loss (Algorithm 2, or auto-encoding) trains f_c^(i) alone.
With ``cmem_len=0`` steps 3-4 vanish and this is exactly the TransformerXL.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import RelativeMultiHeadAttention, attention_mask, relative_position_embedding
from .cache import KVCache, LayerCache
from .compression import build_compressor
from .config import PARAMETER_FREE, CTConfig
from .losses import AutoencodingDecoder, attention_reconstruction_loss, autoencoding_loss
from .memory import LayerMemory, Memory


@dataclass
class CTOutput:
    """hidden: [B, T, d]; memory: the next Memory; aux_loss: scalar (already weighted, add it to the
    task loss); compression_losses: [n_layers] detached; attention: None or per layer [B, H, T, K];
    kv_cache: the next KVCache when one was passed, else None."""

    hidden: torch.Tensor
    memory: Memory
    aux_loss: torch.Tensor
    compression_losses: torch.Tensor
    attention: list[torch.Tensor] | None = None
    kv_cache: KVCache | None = None


class CompressiveLayer(nn.Module):
    """One layer: relative attention + feed-forward, and the update of its memories."""

    def __init__(self, cfg: CTConfig, rate: int):
        super().__init__()
        d = cfg.d_model
        self.rate, self.pre_ln = rate, cfg.pre_ln
        self.compression, self.compression_loss = cfg.compression, cfg.compression_loss
        self.bptt = cfg.trains_compressor and cfg.compression_loss == "bptt"
        self.attn = RelativeMultiHeadAttention(d, cfg.n_heads, cfg.dropatt)
        self.ff = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout),
                                nn.Linear(cfg.d_ff, d))
        self.ln_attn = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.ln_ff = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)
        self.compressor = build_compressor(cfg.compression, d, rate) if cfg.compressive else None
        self.decoder = (AutoencodingDecoder(d, rate) if cfg.trains_compressor and cfg.compression_loss == "autoencoding"
                        else None)

    # -- attention and feed-forward ---------------------------------------------------------------
    def forward(self, h: torch.Tensor, lm: LayerMemory, pos_emb, mem_len: int, cmem_len: int,
                same_length: bool, need_weights: bool, cache: LayerCache | None = None):
        """h: [B, T, d] (this layer's input); lm: its memory; pos_emb(K) -> [K, d]; cache: None, or the
        keys and values of lm's slots (generation, core/cache.py).

        Returns (output [B, T, d], next LayerMemory, compression loss (scalar), probs or None,
        next LayerCache or None).
        """
        t = h.shape[1]
        cmem = self._refresh_bptt_slots(lm)
        n_prefix = cmem.shape[1] + lm.mem.shape[1]                              # P = n_cm + n_m keys before the window
        # Always masked by validity: checking whether any slot is invalid would cost a device sync per layer.
        key_valid = torch.cat([lm.cmem_valid, lm.mem_valid], dim=1)
        mask = attention_mask(t, n_prefix, same_length, key_valid, h.device, reach=mem_len + cmem_len)
        want_probs = need_weights or self.compression == "most_used"

        x = self.ln_attn(h) if self.pre_ln else h             # the attention's input; memories are read alike
        if cache is None:
            memories = (self.ln_attn(cmem), self.ln_attn(lm.mem)) if self.pre_ln else (cmem, lm.mem)
            a, probs, q, k, v = self.attn(x, memories, pos_emb(n_prefix + t), mask, want_probs)
        else:
            cache = self._cache_positions(cache, n_prefix + t, mem_len + cmem_len + t, pos_emb)
            a, probs, q, k, v = self.attn.forward_cached(x, cache.k, cache.v, cache.position_keys(n_prefix + t),
                                                         mask, want_probs)
        if self.pre_ln:
            mid = h + self.drop(a)
            out = mid + self.drop(self._feed_forward(self.ln_ff(mid)))
        else:
            mid = self.ln_attn(h + self.drop(a))
            out = self.ln_ff(mid + self.drop(self._feed_forward(mid)))

        next_lm, loss = self._update_memory(h, lm, cmem.shape[1], mem_len, cmem_len, q, k, v, probs)
        next_cache = None if cache is None else self._advance_cache(cache, lm, next_lm, k, v)
        return out, next_lm, loss, (probs if need_weights else None), next_cache

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, d] -> [B, T, d]. Tokens are flattened first: a 2-D linear layer's gradients need no copies
        (on a 3-D input the in-place ReLU acts on a view, and autograd copies around it)."""
        return self.ff(x.reshape(-1, x.shape[-1])).view(x.shape)

    # -- memory update (Algorithm 1, lines 6-9) -------------------------------------------------
    def _update_memory(self, h, lm: LayerMemory, n_cmem_keys: int, mem_len: int, cmem_len: int, q, k, v, probs):
        b, t, _ = h.shape
        zero = h.new_zeros(())
        full = torch.cat([lm.mem, h.detach()], dim=1)                          # [B, M+T, d]
        full_valid = torch.cat([lm.mem_valid, lm.mem_valid.new_ones(b, t)], dim=1)
        usage_sum, usage_count = lm.usage_sum, lm.usage_count
        if self.compression == "most_used":
            # attention received by each memory and window position, averaged over heads and queries
            # (at least float32, float64 in a float64 model: usage is summed over many windows)
            received = probs.detach().to(torch.promote_types(probs.dtype, torch.float32))
            received = received.mean(dim=(1, 2))[:, n_cmem_keys:]                  # [B, M+T]
            usage_sum = torch.cat([usage_sum, received.new_zeros(b, t)], dim=1) + received
            usage_count = torch.cat([usage_count, received.new_zeros(b, t)], dim=1) + 1
        n_evict = max(0, full.shape[1] - mem_len)
        mem, mem_valid = full[:, n_evict:], full_valid[:, n_evict:]

        if self.compressor is None or cmem_len == 0:
            # TransformerXL: the evicted memories are discarded.
            empty = LayerMemory.empty(b, h.shape[-1], h.device, h.dtype)
            return dataclasses.replace(empty, mem=mem, mem_valid=mem_valid,
                              usage_sum=usage_sum[:, n_evict:], usage_count=usage_count[:, n_evict:]), zero

        queue = torch.cat([lm.pending, full[:, :n_evict]], dim=1)              # oldest first
        queue_valid = torch.cat([lm.pending_valid, full_valid[:, :n_evict]], dim=1)
        queue_usage = torch.cat([lm.pending_usage, (usage_sum / usage_count.clamp(min=1))[:, :n_evict]], dim=1) \
            if self.compression == "most_used" else lm.pending_usage
        n_groups = queue.shape[1] // self.rate
        take = n_groups * self.rate
        cmem, cmem_valid, fresh, loss = lm.cmem.detach(), lm.cmem_valid, lm.fresh, zero
        if n_groups:
            chunk = queue[:, :take]                                                # [B, n*c, d]
            compressed = self.compressor(chunk, queue_usage[:, :take] if self.compression == "most_used" else None)
            loss = self._compression_loss(chunk, compressed, lm.pending.shape[1], take, n_cmem_keys, q, k, v)
            cmem = torch.cat([cmem, compressed.detach()], dim=1)[:, -cmem_len:]
            cmem_valid = torch.cat([cmem_valid, queue_valid[:, :take].view(b, n_groups, self.rate).any(-1)],
                                   dim=1)[:, -cmem_len:]
            fresh = chunk if self.bptt else fresh
        return LayerMemory(
            mem=mem, mem_valid=mem_valid, cmem=cmem, cmem_valid=cmem_valid,
            pending=queue[:, take:], pending_valid=queue_valid[:, take:],
            usage_sum=usage_sum[:, n_evict:], usage_count=usage_count[:, n_evict:],
            pending_usage=queue_usage[:, take:] if self.compression == "most_used" else lm.pending_usage,
            fresh=fresh), loss

    # -- generation cache (core/cache.py) ------------------------------------------------------------
    def init_cache(self, lm: LayerMemory) -> LayerCache:
        """The keys and values of lm's [cmem; mem] slots, projected once."""
        slots = torch.cat([lm.cmem, lm.mem], dim=1)
        k, v = self._keys_values_stopped(slots) if slots.shape[1] else 2 * (self._no_keys(slots),)
        # in the weights' dtype: an empty memory may still be float32 in a float64 model
        no_positions = self.attn.position_keys(self.attn.r_net.weight.new_zeros(0, slots.shape[-1]))  # [H, L, dh]
        return LayerCache((k,), (v,), lm.cmem.shape[1], no_positions, 0)

    def _no_keys(self, x: torch.Tensor) -> torch.Tensor:
        """[B, H, 0, dh] like the keys of x [B, N, d]."""
        return x.new_zeros(x.shape[0], self.attn.n_heads, 0, self.attn.d_head)

    def _cache_positions(self, cache: LayerCache, n_keys: int, n_full: int, pos_emb) -> LayerCache:
        """The cache with position keys for at least n_keys distances; when they are missing it projects
        those of a full memory and window (n_full >= n_keys), so that later steps only slice them."""
        if cache.n_distances >= n_keys:
            return cache
        n = max(n_keys, n_full)
        return dataclasses.replace(cache, r=self.attn.position_keys(pos_emb(n)), n_distances=n)

    def _advance_cache(self, cache: LayerCache, lm: LayerMemory, next_lm: LayerMemory, k, v) -> LayerCache:
        """The cache of next_lm from the cache of lm and the keys/values k, v [B, H, C + M + T, dh] the
        attention read: the window's enter, the evicted memories' leave, the new compressed slots are
        projected (their number follows from the queue: evicted + pending before = c * new + pending after)."""
        t = k.shape[2] - cache.n_slots
        n_evicted = lm.mem.shape[1] + t - next_lm.mem.shape[1]
        n_new = (lm.pending.shape[1] + n_evicted - next_lm.pending.shape[1]) // self.rate
        n_cmem = next_lm.cmem.shape[1]
        fresh = next_lm.cmem[:, n_cmem - min(n_new, n_cmem):]                          # [B, N, d]
        new_k, new_v = self._keys_values_stopped(fresh) if fresh.shape[1] else 2 * (self._no_keys(fresh),)
        return cache.advance(k, v, next_lm.mem.shape[1], n_cmem, new_k, new_v)

    def _compression_loss(self, chunk, compressed, n_pending, take, n_cmem_keys, q, k, v):
        """The auxiliary loss for compressing ``chunk`` [B, n*c, d] into ``compressed`` [B, n, d]."""
        kind = self.compression_loss
        if kind == "autoencoding" and self.decoder is not None:
            return autoencoding_loss(self.decoder, compressed, chunk)
        if kind != "attention":
            return compressed.new_zeros(())
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.compression not in PARAMETER_FREE):
            # Reuse the keys/values the main attention computed for the evicted memories (they sit
            # right after the compressed memory in [cmem; mem; window]); only the few pending ones
            # from earlier windows are projected here.
            evicted = slice(n_cmem_keys, n_cmem_keys + take - n_pending)
            old_k, old_v = k[:, :, evicted].detach(), v[:, :, evicted].detach()
            if n_pending:
                pk, pv = self._keys_values_stopped(chunk[:, :n_pending])
                old_k, old_v = torch.cat([pk, old_k], dim=2), torch.cat([pv, old_v], dim=2)
            c_k, c_v = self._keys_values_stopped(compressed)
            return attention_reconstruction_loss(q.detach(), old_k, old_v, c_k, c_v)

    def _keys_values_stopped(self, x):
        """Keys and values of memories x [B, N, d] -> 2 x [B, H, N, dh], with stopped gradients into
        the main network's LayerNorm and W_k, W_v (gradient still flows into x)."""
        if self.pre_ln:
            x = F.layer_norm(x, x.shape[-1:], self.ln_attn.weight.detach(), self.ln_attn.bias.detach(),
                             self.ln_attn.eps)
        d = x.shape[-1]
        return self.attn.project(x, self.attn.qkv.weight[d:].detach()).unbind(0)

    def _refresh_bptt_slots(self, lm: LayerMemory) -> torch.Tensor:
        """Under ``bptt`` the newest compressed slots are recomputed from their (stored) inputs, so the
        task loss of this window reaches the compressor through them. Returns cmem [B, C, d]."""
        if not (self.bptt and lm.fresh.shape[1] and lm.cmem.shape[1] and torch.is_grad_enabled()):
            return lm.cmem
        n_keep = min(lm.fresh.shape[1] // self.rate, lm.cmem.shape[1])
        recomputed = self.compressor(lm.fresh)[:, -n_keep:]
        return torch.cat([lm.cmem[:, :lm.cmem.shape[1] - n_keep], recomputed], dim=1)


class CompressiveTransformer(nn.Module):
    """The Compressive Transformer layer stack (no embedding, no output head).

    >>> model = CompressiveTransformer(CTConfig(d_model=64, n_layers=2, n_heads=4, d_ff=128))
    >>> mem = model.init_memory(batch_size=3)
    >>> out = model(torch.randn(3, 16, 64), mem)
    >>> out.hidden.shape, out.memory.mem_len
    (torch.Size([3, 16, 64]), 16)
    """

    def __init__(self, cfg: CTConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(CompressiveLayer(cfg, rate) for rate in cfg.compression_rates)
        self.pos_drop = nn.Dropout(cfg.dropout)
        self.final_ln = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.pre_ln else nn.Identity()

    def init_memory(self, batch_size: int, device=None, dtype=None) -> Memory:
        """An empty memory for ``batch_size`` streams (it fills up over the first windows)."""
        if device is None:
            device = next(self.parameters()).device
        return Memory(tuple(LayerMemory.empty(batch_size, self.cfg.d_model, device, dtype)
                            for _ in self.layers))

    def init_cache(self, memory: Memory) -> KVCache:
        """A KVCache of ``memory``'s slots for generation (core/cache.py): pass it to ``forward`` with that
        memory and carry ``out.kv_cache`` beside ``out.memory``."""
        return KVCache(tuple(layer.init_cache(lm) for layer, lm in zip(self.layers, memory.layers)))

    def with_memory_sizes(self, mem_len: int | None = None, cmem_len: int | None = None) -> "CompressiveTransformer":
        """The same weights with other memory sizes (the paper evaluates with larger memories)."""
        cfg = self.cfg.replace(mem_len=self.cfg.mem_len if mem_len is None else mem_len,
                               cmem_len=self.cfg.cmem_len if cmem_len is None else cmem_len)
        if cfg.cmem_len > 0 and self.layers[0].compressor is None:
            if cfg.compression not in PARAMETER_FREE:
                raise ValueError(f"cmem_len: this model was trained without a compressor; a compressed memory "
                                 f"at evaluation needs a parameter-free compression (one of {PARAMETER_FREE})")
        clone = copy.copy(self)                     # shares every parameter with self
        clone._modules = dict(self._modules)
        clone.cfg = cfg
        if cfg.cmem_len > 0 and self.layers[0].compressor is None:
            layers = []
            for layer, rate in zip(self.layers, cfg.compression_rates):
                twin = copy.copy(layer)
                twin._modules = dict(layer._modules)
                twin.compressor = build_compressor(cfg.compression, cfg.d_model, rate)
                layers.append(twin)
            clone._modules["layers"] = nn.ModuleList(layers)
        return clone

    def forward(self, x: torch.Tensor, memory: Memory | None = None, return_attention: bool = False,
                kv_cache: KVCache | None = None) -> CTOutput:
        """x: [B, T, d_model] from a domain's front end; memory from ``init_memory`` or a previous call;
        kv_cache: None, or the KVCache of ``memory`` (generation: eval mode, no gradient), which makes the
        layers read the memories' keys and values from it instead of projecting them again."""
        cfg = self.cfg
        if x.dim() != 3 or x.shape[-1] != cfg.d_model:
            raise ValueError(f"x: expected [B, T, {cfg.d_model}], got {list(x.shape)}")
        if memory is None:
            memory = self.init_memory(x.shape[0], x.device)
        self._check_memory(memory, x)
        if kv_cache is not None:
            self._check_cache(kv_cache, memory)

        cache: dict[int, torch.Tensor] = {}

        def pos_emb(n_keys: int) -> torch.Tensor:
            if n_keys not in cache:
                # float64 models get float64 sinusoids; lower precisions are computed in float32, then cast
                emb = relative_position_embedding(n_keys, cfg.d_model, cfg.clamp_len, x.device,
                                                  torch.promote_types(x.dtype, torch.float32))
                cache[n_keys] = self.pos_drop(emb.to(x.dtype))
            return cache[n_keys]

        h, layers, losses, attention, caches = x, [], [], [], []
        layer_caches = [None] * len(self.layers) if kv_cache is None else kv_cache.layers
        for layer, lm, lc in zip(self.layers, memory.layers, layer_caches):
            h, next_lm, loss, probs, next_cache = layer(h, lm, pos_emb, cfg.mem_len, cfg.cmem_len, cfg.same_length,
                                                        return_attention, lc)
            layers.append(next_lm)
            losses.append(loss)
            attention.append(probs)
            caches.append(next_cache)
        losses = torch.stack(losses)
        return CTOutput(hidden=self.final_ln(h), memory=Memory(tuple(layers)),
                        aux_loss=cfg.compression_loss_weight * losses.sum(),
                        compression_losses=losses.detach(),
                        attention=attention if return_attention else None,
                        kv_cache=None if kv_cache is None else KVCache(tuple(caches)))

    def _check_memory(self, memory: Memory, x: torch.Tensor) -> None:
        if not isinstance(memory, Memory):
            raise ValueError(f"memory: expected a core.Memory, got {type(memory).__name__}")
        if len(memory.layers) != self.cfg.n_layers:
            raise ValueError(f"memory: has {len(memory.layers)} layers, the model has n_layers={self.cfg.n_layers}")
        if memory.d_model != self.cfg.d_model:
            raise ValueError(f"memory: width {memory.d_model} does not match d_model={self.cfg.d_model}")
        if memory.batch_size != x.shape[0]:
            raise ValueError(f"memory: batch size {memory.batch_size} does not match the input's batch size "
                             f"{x.shape[0]}; call init_memory(batch_size={x.shape[0]})")

    def _check_cache(self, cache: KVCache, memory: Memory) -> None:
        if self.training or torch.is_grad_enabled():
            raise ValueError("kv_cache: the KVCache is for generation only; use it in eval mode without gradient "
                             "(model.eval(), torch.inference_mode())")
        if not isinstance(cache, KVCache) or len(cache.layers) != len(memory.layers):
            raise ValueError("kv_cache: expected a KVCache from init_cache(memory) with one entry per layer")
        for i, (lc, lm) in enumerate(zip(cache.layers, memory.layers)):
            if (lc.n_cmem, lc.n_slots - lc.n_cmem) != (lm.cmem.shape[1], lm.mem.shape[1]):
                raise ValueError(f"kv_cache: layer {i} caches {lc.n_cmem} compressed slots and "
                                 f"{lc.n_slots - lc.n_cmem} memories, the memory holds {lm.cmem.shape[1]} and {lm.mem.shape[1]}; "
                                 f"carry out.kv_cache with out.memory, or rebuild it with init_cache(memory)")

    def flops_per_token(self, window: int) -> float:
        from .flops import count_parameters, flops_per_token
        return flops_per_token(self.cfg, window, count_parameters(self))
