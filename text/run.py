"""The text entry points behind `ctbench text train|eval|sample` (text/cli.py parses the arguments)."""
from __future__ import annotations

import dataclasses
import io
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from core.run import (ConfigError, DistContext, Trainer, atomic_write_json, atomic_write_text, build_config,
                      dumps_toml, from_dict, load_checkpoint, load_config, load_toml, read_json, resolve_device,
                      to_dict, write_results)
from core.run.io import atomic_write_bytes
from core.run.precision import resolve_precision

from .config import TextConfig
from .evaluate import LN2, EvalResult, evaluate
from .task import TextTask, fingerprint, load_dataset

DOMAIN = "text"
PARTIAL_EVAL = "partial_eval"      # RUN_DIR/partial_eval/: results of `eval --max-windows N`


# ---------------------------------------------------------------------------------------- configs
def resolve_config(preset: str | None, overrides: list[str], run_dir: Path | None, resume: bool) -> TextConfig:
    """The preset (+ overrides), or on --resume without --preset the run's own config.toml."""
    saved = run_dir / "config.toml" if run_dir else None
    if preset is None:
        if resume and saved and saved.exists():
            return read_run_config(run_dir, overrides)
        raise ConfigError("--preset NAME is required (or --resume with a --run-dir holding config.toml)")
    cfg = load_config(TextConfig, DOMAIN, preset, overrides)
    if not cfg.preset:
        cfg = from_dict(TextConfig, {**to_dict(cfg), "preset": Path(preset).stem})
    return cfg


def read_run_config(run_dir: Path, overrides: list[str] = ()) -> TextConfig:
    path = Path(run_dir) / "config.toml"
    if not path.exists():
        raise ConfigError(f"{path}: not found; is {run_dir} a text run directory (made by `ctbench text train`)?")
    return build_config(TextConfig, load_toml(path), list(overrides), str(path))


def metric_for(ds, split: str, result: EvalResult, whole_split: bool) -> tuple[str, float, dict]:
    """The headline metric: BPC for bytes, perplexity for words, word-level perplexity for subwords
    (exp(total nats / whitespace words), only when the whole split was scored), else bits per token."""
    extras = {"loss_nats": result.loss, "bits_per_token": result.loss / LN2, "tokens_scored": result.count}
    if ds.unit == "byte":
        return "bpc", result.loss / LN2, extras
    if ds.unit == "word":
        return "ppl", math.exp(result.loss), extras
    words = ds.word_count(split)
    if ds.unit == "subword" and words and whole_split:
        extras["words"] = words
        extras["token_ppl"] = math.exp(result.loss)
        return "word_ppl", math.exp(result.nats / words), extras
    return "bits_per_token", result.loss / LN2, extras


def base_results(cfg: TextConfig, task: TextTask, ds, model) -> dict:
    mem_len, cmem_len = model.mem_sizes
    return {"domain": DOMAIN, "model": cfg.model.name, "preset": cfg.preset, "dataset": cfg.data.dataset,
            **task.params(), "partial_data": bool(ds.partial), "mem_len": mem_len, "cmem_len": cmem_len,
            "compression_rate": cfg.model.compression_rate if cmem_len else 0,
            "compression": cfg.model.compression if cmem_len else "none",
            "compression_loss": cfg.model.compression_loss if cmem_len else "none",
            "window": cfg.data.window, "unit": ds.unit, "vocab_size": ds.vocab.size,
            "same_length": cfg.model.same_length, "clamp_len": cfg.model.clamp_len}


