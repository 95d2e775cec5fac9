"""Synthetic run directories shaped exactly like docs/contracts.md section 2 (small, deterministic)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def results(domain="text", model="compressive", **kw) -> dict:
    base = {"domain": domain, "model": model, "preset": "cpu-longrange", "dataset": "longrange", "metric": "bpc",
            "value": 1.0, "split": "test", "params": 123_456, "params_non_embedding": 100_000,
            "tokens_seen": 50_000, "steps": 50, "wall_time_s": 42.0, "device": "cpu", "partial_data": False,
            "mem_len": 16, "cmem_len": 8 if model == "compressive" else 0, "compression_rate": 3,
            "compression": "conv", "compression_loss": "attention"}
    base.update(kw)
    return base


def make_run(root: Path, name: str, *, config: str = "[model]\nd_model = 32\n", metrics: list[dict] | None = None,
             analysis: dict[str, object] | None = None, **res) -> Path:
    """Write RUN_DIR = root/name with results.json (contract keys, overridable), config.toml, metrics.jsonl
    and analysis/ files: dict values become JSON, dicts of arrays under a name ending .npz become npz."""
    d = root / name
    (d / "analysis").mkdir(parents=True, exist_ok=True)
    (d / "results.json").write_text(json.dumps(results(**res)))
    (d / "config.toml").write_text(config)
    rows = metrics if metrics is not None else [
        {"split": "train", "step": s, "tokens": 100 * s, "loss": 2.0 - s / 100, "bits": (2.0 - s / 100) / np.log(2),
         "lr": 3e-4 * s / 50, "tokens_per_s": 1000.0, "time_s": float(s)} for s in range(0, 51, 10)]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for fname, payload in (analysis or {}).items():
        if fname.endswith(".npz"):
            np.savez(d / "analysis" / fname, **payload)
        else:
            (d / "analysis" / fname).write_text(json.dumps(payload))
    return d


def attention_stats(cmem=6, mem=12, window=12, layers=3, seed=0) -> dict:
    """Mean weight per key slot; each layer's row sums to 1 (a query's attention is a distribution)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(layers):
        w = rng.uniform(0.5, 1.5, cmem + mem + window)
        rows.append((w / w.sum()).tolist())
    return {"cmem_len": cmem, "mem_len": mem, "window": window, "n_layers": layers, "per_layer": rows}


def make_everything(root: Path) -> None:
    """One small run of every kind the report reads: text CT/TXL with analysis, an eval sweep, speech, rl."""
    lr = {"buckets": [{"lo": 0, "hi": 64, "n": 50, "bits": 2.0, "floor_bits": 1.0},
                      {"lo": 64, "hi": 2048, "n": 50, "bits": 3.0, "floor_bits": 1.0}],
          "overall_bits": 1.5, "entropy_floor": 1.1}
    rng = np.random.default_rng(0)
    tl = {"loss": rng.uniform(1, 5, 400).astype(np.float32), "token": np.arange(400), "position": np.arange(400),
          "train_count": rng.integers(0, 30_000, 400)}
    ct_config = "[train]\nupdate_every = 2\nupdate_every_after = 20\n"
    make_run(root, "text_ct", value=1.40, config=ct_config,
             analysis={"attention_stats.json": attention_stats(), "compression_losses.json": {"per_layer": [0.1, 0.3]},
                       "longrange.json": lr, "token_losses.npz": tl})
    make_run(root, "text_txl", model="transformerxl", value=1.45, mem_len=24,
             analysis={"longrange.json": {**lr, "overall_bits": 1.6}, "token_losses.npz": tl})
    make_run(root / "text_ct", "eval_cmem32", cmem_len=32, value=1.38, config=ct_config)   # an eval copy
    for model in ("compressive", "wavenet"):
        rows = [{"split": "valid", "step": s, "loss": 4.0 - s / 50, "lr": 1e-4} for s in range(0, 50, 10)]
        make_run(root, f"speech_{model}", domain="speech", model=model, dataset="synthetic-speech",
                 metric="nll_nats", value=3.1, metrics=rows)
    rows = [{"split": "train", "step": i, "frames": 100 * i, "episode_return": i / 10, "lr": 1e-4} for i in range(10)]
    make_run(root, "rl_c4", domain="rl", dataset="nonmatching", metric="return", compression_rate=4, value=0.9,
             metrics=rows)
