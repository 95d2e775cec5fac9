"""Sampling audio sample by sample.

- WaveNet, cached: per-layer queues (O(layers) per sample, `WaveNet.step`); naive: recompute the last
  receptive field every sample (the reference the cached path must match exactly, and the benchmark's baseline).
- Transformers (Compressive / XL): the current window is re-read with the memories each sample; when the
  window is full it is pushed through once more to update the memories (the paper's evaluation setting:
  memories carry everything before the window). Cached (the default): the memories' keys and values are
  kept between samples (core/cache.py); uncached: the reference.
All samplers draw one categorical sample per step from an explicit torch.Generator, so the same seed gives the
same audio whichever path computed the logits.
"""
from __future__ import annotations

import torch

from speech.streams import SILENCE


def sample_token(logits: torch.Tensor, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    """logits: [B, V] -> [B] int64 drawn from softmax(logits / temperature) (argmax at temperature 0)."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1).cpu()
    return torch.multinomial(probs, 1, generator=generator)[:, 0].to(logits.device)


def default_prime(batch_size: int, length: int, device=None) -> torch.Tensor:
    """A context of silence: [B, length] (what reset rows see in training)."""
    return torch.full((batch_size, max(length, 1)), SILENCE, dtype=torch.int64, device=device)


@torch.inference_mode()
def wavenet_generate_cached(model, n_samples: int, prime: torch.Tensor, generator: torch.Generator,
                            temperature: float = 1.0) -> torch.Tensor:
    """prime: [B, P] -> generated [B, n_samples], using the per-layer queues."""
    queues, logits = model.prefill(prime)
    weights = model.step_weights()
    out, t = [], prime.shape[1]
    for _ in range(n_samples):
        tok = sample_token(logits, generator, temperature)
        out.append(tok)
        logits = model.step(tok, queues, t, weights)
        t += 1
    return torch.stack(out, 1)


@torch.inference_mode()
def wavenet_generate_naive(model, n_samples: int, prime: torch.Tensor, generator: torch.Generator,
                           temperature: float = 1.0) -> torch.Tensor:
    """prime: [B, P] -> generated [B, n_samples], recomputing the receptive field for every sample."""
    rf = model.cfg.receptive_field
    seq = prime
    out = []
    for _ in range(n_samples):
        logits = model(seq[:, -rf:])[:, -1]
        tok = sample_token(logits, generator, temperature)
        out.append(tok)
        seq = torch.cat([seq, tok[:, None]], 1)
    return torch.stack(out, 1)


@torch.inference_mode()
def transformer_generate(model, n_samples: int, prime: torch.Tensor, generator: torch.Generator, window: int,
                         temperature: float = 1.0, cached: bool = True) -> torch.Tensor:
    """prime: [B, P] -> generated [B, n_samples] with a SpeechTransformer and its memories.

    The prime is read in full windows (filling the memories); the remaining partial window is the current
    window. Each new sample re-reads the current window (<= `window` inputs) against the memories, as in
    training; when the window is full it is committed: pushed through once more to update the memories.
    cached: the memories' keys and values are kept between samples (core/cache.py) and the commit is the
    last read of the full window (the same computation, not done twice): the same samples, faster.
    """
    start = transformer_prefill(model, prime, window, cached)
    return transformer_sample(model, n_samples, start, generator, window, temperature)


@torch.inference_mode()
def transformer_prefill(model, prime: torch.Tensor, window: int, cached: bool = True):
    """Reads prime [B, P] in full windows, keeping >= 1 input for the current window.
    Returns (state, KVCache or None, current window [B, 1..window])."""
    state = model.init_state(prime.shape[0], prime.device)
    cache = model.core.init_cache(state) if cached else None
    n_full = (prime.shape[1] - 1) // window
    for i in range(n_full):
        _, state, cache = _read(model, prime[:, i * window:(i + 1) * window], state, cache)
    return state, cache, prime[:, n_full * window:]


@torch.inference_mode()
def transformer_sample(model, n_samples: int, start, generator: torch.Generator, window: int,
                       temperature: float = 1.0) -> torch.Tensor:
    """Samples from `start` = transformer_prefill(...): [B, n_samples].

    Uncached (start holds no cache): every sample re-reads the current window; a full window is read once
    more to commit it. Cached: a partial window is read incrementally, by a scratch copy of the state whose
    memory has room for the window (nothing is evicted or compressed there) and which takes only the new
    samples: it attends over [cmem; mem; window so far], as a re-read does. A full window is read once, from
    the real state: its logits and its commit. (With same_length the masks depend on the window: re-reads.)
    """
    state, cache, current = start
    incremental = cache is not None and not model.core.cfg.same_length
    scratch_core = model.core.with_memory_sizes(mem_len=model.core.cfg.mem_len + window) if incremental else None
    scratch, fed = None, 0                            # scratch (state, cache) after current[:, :fed]
    out = []
    for _ in range(n_samples):
        if incremental and current.shape[1] < window:
            scratch, fed = (scratch, fed) if scratch is not None else ((state, cache), 0)
            logits, *scratch = _read(model, current[:, fed:], *scratch, core=scratch_core)
            fed = current.shape[1]
        else:
            logits, committed, next_cache = _read(model, current, state, cache)
        tok = sample_token(logits[:, -1], generator, temperature)
        out.append(tok)
        if current.shape[1] == window:
            state, cache = (committed, next_cache) if cache is not None else _read(model, current, state, None)[1:]
            current, scratch = tok[:, None], None
        else:
            current = torch.cat([current, tok[:, None]], 1)
    return torch.stack(out, 1)


def _read(model, inputs: torch.Tensor, state, cache, core=None):
    """inputs [B, T] -> (logits [B, T, 256], the state and cache after them); cache None: uncached;
    core: the stack to read with (default model.core)."""
    if cache is None:
        logits, state, _ = model(inputs, state)
        return logits, state, None
    out = (core or model.core)(model.embed(inputs), state, kv_cache=cache)
    return model.head(out.hidden), out.memory, out.kv_cache
