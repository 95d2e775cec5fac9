"""Train, evaluate and sample speech runs; every result lands in the run directory (docs/contracts.md, section 2).

    RUN_DIR/config.toml  metrics.jsonl (train loss per logged step, held-out NLL every eval_every steps)
    RUN_DIR/results.json (held-out NLL per sample in nats; bits as an extra)  checkpoints/latest.pt
    RUN_DIR/bad_files.json (files skipped under --skip-bad)  samples/*.wav
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from core.run import (DistContext, Trainer, atomic_write_json, atomic_write_text, dumps_toml, from_dict,
                      load_checkpoint, load_toml, resolve_device, to_dict, write_results)
from core.run.precision import resolve_precision
from speech.config import SpeechConfig
from speech.datasets import load_corpus
from speech.models import build_model, count_params
from speech.task import SpeechTask, evaluate, heldout_clips


def report_bad_files(corpus, run_dir: Path | None) -> None:
    """Print the files skipped under --skip-bad (and keep the list in RUN_DIR/bad_files.json)."""
    if not corpus.bad_files:
        return
    print(f"skipped {len(corpus.bad_files)} bad file(s):", file=sys.stderr)
    for path, reason in corpus.bad_files:
        print(f"  {path}: {reason}", file=sys.stderr)
    if run_dir is not None:
        atomic_write_json(run_dir / "bad_files.json", [{"path": p, "reason": r} for p, r in corpus.bad_files])


def results_record(cfg: SpeechConfig, model, corpus, ev: dict, split: str, fit: dict | None,
                   device: str, eval_seconds: float) -> dict:
    """results.json for one evaluation (contract keys + speech extras)."""
    total, non_emb = count_params(model)
    t = cfg.model.transformer
    wavenet = cfg.model.kind == "wavenet"
    return {
        "domain": "speech", "model": cfg.model.kind, "preset": cfg.preset, "dataset": cfg.data.dataset,
        "metric": "nll_nats", "value": ev["loss"], "bits_per_sample": ev["bits"], "split": split,
        "samples_scored": ev["count"], "params": total, "params_non_embedding": non_emb,
        "tokens_seen": (fit or {}).get("tokens", 0), "steps": (fit or {}).get("steps", 0),
        "wall_time_s": (fit or {}).get("wall_time_s", 0.0), "device": device,
        "precision": resolve_precision(cfg.train.precision, device).name,
        "partial_data": bool(cfg.data.max_files or eval_seconds or corpus.bad_files),
        "mem_len": 0 if wavenet else t.mem_len, "cmem_len": 0 if wavenet else t.cmem_len,
        "compression_rate": 0 if wavenet or t.cmem_len == 0 else int(max(t.compression_rates)),
        "compression": "none" if wavenet or t.cmem_len == 0 else t.compression,
        "compression_loss": "none" if wavenet or t.cmem_len == 0 else t.compression_loss,
        "window": cfg.model.window, "sample_rate": cfg.data.sample_rate,
        "receptive_field": cfg.model.wavenet.receptive_field if wavenet else None,
        "eval_seconds": eval_seconds, "valid_nll_nats": ((fit or {}).get("valid") or {}).get("loss"),
        "bad_files": len(corpus.bad_files),
    }


def train(cfg: SpeechConfig, run_dir: str | Path, resume: bool = False) -> dict:
    """Train with core.run.Trainer, then score the eval split. Returns the results.json record."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.toml"
    if not resume and (run_dir / "checkpoints" / "latest.pt").exists():
        raise ValueError(f"{run_dir} already holds a run (checkpoints/latest.pt); use --resume to continue it "
                         "or choose another --run-dir")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    corpus = load_corpus(cfg.data, splits=("train", "valid", cfg.eval.split) if cfg.eval.split != "valid"
                         else ("train", "valid"))
    report_bad_files(corpus, run_dir)
    torch.manual_seed(cfg.train.seed)  # the model's initial weights
    model = build_model(cfg.model)
    dist = DistContext.from_env(cfg.train.device)
    task = SpeechTask(cfg, corpus, model)
    # config.toml is written only once the checkpoint is accepted: a refused --resume changes nothing.
    fit = Trainer(task, cfg.train, run_dir, dist=dist).fit(
        resume=resume, on_ready=lambda: atomic_write_text(config_path, dumps_toml(to_dict(cfg))))
    if not dist.is_main:
        return {}
    ev_clips = heldout_clips(corpus.splits[cfg.eval.split], corpus.sample_rate, cfg.eval.max_seconds)
    ev = evaluate(model, ev_clips, cfg.model.window, cfg.eval.batch_size, cfg.data.reset_at_file_boundary,
                  dist.device, cfg.train.precision)
    record = results_record(cfg, model, corpus, ev, cfg.eval.split, fit, str(dist.device), cfg.eval.max_seconds)
    record["interrupted"] = fit["interrupted"]
    write_results(run_dir, record)
    return record


