"""A generic training loop shared by every domain (text, speech; rl's learner reuses its pieces).

One *step* is one parameter update. It spans `UpdateFrequency(step)` windows: the recurrent state
(the Compressive Transformer's Memory, an LSTM's (h, c)) flows through all of them and is detached
between windows (truncated BPTT), gradients accumulate, then the update is clipped and applied.

Around that loop: the paper's LR schedule, the precision (train.precision: bf16 autocast where native), DDP (each rank its own data streams
and memories, rank 0 writes), metrics.jsonl, periodic validation, and checkpoints every K steps, at the
end, and on SIGTERM / Ctrl-C (the loop stops at the next step boundary so the checkpoint is exact; a
second Ctrl-C aborts at once). `fit(resume=True)` continues bit-for-bit on the CPU.
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .checkpoint import (load_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state,
                         to_cpu)
from .config import ConfigError
from .distributed import DistContext
from .io import MetricsWriter, exclusive_run
from .precision import autocast, check_precision, resolve_precision
from .schedule import LRSchedule, UpdateFrequency
from .task import Task

LN2 = math.log(2.0)


@dataclass(frozen=True)
class TrainConfig:
    """The [train] section of every preset. Paper values: lr 3e-4, init_lr 1e-6, grad_clip 0.1,
    update_every 4 after 60k steps (update_every_after)."""
    steps: int = 1000
    batch_size: int = 8
    lr: float = 3e-4
    init_lr: float = 1e-6
    warmup_steps: int = 100
    min_lr: float = 0.0
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    grad_clip: float = 0.1          # 0 disables clipping
    update_every: int = 1           # k: windows per update once update_every_after is reached
    update_every_after: int = 0     # N
    seed: int = 0
    device: str = "auto"            # auto | cpu | cuda
    precision: str = "auto"         # auto | fp32 | bf16 (bf16 autocast; auto: where native; core/run/precision.py)
    bf16: bool | None = None        # legacy (presets and run directories before precision): false = "fp32"
    log_every: int = 10
    eval_every: int = 0             # 0: validate only at the end
    checkpoint_every: int = 0       # 0: checkpoint only at the end (and on interrupt)
    keep_step_checkpoints: bool = False
    progress: bool = True
    threads: int = 0                # torch CPU threads (0: torch's default); 1 avoids oversubscription
                                    # on a shared machine, where OpenMP spinning can cost 5x

    def __post_init__(self):
        for name in ("steps", "batch_size", "update_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "init_lr", "min_lr", "weight_decay", "grad_clip", "warmup_steps", "threads",
                     "update_every_after", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"train.device must be auto, cpu or cuda, got {self.device!r}")
        check_precision(self.precision, "train.precision")
        if self.bf16 is not None:       # an older preset or run directory: bf16 = false meant fp32 everywhere
            if not self.bf16 and self.precision == "bf16":
                raise ConfigError("train.bf16 = false contradicts train.precision = 'bf16'; drop train.bf16 "
                                  "(train.precision replaces it)")
            object.__setattr__(self, "precision", self.precision if self.bf16 else "fp32")
            object.__setattr__(self, "bf16", None)

    def schedule(self) -> LRSchedule:
        return LRSchedule(lr=self.lr, total_steps=self.steps, warmup_steps=self.warmup_steps,
                          init_lr=self.init_lr, min_lr=self.min_lr)

    def frequency(self) -> UpdateFrequency:
        return UpdateFrequency(every=self.update_every, after=self.update_every_after)


class _StopFlag:
    """SIGTERM / SIGINT -> stop at the next step boundary; a second SIGINT aborts immediately."""

    def __init__(self):
        self.raised = False
        self._old: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.raised and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        return False


class Trainer:
    """Runs `task` under `cfg`, writing RUN_DIR/metrics.jsonl and RUN_DIR/checkpoints/.

    `on_step(step)` (optional) is called after every update: tests use it to send SIGTERM mid-run.
    """

    def __init__(self, task: Task, cfg: TrainConfig, run_dir: str | Path, dist: DistContext | None = None,
                 on_step: Callable[[int], None] | None = None):
        self.task, self.cfg, self.run_dir = task, cfg, Path(run_dir)
        self.dist = dist or DistContext(device=torch.device("cpu"))
        self.on_step = on_step
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.metrics = MetricsWriter(self.run_dir / "metrics.jsonl", enabled=self.dist.is_main)

    # ------------------------------------------------------------------------------------ checkpoints
    def _payload(self, model, opt, stream, state, counters: dict) -> dict | None:
        own = {"rng": rng_state(), "data": stream.state_dict(),
               "state": None if state is None else state.state_dict()}
        ranks = self.dist.gather(to_cpu(own))
        if not self.dist.is_main:
            return None
        return {"fingerprint": self.task.fingerprint(), "model": model.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": {"step": counters["step"]},
                "world_size": self.dist.world_size, "ranks": ranks, **counters}

    def _save(self, model, opt, stream, state, counters: dict) -> None:
        counters["metrics_lines"] = self.metrics.lines
        payload = self._payload(model, opt, stream, state, counters)
        if payload is not None:
            save_checkpoint(self.ckpt_dir / "latest.pt", payload)
            if self.cfg.keep_step_checkpoints:
                save_checkpoint(self.ckpt_dir / f"step_{counters['step']}.pt", payload)
        self.dist.barrier()

    # ------------------------------------------------------------------------------------ validation
    def _validate(self, model: nn.Module, counters: dict) -> dict | None:
        result = None
        if self.dist.is_main:
            saved = rng_state()  # validation must not shift the training RNG stream (exact resume)
            model.eval()
            with torch.no_grad(), autocast(self.dist.device, self.precision):
                result = self.task.validate(model, self.dist.device)
            model.train()
            set_rng_state(saved)
            if result is not None:
                loss = float(result["loss"])
                self.metrics.write({"split": "valid", "step": counters["step"], "tokens": counters["tokens"],
                                    "loss": loss, "bits": loss / LN2, "count": int(result["count"]),
                                    "time_s": counters["elapsed_s"]})
        self.dist.barrier()
        return result

    # ------------------------------------------------------------------------------------ the loop
    def fit(self, resume: bool = False, on_ready: Callable[[], None] | None = None) -> dict:
        """Train to cfg.steps (from the checkpoint with `resume`). `on_ready()` runs on the main rank once
        the checkpoint has been restored and checked, before the first step: a refused resume raises
        before it, so a caller that writes its run files there never changes a run it cannot continue.
        The main rank holds the run directory's lock throughout (io.exclusive_run)."""
        with exclusive_run(self.run_dir) if self.dist.is_main else contextlib.nullcontext():
            return self._fit(resume, on_ready)

    def _fit(self, resume: bool, on_ready: Callable[[], None] | None) -> dict:
        cfg, dist, device = self.cfg, self.dist, self.dist.device
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.precision = resolve_precision(cfg.precision, device)
        if dist.is_main:
            print(f"precision: {self.precision}")
        seed_everything(cfg.seed + dist.rank)
        model = self.task.model.to(device)
        model.train()
        # fused: one kernel for every parameter (2.6x faster than the default for-each path on a CPU thread)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.init_lr, betas=(cfg.adam_beta1, cfg.adam_beta2),
                               eps=cfg.adam_eps, weight_decay=cfg.weight_decay,
                               fused=torch.device(device).type in ("cpu", "cuda"))
        stream = self.task.train_stream(cfg.batch_size, dist.rank, dist.world_size)
        state = self.task.init_state(cfg.batch_size, device)
        counters = {"step": 0, "tokens": 0, "windows": 0, "elapsed_s": 0.0, "last_loss": float("nan"),
                    # the open log interval (restored on resume, so metrics.jsonl matches an unbroken run)
                    "log_nats": 0.0, "log_count": 0.0, "log_start_s": 0.0, "metrics_lines": 0}

        ckpt_path = self.ckpt_dir / "latest.pt"
        if resume and ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path, self.task.fingerprint())
            if ckpt["world_size"] != dist.world_size:
                raise ValueError(f"{ckpt_path}: written by {ckpt['world_size']} processes, resumed with "
                                 f"{dist.world_size}; resume with the same number of processes")
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            counters = {k: ckpt.get(k, v) for k, v in counters.items()}
            mine = ckpt["ranks"][dist.rank]
            stream.load_state_dict(mine["data"])
            state = self.task.load_state(mine["state"], device)
            set_rng_state(mine["rng"])
            if "metrics_lines" in ckpt:
                self.metrics.keep_first(counters["metrics_lines"])
            else:
                self.metrics.truncate_after(counters["step"])
        else:
            if resume and dist.is_main:
                print(f"no checkpoint at {ckpt_path}: starting from step 0")
            self.metrics.keep_first(0)      # a run killed before its first checkpoint left lines behind
        if on_ready is not None and dist.is_main:
            on_ready()

        ddp = model
        if dist.enabled:
            ddp = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True)  # compressors only receive gradients once memory overflows

        schedule, frequency = cfg.schedule(), cfg.frequency()
        params = [p for p in model.parameters() if p.requires_grad]
        it = iter(stream)
        t_start = time.time() - counters["elapsed_s"]
        last_train, last_valid, interrupted = None, None, False
        bar = _progress(cfg.steps, counters["step"], enabled=cfg.progress and dist.is_main)

        with _StopFlag() as stop:
            while counters["step"] < cfg.steps:
                step = counters["step"]
                k = frequency(step)
                lr = schedule(step)
                for group in opt.param_groups:
                    group["lr"] = lr
                opt.zero_grad(set_to_none=True)
                nats, count = 0.0, 0
                for w in range(k):
                    try:
                        batch = next(it)
                    except StopIteration:  # a finite stream: start its next epoch
                        it = iter(stream)
                        batch = next(it)
                    sync = w == k - 1 or not dist.enabled
                    with (contextlib.nullcontext() if sync else ddp.no_sync()):
                        with autocast(device, self.precision):
                            res = self.task.step(ddp, batch, state, device)
                        (res.loss / k).backward()
                    state = None if res.state is None else res.state.detach()
                    nats += float(res.nats)
                    count += res.count
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                nats, count = dist.all_reduce_sum([nats, float(count)])
                counters["step"] += 1
                counters["windows"] += k
                counters["tokens"] += int(count)
                counters["last_loss"] = nats / max(count, 1.0)
                counters["log_nats"] += nats
                counters["log_count"] += count
                step = counters["step"]
                counters["elapsed_s"] = time.time() - t_start

                if step % cfg.log_every == 0 or step == cfg.steps:
                    nats, count = counters["log_nats"], counters["log_count"]
                    dt = max(counters["elapsed_s"] - counters["log_start_s"], 1e-9)
                    loss = nats / max(count, 1.0)
                    last_train = {"split": "train", "step": step, "tokens": counters["tokens"], "loss": loss,
                                  "bits": loss / LN2, "lr": lr, "tokens_per_s": count / dt,
                                  "time_s": counters["elapsed_s"], "windows": counters["windows"],
                                  "precision": self.precision.name}
                    self.metrics.write(last_train)
                    bar.set_postfix(loss=f"{loss:.3f}", bits=f"{loss / LN2:.3f}", tok_s=f"{count / dt:.0f}")
                    counters.update(log_nats=0.0, log_count=0.0, log_start_s=counters["elapsed_s"])
                bar.update(1)
                if self.on_step is not None:
                    self.on_step(step)

                if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                    last_valid = self._validate(model, counters) or last_valid
                stopping = dist.broadcast_flag(stop.raised)
                if stopping or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0
                                and step < cfg.steps):
                    self._save(model, opt, stream, state, counters)
                if stopping:
                    interrupted = True
                    break
        bar.close()

        if not interrupted:
            self._save(model, opt, stream, state, counters)
            last_valid = self._validate(model, counters) or last_valid
        return {"steps": counters["step"], "tokens": counters["tokens"], "windows": counters["windows"],
                "wall_time_s": counters["elapsed_s"], "final_loss": counters["last_loss"], "train": last_train, "valid": last_valid,
                "interrupted": interrupted, "device": str(device), "world_size": dist.world_size,
                "precision": self.precision.name}


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, disable=not enabled, dynamic_ncols=True, unit="step",
                mininterval=1.0)
