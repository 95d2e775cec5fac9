"""The TransformerXL ordered iterator: B parallel contiguous streams so memory flows window to window.

The split is cut into B (x world_size) equal contiguous parts, one per batch row; window i of row b
holds tokens [b * L + i * T, b * L + (i + 1) * T) of the split (L = part length), and its targets are
the same tokens shifted by one. Row b's memory is therefore always the immediately preceding text of the
same stream; `reset[b]` flags windows that begin a new document, whose memory should be dropped.

`offset` rotates the split before it is cut (row b starts at token offset + b * L, wrapping past the end
to the start): the training seed picks it (`stream_offset`), so seeds differ in data order as well as in
initial weights, while every row still reads contiguous text. The wrap point, the split's first token,
counts as a document start.
"""
from __future__ import annotations

import numpy as np
import torch


class StreamBatcher:
    """Iterate over (x, y, reset) windows of a 1-D token stream.

    tokens: [N] token ids (a memory-mapped split is fine: windows are sliced, never the whole array).
    batch_size: B rows per process. window: T tokens per window.
    doc_starts: offsets of document starts in `tokens` (None: no resets).
    start_step: first window to yield (resume); `state_dict()` / `load_state_dict()` save and restore it.
    offset: rotation of the split in tokens (0: none; see the module docstring).
    rank, world_size: data-parallel processes each take their own B of the B * world_size streams.
    drop_last: with False, a final shorter window (T' < T) covers the remaining tokens (evaluation).

    Yields x: [B, T] int64, y: [B, T] int64 (next tokens), reset: [B] bool.
    """

    def __init__(self, tokens, batch_size: int, window: int, doc_starts=None, start_step: int = 0,
                 rank: int = 0, world_size: int = 1, drop_last: bool = True, offset: int = 0):
        if batch_size < 1 or window < 1:
            raise ValueError(f"batch_size ({batch_size}) and window ({window}) must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.tokens = tokens
        self.batch_size, self.window, self.rank, self.world_size = batch_size, window, rank, world_size
        self.drop_last = drop_last
        self.offset = int(offset) % max(1, len(tokens))
        streams = batch_size * world_size
        self.part_len = len(tokens) // streams
        if self.part_len < window + 1:
            raise ValueError(
                f"split of {len(tokens):,} tokens is too short for {streams} streams (batch_size {batch_size}"
                f" x world_size {world_size}) of window {window}: needs at least {streams * (window + 1):,} "
                "tokens; lower batch_size or window"
            )
        # row offsets of this process's streams in the split
        self.row_start = (np.arange(batch_size) + rank * batch_size) * self.part_len + self.offset
        if doc_starts is not None and self.offset:
            doc_starts = np.append(np.asarray(doc_starts, dtype=np.int64), 0)
        self.doc_starts = None if doc_starts is None else np.unique(np.asarray(doc_starts, dtype=np.int64))
        usable = self.part_len - 1  # the last token of each part is only ever a target
        self.n_windows = usable // window if drop_last else -(-usable // window)
        self.step = 0
        self.epoch = 0
        self.load_state_dict({"step": start_step, "epoch": 0, **self._geometry()})

    def _geometry(self) -> dict:
        return {"n_tokens": len(self.tokens), "batch_size": self.batch_size, "window": self.window,
                "rank": self.rank, "world_size": self.world_size, "drop_last": self.drop_last,
                "offset": self.offset}

    def _read(self, start: int, n: int) -> np.ndarray:
        """n tokens from position `start` of the rotated split (wrapping past its end)."""
        N = len(self.tokens)
        start %= N
        if start + n <= N:
            return np.asarray(self.tokens[start:start + n])
        return np.concatenate([np.asarray(self.tokens[start:]), np.asarray(self.tokens[:start + n - N])])

    def __len__(self) -> int:
        return self.n_windows

    def window_at(self, i: int):
        """(x [B, T], y [B, T], reset [B]) of window i."""
        lo = i * self.window
        t = min(self.window, self.part_len - 1 - lo)
        starts = (self.row_start + lo) % len(self.tokens)
        block = np.stack([self._read(s, t + 1) for s in starts]).astype(np.int64)
        block = torch.from_numpy(block)
        if self.doc_starts is None:
            reset = np.zeros(self.batch_size, dtype=bool)
        else:
            k = np.searchsorted(self.doc_starts, starts)
            reset = (k < len(self.doc_starts)) & (self.doc_starts[np.minimum(k, len(self.doc_starts) - 1)] == starts)
        return block[:, :-1], block[:, 1:], torch.from_numpy(reset)

    def target_positions(self, i: int) -> torch.Tensor:
        """[B, T] int64 index in the split of each target y of window i (for per-token analysis files)."""
        lo = i * self.window
        t = min(self.window, self.part_len - 1 - lo)
        return torch.from_numpy((self.row_start[:, None] + lo + 1 + np.arange(t)[None, :]) % len(self.tokens))

    def __iter__(self):
        while self.step < self.n_windows:
            i = self.step
            self.step += 1
            yield self.window_at(i)
        self.step = 0
        self.epoch += 1

    def state_dict(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, **self._geometry()}

    def load_state_dict(self, state: dict) -> None:
        mismatch = {k: (state[k], v) for k, v in self._geometry().items() if k in state and state[k] != v}
        if mismatch:
            shown = ", ".join(f"{k} {saved} there, {now} here" for k, (saved, now) in mismatch.items())
            raise ValueError(f"the saved data stream is for another stream layout ({shown}): resume with the "
                             "train.batch_size, train.seed, data.window, data set and number of processes that "
                             "wrote it")
        if not 0 <= int(state["step"]) <= self.n_windows:
            raise ValueError(f"StreamBatcher step {state['step']} outside [0, {self.n_windows}]")
        self.step, self.epoch = int(state["step"]), int(state.get("epoch", 0))


def stream_offset(seed: int, n_tokens: int) -> int:
    """The rotation of a training split for `seed`: 0 for seed 0 (the unrotated split), else uniform."""
    if seed == 0 or n_tokens < 2:
        return 0
    return int(np.random.default_rng(seed).integers(1, n_tokens))