def load_run(run_dir: str | Path, device: str = "auto", overrides: list[str] = ()):
    """(cfg, model on device, checkpoint counters) from RUN_DIR/config.toml + checkpoints/latest.pt."""
    from core.run import apply_overrides

    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise ValueError(f"{run_dir}: not a speech run directory (no config.toml); train one with "
                         "`ctbench speech train --preset NAME --run-dir DIR`")
    cfg = from_dict(SpeechConfig, apply_overrides(load_toml(run_dir / "config.toml"), list(overrides)))
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    model = build_model(cfg.model)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    model.load_state_dict(ckpt["model"])
    dev = (resolve_device(device, what="--device") if device != "auto"
           else resolve_device(cfg.train.device, what=f"{run_dir / 'config.toml'}: train.device"))
    return cfg, model.to(dev).eval(), {k: ckpt.get(k) for k in ("step", "tokens", "elapsed_s")}


def eval_run(run_dir: str | Path, split: str | None = None, max_seconds: float | None = None, device: str = "auto",
             overrides: list[str] = ()) -> dict:
    """Score a trained run on a split; rewrites results.json (keeping the training counters)."""
    cfg, model, counters = load_run(run_dir, device, overrides)
    split = split or cfg.eval.split
    max_seconds = cfg.eval.max_seconds if max_seconds is None else max_seconds
    corpus = load_corpus(cfg.data, splits=(split,))
    report_bad_files(corpus, None)
    dev = next(model.parameters()).device
    clips = heldout_clips(corpus.splits[split], corpus.sample_rate, max_seconds)
    start = time.perf_counter()
    ev = evaluate(model, clips, cfg.model.window, cfg.eval.batch_size, cfg.data.reset_at_file_boundary, dev,
                  cfg.train.precision)
    samples_per_s = ev["count"] / max(time.perf_counter() - start, 1e-9)
    fit = {"steps": counters["step"], "tokens": counters["tokens"], "wall_time_s": counters["elapsed_s"]}
    old = Path(run_dir) / "results.json"
    if old.is_file():
        from core.run import read_json
        fit["valid"] = {"loss": read_json(old).get("valid_nll_nats")}
    record = {**results_record(cfg, model, corpus, ev, split, fit, str(dev), max_seconds),
              "eval_samples_per_s": samples_per_s}
    write_results(run_dir, record)
    return record


def generate(model, n_samples: int, prime: torch.Tensor, seed: int, temperature: float = 1.0,
             window: int = 512, naive: bool = False) -> torch.Tensor:
    """prime: [B, P] -> [B, n_samples] mu-law classes, from the model's own generator (speech.generate)."""
    from speech import generate as g

    gen = torch.Generator().manual_seed(seed)
    if model.kind == "wavenet":
        fn = g.wavenet_generate_naive if naive else g.wavenet_generate_cached
        return fn(model.net, n_samples, prime, gen, temperature)
    return g.transformer_generate(model, n_samples, prime, gen, window, temperature, cached=not naive)


def sample_run(run_dir: str | Path, seconds: float, out: str | Path | None = None, seed: int = 0,
               temperature: float = 1.0, prime_seconds: float = 0.0, device: str = "auto",
               naive: bool = False) -> Path:
    """Generate `seconds` of audio from a trained run and write a 16-bit WAV (default RUN_DIR/samples/)."""
    from speech.audio import write_wav
    from speech.generate import default_prime
    from speech.mulaw import mu_law_decode

    if seconds <= 0:
        raise ValueError(f"--seconds {seconds}: must be > 0")
    cfg, model, _ = load_run(run_dir, device)
    dev = next(model.parameters()).device
    rate = cfg.data.sample_rate
    if prime_seconds > 0:  # start from real held-out audio: the first clips of the eval split
        corpus = load_corpus(cfg.data, splits=(cfg.eval.split,))
        prime = torch.cat(corpus.splits[cfg.eval.split])[: int(prime_seconds * rate)][None].to(dev).long()
    else:
        ctx = model.context_len if model.kind == "wavenet" else 1
        prime = default_prime(1, ctx, dev)
    n = int(round(seconds * rate))
    with torch.no_grad():
        toks = generate(model, n, prime, seed, temperature, cfg.model.window, naive)
    audio = mu_law_decode(toks[0].cpu()).numpy()
    if prime_seconds > 0:
        audio = np.concatenate([mu_law_decode(prime[0].cpu()).numpy(), audio])
    out = Path(out) if out else Path(run_dir) / "samples" / f"sample_seed{seed}.wav"
    return write_wav(out, audio, rate)
