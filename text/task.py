"""The text domain's `core.run.Task`: datasets -> StreamBatcher windows -> LanguageModel losses."""
from __future__ import annotations

import torch

from core import count_parameters
from core.run import StepResult, to_dict

from .config import TextConfig
from .data import StreamBatcher, prepare_dataset
from .data.batching import stream_offset
from .evaluate import evaluate
from .model import LanguageModel


def load_dataset(cfg: TextConfig):
    d = cfg.data
    return prepare_dataset(d.dataset, d.data_dir, source=d.source or None, allow_partial=d.allow_partial,
                           vocab_size=d.vocab_size, seed=d.seed, max_books=d.max_books or None,
                           longrange=d.longrange if d.dataset.startswith("longrange") else None)


def build_model(cfg: TextConfig, vocab_size: int) -> LanguageModel:
    torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank and every resume
    return LanguageModel(cfg.model, vocab_size)


# model fields that change how attention is computed, not the weights: eval may set them (TransformerXL's
# evaluation uses same_length and clamp_len)
ATTENTION_SETTINGS = ("same_length", "clamp_len")


def fingerprint(cfg: TextConfig, ds) -> dict:
    """What a checkpoint must agree on: the architecture and the vocabulary (not train/eval settings)."""
    model = {k: v for k, v in to_dict(cfg.model).items() if k not in ATTENTION_SETTINGS}
    return {"domain": "text", "model": model, "dataset": cfg.data.dataset,
            "vocab": ds.vocab.fingerprint, "vocab_size": ds.vocab.size}


class TextTask:
    unit = "tokens"

    def __init__(self, cfg: TextConfig, ds, model: LanguageModel | None = None):
        self.cfg, self.ds = cfg, ds
        self.model = model or build_model(cfg, ds.vocab.size)

    def fingerprint(self) -> dict:
        return fingerprint(self.cfg, self.ds)

    def train_stream(self, batch_size: int, rank: int, world_size: int) -> StreamBatcher:
        docs = self.ds.doc_starts("train") if self.cfg.data.reset_at_doc else None
        tokens = self.ds.split("train")
        return StreamBatcher(tokens, batch_size, self.cfg.data.window, doc_starts=docs, rank=rank,
                             world_size=world_size, offset=stream_offset(self.cfg.train.seed, len(tokens)))

    def init_state(self, batch_size: int, device):
        return self.model.init_state(batch_size, device)

    def load_state(self, state, device):
        return self.model.load_state(state, device)

    def step(self, model, batch, state, device) -> StepResult:
        x, y, reset = batch
        out = model(x.to(device, non_blocking=True), state, y.to(device, non_blocking=True),
                    reset=reset if self.cfg.data.reset_at_doc else None)
        nll = out.nll
        return StepResult(loss=nll.mean() + out.aux_loss, nats=nll.detach().float().sum(), count=nll.numel(),
                          state=out.state)

    def validate(self, model, device) -> dict:
        e = self.cfg.eval
        r = evaluate(model, self.ds.split("valid"), window=e.window or self.cfg.data.window, device=device,
                     batch_size=e.batch_size, max_windows=e.valid_windows,
                     doc_starts=self.ds.doc_starts("valid") if self.cfg.data.reset_at_doc else None,
                     precision=self.cfg.train.precision)
        return {"loss": r.loss, "count": r.count}

    def params(self) -> dict:
        return {"params": count_parameters(self.model, exclude_embeddings=False),
                "params_non_embedding": count_parameters(self.model, exclude_embeddings=True)}
