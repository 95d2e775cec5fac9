"""Parameter and FLOP counts, as the benchmarks count them."""
from __future__ import annotations

from torch import nn

from .config import CTConfig


def count_parameters(module: nn.Module, exclude_embeddings: bool = True) -> int:
    """Trainable parameters of ``module``, each tensor once (tied weights count once).

    With ``exclude_embeddings``, the weights of ``nn.Embedding`` modules (and any output layer tied to
    them) are left out: the "non-embedding" N of the FLOP count.
    """
    skip = set()
    if exclude_embeddings:
        skip = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    seen, total = set(), 0
    for p in module.parameters():
        if p.requires_grad and id(p) not in seen and id(p) not in skip:
            seen.add(id(p))
            total += p.numel()
    return total


def flops_per_token(cfg: CTConfig, window: int, n_params: int) -> float:
    """Training FLOPs per token: 6 N + 12 l d A (forward, backward and weight gradients), where N is the
    non-embedding parameter count and A = n_cm + n_m + T the attention length."""
    attention_len = cfg.cmem_len + cfg.mem_len + window
    return 6.0 * n_params + 12.0 * cfg.n_layers * cfg.d_model * attention_len
