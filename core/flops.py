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


def compressor_parameters(stack: nn.Module) -> int:
    """Parameters of a CompressiveTransformer's compressors (and auto-encoding decoders): they run on the
    evicted memories only, so 6 N does not describe their cost (see ``compression_flops_per_token``)."""
    return sum(count_parameters(m) for layer in stack.layers for m in (layer.compressor, layer.decoder)
               if m is not None)


def windows_to_fill(cfg: CTConfig, window: int) -> int:
    """Windows of ``window`` tokens after which every memory is full: n_m tokens fill the memory, and
    c n_cm more must be evicted to fill the compressed memory (the largest over the layers' rates)."""
    needed = cfg.mem_len + max(c * cfg.cmem_len for c in cfg.compression_rates) * cfg.compressive
    return -(-needed // window)


def _steady_state(mem_len: int, rate: int, window: int) -> tuple[float, float]:
    """(groups of c compressed, pending memories carried in) per window once the memory is full, averaged
    over c windows (a period of the pending queue: evictions of T tokens, c at a time)."""
    evicted = lambda w: max(0, w * window - mem_len)           # noqa: E731  tokens evicted after w windows
    first = -(-mem_len // window) + 1                           # every window from here on evicts T tokens
    groups = [evicted(w) // rate - evicted(w - 1) // rate for w in range(first, first + rate)]
    pending = [evicted(w - 1) % rate for w in range(first, first + rate)]
    return sum(groups) / rate, sum(pending) / rate


def compression_flops_per_token(cfg: CTConfig, window: int) -> float:
    """Training matmul FLOPs per token of the compression, as performed once the memories are full.

    Per layer and window (per stream), n groups of c evicted memories compressed, p pending memories (held
    over from earlier windows) entering them, width d, T queries:
      conv compressor     2 c d^2 n forward, 2 c d^2 n weight gradient where it is trained (its input, the
                          detached memory, gets none); max_pool / mean_pool: no matmuls
      attention-reconstruction loss (Algorithm 2; W_k, W_v and the queries enter with stopped gradients):
        keys and values of the n compressed slots   4 d^2 n forward + 4 d^2 n gradient into the slots
        keys and values of the p pending memories   4 d^2 p (the others' come from the main attention)
        attention over the compressed slots         4 T n d forward + 6 T n d backward (dP, dV, dK)
        attention over the c n old memories         4 T c n d (no gradient)
    n and p are averaged over a period of c windows (``_steady_state``). Biases, softmax and the squared
    error are elementwise and not counted. Other compressors and losses are not counted: ValueError.
    """
    if not cfg.compressive:
        return 0.0
    if cfg.compression not in ("conv", "max_pool", "mean_pool") or cfg.compression_loss not in ("attention", "none"):
        raise ValueError(f"compression_flops_per_token counts the conv and pooling compressors with the attention "
                         f"or no loss, not compression={cfg.compression!r}, compression_loss={cfg.compression_loss!r}")
    d, t, total = cfg.d_model, window, 0.0
    for c in cfg.compression_rates:
        n, p = _steady_state(cfg.mem_len, c, window)
        if cfg.compression == "conv":
            total += 2 * c * d * d * n * (2 if cfg.trains_compressor else 1)
        if cfg.trains_compressor:
            total += 8 * d * d * n + 4 * d * d * p + 10 * t * n * d + 4 * t * c * n * d
    return total / window


def training_flops_per_token(stack: nn.Module, window: int) -> dict[str, float]:
    """Training FLOPs per token of a CompressiveTransformer stack as performed, in parts: ``dense`` 6 N with
    N its non-embedding parameters without the compressors, ``attention`` 12 l d A, ``compression``
    (``compression_flops_per_token``) and their ``total``. The relative-position term is not counted."""
    cfg = stack.cfg
    parts = {"dense": 6.0 * (count_parameters(stack) - compressor_parameters(stack)),
             "attention": flops_per_token(cfg, window, 0),
             "compression": compression_flops_per_token(cfg, window)}
    return {**parts, "total": sum(parts.values())}