# ---------------------------------------------------------------------------------------- train
def train(preset: str | None, overrides: list[str], run_dir: str | None, resume: bool = False,
          data_dir: str | None = None, progress: bool | None = None) -> dict:
    if data_dir:
        overrides = [*overrides, f"data.data_dir={data_dir}"]
    if progress is not None:
        overrides = [*overrides, f"train.progress={str(progress).lower()}"]
    run_path = Path(run_dir) if run_dir else None
    cfg = absolute_paths(resolve_config(preset, overrides, run_path, resume))
    run_path = run_path or Path("runs") / DOMAIN / cfg.preset
    if not resume and (run_path / "checkpoints" / "latest.pt").exists():
        raise ConfigError(f"{run_path} already holds a run; pass --resume to continue it or another --run-dir")
    dist = DistContext.from_env(cfg.train.device)
    try:
        if dist.is_main:  # prepare once; the other ranks wait, then read the cache
            ds = load_dataset(cfg)
        dist.barrier()
        if not dist.is_main:
            ds = load_dataset(cfg)
        task = TextTask(cfg, ds)
        # config.toml is written only once the checkpoint (model, vocabulary, stream layout, processes)
        # has been accepted: a refused --resume leaves the run directory as it was
        write_config = lambda: atomic_write_text(run_path / "config.toml", dumps_toml(to_dict(cfg)))
        summary = Trainer(task, cfg.train, run_path, dist).fit(resume=resume, on_ready=write_config)
        results = None
        if dist.is_main:
            valid = summary["valid"] or {"loss": float("nan"), "count": 0}
            r = EvalResult(nats=valid["loss"] * valid["count"], count=valid["count"], windows=0)
            metric, value, extras = metric_for(ds, "valid", r, whole_split=cfg.eval.valid_windows == 0)
            results = {**base_results(cfg, task, ds, task.model), "metric": metric, "value": value,
                       "split": "valid", **extras, "tokens_seen": summary["tokens"], "steps": summary["steps"],
                       "wall_time_s": summary["wall_time_s"], "device": device_name(dist.device),
                       "precision": summary["precision"],
                       "world_size": dist.world_size, "final_train_loss": summary["final_loss"],
                       "interrupted": summary["interrupted"], "source": "train (validation subset)"}
            write_results(run_path, results)
        return {"run_dir": str(run_path), "summary": summary, "results": results, "model": task.model}
    finally:
        dist.close()


def absolute_paths(cfg: TextConfig) -> TextConfig:
    """The config with its data paths (data_dir, source, books:DIR) made absolute, so that eval and
    sample find the data from any working directory."""
    d = cfg.data
    absolute = lambda p: str(Path(p).expanduser().resolve()) if p else p
    kind, sep, folder = d.dataset.partition(":")
    data = dataclasses.replace(d, data_dir=absolute(d.data_dir), source=absolute(d.source),
                               dataset=f"{kind}:{absolute(folder)}" if sep else d.dataset)
    return dataclasses.replace(cfg, data=data)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


