"""Long audio streams cut into training windows: B parallel streams, each window continues each stream.

Clips are concatenated per stream (the paper trains on long sequences so that memory spans clip
boundaries). Two boundary modes:
- continuous (default): the next clip follows immediately; the first sample of a clip is predicted from the
  end of the previous one, as text streams do across documents;
- reset_at_file_boundary: every clip starts on a window boundary with `reset[b] = True` (the trainer empties that
  row's memory); the clip's last window is padded with silence whose targets are IGNORE (not scored).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from speech.mulaw import MU

IGNORE = -100          # target id that the loss skips (torch cross_entropy's ignore_index default)
SILENCE = (MU + 1) // 2  # mu-law class of amplitude ~0


@dataclass
class Window:
    """inputs: [B, T] int64; targets: [B, T] int64 (IGNORE where unscored); reset: [B] bool (empty memory first).
    (Clips are held in their own dtype, uint8 for mu-law codes; only a window becomes int64.)"""
    inputs: torch.Tensor
    targets: torch.Tensor
    reset: torch.Tensor

    def scored(self) -> int:
        return int((self.targets != IGNORE).sum())


class Row:
    """One stream: a growing buffer of (input, target, reset) fed clip by clip from `next_clip()`.

    dtype: the clips' dtype; inputs are buffered in it (1 byte per sample for uint8 codes), targets in the
    smallest signed type that also holds IGNORE (int16 for uint8)."""

    def __init__(self, next_clip, window: int, reset_mode: bool, dtype=np.int64):
        self.next_clip, self.window, self.reset_mode = next_clip, window, reset_mode
        self.in_dtype = np.dtype(dtype)
        self.tgt_dtype = np.promote_types(self.in_dtype, np.int16)
        self.inp = np.zeros(0, self.in_dtype)
        self.tgt = np.zeros(0, self.tgt_dtype)
        self.rst = np.zeros(0, bool)
        self.pending: np.ndarray | None = None  # continuous mode: clip whose last target is the next clip's head
        self.exhausted = False
        self.started = False

    def _append(self, inp, tgt, rst):
        self.inp, self.tgt, self.rst = (np.concatenate([self.inp, inp]), np.concatenate([self.tgt, tgt]),
                                        np.concatenate([self.rst, rst]))

    def _feed(self) -> bool:
        clip = self.next_clip()
        if self.reset_mode:
            if clip is None:
                return False
            n = len(clip) - 1
            if n < 1:
                return True
            pad = -n % self.window
            rst = np.zeros(n + pad, bool)
            rst[0] = True
            self._append(np.concatenate([clip[:-1], np.full(pad, SILENCE, self.in_dtype)]),
                         np.concatenate([clip[1:], np.full(pad, IGNORE, self.tgt_dtype)]), rst)
            return True
        if self.pending is None:  # first clip of the stream: nothing before it to predict from
            if clip is None:
                return False
            self.pending = clip
            return True
        prev = self.pending
        head = clip[:1] if clip is not None else np.zeros(0, self.in_dtype)
        tgt = np.concatenate([prev[1:], head])
        tgt = np.concatenate([tgt, np.full(len(prev) - len(tgt), IGNORE, self.tgt_dtype)])  # end of a finite stream: unscored
        rst = np.zeros(len(prev), bool)
        rst[0] = not self.started  # only the stream's very first window starts from empty memory
        self.started = True
        self._append(prev, tgt, rst)
        self.pending = clip
        return clip is not None

    def take(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """Next window of this row; padded with silence / IGNORE once the clips run out."""
        T = self.window
        while len(self.inp) < T and not self.exhausted:
            if not self._feed():
                if not self.reset_mode and self.pending is not None:
                    self._feed()  # flush the last clip (its final target is unscored)
                self.exhausted = True
        inp, tgt, rst = self.inp[:T], self.tgt[:T], bool(self.rst[:1].any())
        self.inp, self.tgt, self.rst = self.inp[T:], self.tgt[T:], self.rst[T:]
        if len(inp) < T:
            inp = np.concatenate([inp, np.full(T - len(inp), SILENCE, self.in_dtype)])
            tgt = np.concatenate([tgt, np.full(T - len(tgt), IGNORE, self.tgt_dtype)])
        return inp, tgt, rst

    def done(self) -> bool:
        return self.exhausted and len(self.inp) == 0


class AudioStreams:
    """B parallel streams over `clips` ([N_i] tensors or arrays of mu-law classes, uint8 from speech.datasets).

    The clips are held as given, without a copy (views of the corpus's tensors); each window is made int64.

    loop=True (training): each row draws clips forever in its own seeded random order.
    loop=False (evaluation): clips are dealt round-robin to rows, each clip scored exactly once; iteration stops
    when every row is exhausted.
    """

    def __init__(self, clips: list[torch.Tensor], batch_size: int, window: int, reset_at_file_boundary: bool = False,
                 loop: bool = True, seed: int = 0):
        if not clips:
            raise ValueError("no clips to stream")
        if batch_size < 1 or window < 1:
            raise ValueError(f"batch_size={batch_size} and window={window} must be >= 1")
        self.clips = [c.numpy() if isinstance(c, torch.Tensor) else np.asarray(c) for c in clips]
        dtype = np.result_type(*self.clips)
        if dtype.kind not in "ui":
            raise ValueError(f"clips must hold integer mu-law classes, got {dtype}")
        self.batch_size, self.window, self.loop = batch_size, window, loop
        self.rows = [Row(self._source(b, seed), window, reset_at_file_boundary, dtype) for b in range(batch_size)]

    def _source(self, b: int, seed: int):
        if self.loop:
            rng = np.random.default_rng([seed, b])
            order: list[int] = []

            def next_clip():
                if not order:
                    order.extend(rng.permutation(len(self.clips)).tolist())
                return self.clips[order.pop()]
        else:
            mine = iter(self.clips[b::self.batch_size])

            def next_clip():
                return next(mine, None)
        return next_clip

    def __iter__(self):
        return self

    def __next__(self) -> Window:
        if not self.loop and all(r.done() for r in self.rows):
            raise StopIteration
        parts = [r.take() for r in self.rows]
        w = Window(torch.from_numpy(np.stack([p[0] for p in parts]).astype(np.int64)),
                   torch.from_numpy(np.stack([p[1] for p in parts]).astype(np.int64)), torch.tensor([p[2] for p in parts]))
        if not self.loop and w.scored() == 0 and all(r.done() for r in self.rows):
            raise StopIteration
        return w
