"""Speech as a `core.run.Task`: the generic Trainer drives it (no second training loop here).

One window: inputs/targets [B, T] mu-law classes from `AudioStreams`, loss = mean NLL per scored sample
(+ the compression auxiliary loss), state = Memory (Transformers) or the sample context (WaveNet).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from core.run import StepResult, autocast
from speech.streams import IGNORE, AudioStreams, Window


def unwrap(model):
    """The speech model inside a DDP wrapper (or the model itself)."""
    return getattr(model, "module", model)


def window_nll(model, batch: Window, state, device) -> tuple[torch.Tensor, int, object, torch.Tensor]:
    """Forward one window. Returns (summed NLL in nats, scored samples, next state, aux loss)."""
    inputs, targets = batch.inputs.to(device, non_blocking=True), batch.targets.to(device, non_blocking=True)
    logits, state, aux = model(inputs, state, batch.reset.to(device))
    nats = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=IGNORE, reduction="sum")
    return nats, int((targets != IGNORE).sum()), state, aux


def stream_seed(data_seed: int, train_seed: int, rank: int) -> int:
    """The seed of a rank's training streams: train.seed changes the data order (data.seed also picks the
    splits, which seeds of one comparison must share); train.seed 0 keeps the order it always had."""
    return data_seed * 1009 + train_seed * 100_003 + rank


class ResumableStreams:
    """AudioStreams with a state_dict (the window count); loading replays the same seeded windows."""

    def __init__(self, clips, batch_size: int, window: int, reset: bool, seed: int):
        self.clips, self.batch_size, self.window, self.reset, self.seed = clips, batch_size, window, reset, seed
        self.windows = 0
        self._make()

    def _make(self):
        self.streams = AudioStreams(self.clips, self.batch_size, self.window, self.reset, loop=True, seed=self.seed)

    def __iter__(self):
        return self

    def __next__(self) -> Window:
        self.windows += 1
        return next(self.streams)

    def state_dict(self) -> dict:
        return {"windows": self.windows, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if "seed" in state and int(state["seed"]) != self.seed:
            raise ValueError("the saved data stream was drawn with another seed: resume with the train.seed and "
                             "data.seed that wrote it")
        self._make()
        for _ in range(int(state["windows"])):
            next(self.streams)
        self.windows = int(state["windows"])


def heldout_clips(clips: list, sample_rate: int, max_seconds: float) -> list:
    """A fixed subset of a split with at least max_seconds of audio (all clips if 0): clips in a seeded random
    order (seed 0, so every model and run scores the same audio), taken until the budget is reached."""
    if max_seconds <= 0:
        return clips
    out, total = [], 0
    for i in np.random.default_rng(0).permutation(len(clips)):
        if total >= max_seconds * sample_rate:
            break
        out.append(clips[i])
        total += len(clips[i])
    return out


@torch.inference_mode()
def evaluate(model, clips: list, window: int, batch_size: int, reset: bool, device,
             precision: str = "auto") -> dict:
    """NLL per sample over `clips` (each scored once, streams continue across windows).
    Returns {"loss": nats/sample, "bits": bits/sample, "count": samples scored}."""
    model.eval()
    streams = AudioStreams(clips, min(batch_size, len(clips)), window, reset, loop=False)
    state = unwrap(model).init_state(streams.batch_size, device)
    total, count = 0.0, 0
    with autocast(torch.device(device), precision):
        for batch in streams:
            nats, n, state, _ = window_nll(model, batch, state, device)
            total, count = total + float(nats), count + n
    loss = total / max(count, 1)
    return {"loss": loss, "bits": loss / math.log(2), "count": count}


class SpeechTask:
    """core.run.Task for one speech preset over a loaded Corpus."""
    unit = "samples"

    def __init__(self, cfg, corpus, model):
        self.cfg, self.corpus, self.model = cfg, corpus, model
        self.valid_clips = heldout_clips(corpus.splits.get("valid", []), corpus.sample_rate, cfg.eval.max_seconds)

    def fingerprint(self) -> dict:
        from core.run import to_dict

        model = to_dict(self.cfg.model)
        # how windows continue a stream is not the weights' identity (and checkpoints older than the setting
        # must still resume); a checkpoint's state of the other form is refused by the model's load_state
        model["wavenet"].pop("context", None)
        return {"preset": self.cfg.preset, "model": model, "sample_rate": self.cfg.data.sample_rate}

    def train_stream(self, batch_size: int, rank: int, world_size: int) -> ResumableStreams:
        d = self.cfg.data
        return ResumableStreams(self.corpus.splits["train"], batch_size, self.cfg.model.window,
                                d.reset_at_file_boundary, seed=stream_seed(d.seed, self.cfg.train.seed, rank))

    def init_state(self, batch_size: int, device):
        return self.model.init_state(batch_size, device)

    def load_state(self, state, device):
        return self.model.load_state(state, self.cfg.train.batch_size, device)

    def step(self, model, batch: Window, state, device) -> StepResult:
        nats, count, state, aux = window_nll(model, batch, state, device)
        loss = nats / max(count, 1) + aux
        return StepResult(loss=loss, nats=nats.detach(), count=count, state=state)

    def validate(self, model, device) -> dict | None:
        if not self.valid_clips:
            return None
        return evaluate(model, self.valid_clips, self.cfg.model.window, self.cfg.eval.batch_size,
                        self.cfg.data.reset_at_file_boundary, device, self.cfg.train.precision)