# ---------------------------------------------------------------------------------------- load a run
def load_run(run_dir: str | Path, device: torch.device, overrides: list[str] = ()):
    """(cfg, ds, task) with the latest checkpoint's weights, checked against the run's model and vocabulary."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir, overrides)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    ds = load_dataset(cfg)
    task = TextTask(cfg, ds)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "latest.pt", fingerprint(cfg, ds))
    task.model.load_state_dict(ckpt["model"])
    task.model.to(device).eval()
    return cfg, ds, task, ckpt


# ---------------------------------------------------------------------------------------- eval
def evaluate_run(run_dir: str, split: str | None = None, mem_len: int | None = None,
                 cmem_len: int | None = None, save_analysis: bool = False, dynamic_eval: bool = False,
                 batch_size: int | None = None, max_windows: int = 0, device: str = "auto",
                 data_dir: str | None = None, progress: bool | None = None, same_length: bool | None = None,
                 clamp_len: int | None = None) -> dict:
    """Score a split and write RUN_DIR/results.json (with max_windows: RUN_DIR/partial_eval/results.json,
    the headline stays). Arguments are the `ctbench text eval` flags; None: the run's own setting.
    progress None: a bar when stderr is a terminal."""
    for flag, value, low in (("--batch-size", batch_size, 1), ("--mem-len", mem_len, 0),
                             ("--cmem-len", cmem_len, 0), ("--max-windows", max_windows, 0)):
        if value is not None and value < low:
            raise ConfigError(f"{flag} must be >= {low}, got {value} (leave it out for the run's own setting)")
    if clamp_len is not None and clamp_len != -1 and clamp_len < 1:
        raise ConfigError(f"--clamp-len must be -1 (no clamp) or >= 1, got {clamp_len}")
    dev = resolve_device(device, what="--device")
    overrides = [f"data.data_dir={data_dir}"] if data_dir else []
    overrides += [] if same_length is None else [f"model.same_length={str(same_length).lower()}"]
    overrides += [] if clamp_len is None else [f"model.clamp_len={clamp_len}"]
    cfg, ds, task, ckpt = load_run(run_dir, dev, overrides)
    split = split or cfg.eval.split
    mem_len = cfg.eval.mem_len if mem_len is None else mem_len
    cmem_len = cfg.eval.cmem_len if cmem_len is None else cmem_len
    model = task.model.with_memory_sizes(mem_len=None if mem_len < 0 else mem_len,
                                         cmem_len=None if cmem_len < 0 else cmem_len)
    tokens = ds.split(split)
    longrange = cfg.data.dataset.startswith("longrange")   # longrange, longrange-topic
    remention = not longrange and not max_windows   # real text scored whole: re-mention table (text/remention.py)
    t0 = time.time()
    r = evaluate(model, tokens, window=cfg.eval.window or cfg.data.window, device=dev,
                 batch_size=batch_size or cfg.eval.batch_size, max_windows=max_windows,
                 doc_starts=ds.doc_starts(split) if cfg.data.reset_at_doc else None,
                 collect=save_analysis or longrange or remention, attention=save_analysis,
                 dynamic_lr=cfg.eval.dynamic_lr if dynamic_eval else 0.0, precision=cfg.train.precision,
                 progress=sys.stderr.isatty() if progress is None else progress)
    whole = r.extras["scored_fraction"] > 0.99 and not max_windows
    metric, value, extras = metric_for(ds, split, r, whole)
    results = {**base_results(cfg, task, ds, model), "metric": metric, "value": value, "split": split, **extras,
               "tokens_seen": int(ckpt["tokens"]), "steps": int(ckpt["step"]),
               "wall_time_s": float(ckpt["elapsed_s"]), "eval_time_s": time.time() - t0,
               "eval_tokens_per_s": r.extras["tokens_per_s"],
               "device": device_name(dev), "precision": resolve_precision(cfg.train.precision, dev).name,
               "dynamic_eval": dynamic_eval, "scored_fraction": r.extras["scored_fraction"],
               "train_mem_len": cfg.model.mem_len, "train_cmem_len": cfg.model.cmem_len, "source": "eval",
               "max_windows": max_windows}
    # a partial score never replaces the headline results.json (nor the analysis of a whole split)
    out = Path(run_dir) / PARTIAL_EVAL if max_windows else Path(run_dir)
    if save_analysis:
        write_analysis(out / "analysis", r, ds)
    if longrange:
        from .data.longrange import annotate, bucket_report
        report = bucket_report(r.token_loss, r.position, annotate(ds, split),
                               n_name=cfg.data.longrange.n_name)
        report.update(split=split, model=cfg.model.name, preset=cfg.preset, mem_len=results["mem_len"],
                      cmem_len=results["cmem_len"], window=cfg.data.window)
        atomic_write_json(out / "analysis" / "longrange.json", report)
        results["longrange"] = {"remention_bits": report["remention"]["bits"],
                                "buckets": [{k: b[k] for k in ("lo", "hi", "tokens", "bits")} for b in report["buckets"]]}
    if remention and whole:
        from .remention import report as remention_report, summary as remention_summary
        rep = remention_report(ds, split, r.token_loss, r.position, cfg.eval.window or cfg.data.window,
                               results["mem_len"], results["cmem_len"], results["compression_rate"])
        if rep is not None:   # None: no words in this vocabulary
            rep.update(dataset=cfg.data.dataset, split=split, model=cfg.model.name, preset=cfg.preset)
            atomic_write_json(out / "analysis" / "remention.json", rep)
            results["remention"] = remention_summary(rep)
    results["results_file"] = str(write_results(out, results))
    return results


def write_analysis(folder: Path, r: EvalResult, ds) -> None:
    arrays = {"loss": r.token_loss, "token": r.token, "position": r.position}
    counts = ds.train_counts
    if ds.unit == "word" and counts is not None:
        arrays["train_count"] = np.asarray(counts, dtype=np.int64)[r.token]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(folder / "token_losses.npz", buf.getvalue())
    if r.attention is not None:
        atomic_write_json(folder / "attention_stats.json", r.attention)
    if r.attention_windows is not None:
        buf = io.BytesIO()
        np.savez_compressed(buf, weight=r.attention_windows)
        atomic_write_bytes(folder / "attention_windows.npz", buf.getvalue())
    if r.compression_losses is not None:
        atomic_write_json(folder / "compression_losses.json", {"per_layer": r.compression_losses})


# ---------------------------------------------------------------------------------------- sample
def sample(run_dir: str, prompt: str, tokens: int = 200, temperature: float = 1.0, seed: int = 0,
           device: str = "auto", data_dir: str | None = None, out=None) -> str:
    """Feed the prompt through the model window by window, then generate one token at a time, the
    memory carrying everything seen so far (streams the text to `out` as it goes)."""
    out = out or sys.stdout
    dev = resolve_device(device, what="--device")
    cfg, ds, task, _ = load_run(run_dir, dev, [f"data.data_dir={data_dir}"] if data_dir else [])
    if temperature <= 0:
        raise ConfigError(f"--temperature must be > 0, got {temperature}")
    ids = ds.vocab.encode(prompt)
    if not ids:
        raise ConfigError("--prompt encodes to no tokens; give some text")
    g = torch.Generator(device="cpu").manual_seed(seed)
    generated: list[int] = []
    shown = ""
    for nxt in generate_tokens(task.model, ids, tokens, temperature, g, cfg.data.window):
        generated.append(nxt)
        text = ds.vocab.decode(generated)
        out.write(text[len(shown):])
        out.flush()
        shown = text
    out.write("\n")
    return ds.vocab.decode(generated)


@torch.inference_mode()
def generate_tokens(model, ids: list[int], n: int, temperature: float, generator: torch.Generator, window: int,
                    cached: bool = True):
    """Yields n token ids sampled after the prompt ids: the prompt is read window by window, then each
    token is one step of the model, the memory carrying everything seen so far. cached: the memories'
    keys and values are kept across steps (core/cache.py; the same samples, faster); False recomputes
    them every step (the reference)."""
    dev = next(model.parameters()).device
    state = model.init_state(1, dev)
    cache = model.init_cache(state) if cached else None
    context = torch.tensor([ids], dtype=torch.long, device=dev)
    for s in range(0, context.shape[1] - 1, window):
        chunk = context[:, s:min(s + window, context.shape[1] - 1)]
        _, state, cache = model.next_token_logprobs(chunk, state, cache)
    last = context[:, -1:]
    for _ in range(n):
        logp, state, cache = model.next_token_logprobs(last, state, cache)
        probs = torch.softmax(logp.float().cpu() / temperature, dim=-1)
        nxt = int(torch.multinomial(probs[0], 1, generator=generator))
        yield nxt
        last = torch.tensor([[nxt]], dtype=torch.long, device=dev)


# ---------------------------------------------------------------------------------------- compare
def compare_table(run_dirs: list[str]) -> str:
    """Markdown table of evaluated runs; for longrange, bits per token on re-mentions by distance."""
    rows, buckets = [], None
    for d in run_dirs:
        res = read_json(Path(d) / "results.json")
        lr_path = Path(d) / "analysis" / "longrange.json"
        lr = read_json(lr_path) if lr_path.exists() else None
        if lr is not None and buckets is None:
            buckets = [(b["lo"], b["hi"]) for b in lr["buckets"]]
        rows.append((res, lr))
    head = ["run", "model", "mem", "cmem", "c", f"{rows[0][0]['metric']} ({rows[0][0]['split']})"]
    if buckets:
        head += ["re-mentions"] + [f"d {lo}-{hi or ''}" for lo, hi in buckets] + ["floor (all)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    fmt = lambda v: "–" if v is None else f"{v:.3f}"
    for d, (res, lr) in zip(run_dirs, rows):
        cells = [Path(d).name, res["model"], str(res["mem_len"]), str(res["cmem_len"]),
                 str(res["compression_rate"]), fmt(res["value"])]
        if buckets:
            cells += [fmt(lr["remention"]["bits"])] + [fmt(b["bits"]) for b in lr["buckets"]] \
                + [fmt(lr["overall"]["floor_entropy_bits"])] if lr else ["–"] * (len(buckets) + 2)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
