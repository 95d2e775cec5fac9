"""Memory: the state a Compressive Transformer carries from one window to the next.

Per layer i (Algorithm 1 of Rae et al., 2020):
- ``mem``: the layer's *inputs* h^(i) of the most recent n_m past positions, a FIFO;
- ``cmem``: the compressed memory, a FIFO of n_cm compressed slots, oldest first;
- ``pending``: evicted memories still waiting for a full group of c (fewer than c of them), so that
  nothing is dropped and compression groups never depend on where the stream was cut into windows;
- validity masks, False where a stream was reset (its document or episode ended);
- for the ``most_used`` compressor, the attention each memory received (sum and count of windows);
- for ``bptt``, the inputs of the most recent compressed slots, so the next window can recompute
  them with gradient into the compressor.

All tensors are batch-first and hold no autograd graph: the stack stores memories with stopped
gradients (as TransformerXL does). ``state_dict`` holds tensors only, so a checkpoint with a Memory
loads with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

_FIELDS = ("mem", "mem_valid", "cmem", "cmem_valid", "pending", "pending_valid",
           "usage_sum", "usage_count", "pending_usage", "fresh")


@dataclass(frozen=True)
class LayerMemory:
    """One layer's state. mem: [B, M, d]; cmem: [B, C, d]; pending: [B, P, d] (P < c);
    *_valid: [B, M|C|P] bool; usage_sum, usage_count: [B, M]; pending_usage: [B, P];
    fresh: [B, F, d] inputs of the newest F / c compressed slots (bptt only)."""

    mem: torch.Tensor
    mem_valid: torch.Tensor
    cmem: torch.Tensor
    cmem_valid: torch.Tensor
    pending: torch.Tensor
    pending_valid: torch.Tensor
    usage_sum: torch.Tensor
    usage_count: torch.Tensor
    pending_usage: torch.Tensor
    fresh: torch.Tensor

    @staticmethod
    def empty(batch_size: int, d_model: int, device=None, dtype=None) -> "LayerMemory":
        dtype = dtype or torch.get_default_dtype()
        vec = torch.zeros(batch_size, 0, d_model, device=device, dtype=dtype)
        flag = torch.zeros(batch_size, 0, device=device, dtype=torch.bool)
        num = torch.zeros(batch_size, 0, device=device, dtype=torch.promote_types(dtype, torch.float32))   # usage
        return LayerMemory(vec, flag, vec, flag, vec, flag, num, num, num, vec)

    def map(self, fn) -> "LayerMemory":
        return LayerMemory(*(fn(getattr(self, f.name)) for f in fields(self)))


@dataclass(frozen=True)
class Memory:
    """The per-layer memories of a stack, for a batch of B parallel streams."""

    layers: tuple[LayerMemory, ...]

    @property
    def batch_size(self) -> int:
        return self.layers[0].mem.shape[0]

    @property
    def d_model(self) -> int:
        return self.layers[0].mem.shape[-1]

    @property
    def mem_len(self) -> int:
        """Current number of memories (grows to n_m from an empty start)."""
        return self.layers[0].mem.shape[1]

    def cmem_lens(self) -> list[int]:
        return [lm.cmem.shape[1] for lm in self.layers]

    def detach(self) -> "Memory":
        return Memory(tuple(lm.map(torch.Tensor.detach) for lm in self.layers))

    def to(self, device=None, dtype=None) -> "Memory":
        """Moves the memory; ``dtype`` applies to the floating-point memories only."""
        def move(t: torch.Tensor) -> torch.Tensor:
            vectors = t.dim() == 3                  # mem, cmem, pending, fresh: [B, N, d]
            return t.to(device=device, dtype=dtype if vectors else None)
        return Memory(tuple(lm.map(move) for lm in self.layers))

    def reset_rows(self, done: torch.Tensor) -> "Memory":
        """Empties the memories of the streams whose ``done`` [B] is True (their document ended).

        Shapes stay the same (streams advance in lock-step); the slots are zeroed and marked invalid,
        so attention ignores them and they are never compressed into the new document's memory.
        """
        done = done.to(device=self.layers[0].mem.device, dtype=torch.bool)
        if done.shape != (self.batch_size,):
            raise ValueError(f"reset_rows: done must have shape [{self.batch_size}], got {list(done.shape)}")
        keep = ~done

        def clear(t: torch.Tensor) -> torch.Tensor:
            k = keep.view(-1, *([1] * (t.dim() - 1)))
            return t * k if t.dtype != torch.bool else t & k

        return Memory(tuple(lm.map(clear) for lm in self.layers))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{i}.{name}": getattr(lm, name) for i, lm in enumerate(self.layers) for name in _FIELDS}

    @staticmethod
    def from_state_dict(state: dict[str, torch.Tensor]) -> "Memory":
        n_layers = 1 + max((int(k.split(".")[0]) for k in state), default=-1)
        if n_layers == 0:
            raise ValueError("memory state: the state dict holds no layers")
        try:
            layers = tuple(LayerMemory(**{name: state[f"{i}.{name}"] for name in _FIELDS})
                           for i in range(n_layers))
        except KeyError as missing:
            raise ValueError(f"memory state: missing entry {missing}; was it saved by Memory.state_dict()?") from None
        return Memory(layers)
