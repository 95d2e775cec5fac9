"""The paper's figures rebuilt from run directories (PNG, matplotlib's Agg canvas).

Each figure has a data function (a pandas frame the tests check for numbers) and a plot function
(a matplotlib Figure the tests check for labels). Figures are built on `matplotlib.figure.Figure`
directly, never through pyplot, so no global figure state or GUI backend is involved.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis import paper
from analysis.runs import Run, RunFormatError, flat_config, is_number
from analysis.tables import MissingInput, atomic_write

REGIONS = ("compressed memory", "memory", "window")
REGION_COLOURS = {"compressed memory": "#2ca02c", "memory": "#1f77b4", "window": "#d62728"}


@dataclass
class Plot:
    name: str           # file stem: results/figures/<name>.png
    title: str
    figure: Figure
    notes: list[str] = field(default_factory=list)

    def write(self, out_dir: Path) -> Path:
        path = out_dir / f"{self.name}.png"
        buf = io.BytesIO()
        FigureCanvasAgg(self.figure)
        self.figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        atomic_write(path, buf.getvalue())
        return path


# --------------------------------------------------------------------------- Figure 2
def attention_buckets(stats: dict, n_buckets: int = 6, path: Path | None = None) -> pd.DataFrame:
    """attention_stats.json -> the paper's Figure 2 data: each region ([cmem; mem; window], oldest first)
    cut into `n_buckets` bins of equal width; `weight` is the attention mass a bin receives (the sum of its
    slots' mean weights, so bins over all regions sum to ~1), averaged over layers; `stderr` is the standard
    error over layers."""
    where = f"{path}: " if path else ""
    try:
        sizes = [int(stats["cmem_len"]), int(stats["mem_len"]), int(stats["window"])]
        per_layer = np.asarray(stats["per_layer"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise RunFormatError(f"{where}attention_stats.json lacks or mangles {err} (need cmem_len, mem_len, "
                             "window, per_layer)") from None
    if per_layer.ndim != 2 or per_layer.shape[1] != sum(sizes):
        raise RunFormatError(f"{where}per_layer has shape {per_layer.shape}, expected [n_layers, "
                             f"{sum(sizes)}] = cmem {sizes[0]} + mem {sizes[1]} + window {sizes[2]}")
    rows, start, index = [], 0, 1
    n_layers = per_layer.shape[0]
    for region, size in zip(REGIONS, sizes):
        block = per_layer[:, start:start + size]
        start += size
        if size == 0:      # e.g. a TransformerXL has no compressed memory
            continue
        for part, chunk in enumerate(np.array_split(np.arange(size), min(n_buckets, size))):
            mass = block[:, chunk].sum(axis=1)                          # [L]
            sem = mass.std(ddof=1) / np.sqrt(n_layers) if n_layers > 1 else 0.0
            rows.append({"bucket": index, "region": region, "part": part + 1, "slots": len(chunk),
                         "weight": float(mass.mean()), "stderr": float(sem)})
            index += 1
    return pd.DataFrame(rows)


def _pick(runs: list[Run], limit: int) -> list[Run]:
    """Compressive runs first (they are the figure's subject), then the others, at most `limit`."""
    return sorted(runs, key=lambda r: (r.model != "compressive", str(r.path)))[:limit]


def figure2(runs: list[Run], n_buckets: int = 6) -> Plot:
    # an LSTM has no attention to plot, whatever its evaluation wrote
    with_stats = [r for r in runs if r.analysis_file("attention_stats.json") and r.model != "lstm"]
    if not with_stats:
        raise MissingInput("Figure 2 needs analysis/attention_stats.json (ctbench text eval --run DIR --save-analysis)")
    chosen = _pick(with_stats, 4)
    fig = Figure(figsize=(7.5, 2.8 * len(chosen)), layout="constrained")
    for i, r in enumerate(chosen):
        df = attention_buckets(r.analysis_json("attention_stats.json"), n_buckets, r.analysis_file("attention_stats.json"))
        ax = fig.add_subplot(len(chosen), 1, i + 1)
        for region in REGIONS:
            d = df[df.region == region]
            if d.empty:
                continue
            ax.bar(d.bucket, d.weight, yerr=d.stderr, color=REGION_COLOURS[region], label=region, capsize=2)
        ax.set_xlabel("bucket (oldest to newest: compressed memory, memory, window)")
        ax.set_ylabel("average attention weight")
        ax.set_title(f"{r.label} on {r.dataset} ({r.path.name})", fontsize=9)
        ax.set_xticks(df.bucket)
        ax.legend(fontsize=8)
    fig.suptitle("Figure 2: attention by position (mean over layers, 1-sigma s.e.)", fontsize=10)
    return Plot("figure2_attention", "Figure 2: average attention weight by position", fig, [paper.FIGURE2_NOTE])


# --------------------------------------------------------------------------- Supplementary Figure 6
def compressibility_frame(runs: list[Run]) -> pd.DataFrame:
    rows = []
    for r in runs:
        data = r.analysis_json("compression_losses.json")
        if data is None:
            continue
        per_layer = data.get("per_layer") if isinstance(data, dict) else None
        if not isinstance(per_layer, list) or not all(is_number(v) for v in per_layer):
            raise RunFormatError(f"{r.analysis_file('compression_losses.json')}: expected "
                                 '{"per_layer": [float, ...]}')
        rows += [{"run": r.path.name, "label": f"{r.label}, {r.dataset}", "layer": i + 1, "loss": float(v)}
                 for i, v in enumerate(per_layer)]
    return pd.DataFrame(rows, columns=["run", "label", "layer", "loss"])


def layer_compressibility(runs: list[Run]) -> Plot:
    df = compressibility_frame(runs)
    if df.empty:
        raise MissingInput("layer compressibility needs analysis/compression_losses.json from a Compressive "
                           "Transformer eval with --save-analysis")
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for (run, label), d in df.groupby(["run", "label"], sort=True):
        ax.plot(d.layer, d.loss, marker="o", label=f"{label} ({run})")
    if (df.loss > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("attention-reconstruction loss")
    ax.set_title("Layer compressibility (paper: Supplementary Figure 6)", fontsize=10)
    ax.legend(fontsize=7)
    return Plot("figure6_compressibility", "Supplementary Figure 6: compression loss per layer", fig,
                ["paper: first layer most compressible, no clear trend with depth; word-level loss ~10x character-level"])


# --------------------------------------------------------------------------- Figure 3
_PERIOD_KEYS = ("update_every", "update_period", "update_freq", "update_frequency", "accum_steps",
                "grad_accum", "windows_per_update")


def _config_schedule(run: Run) -> tuple[int | None, int | None, str]:
    """(start step, period) of the update-frequency schedule from config.toml; keys matched loosely
    because the schedule is the trainer's, e.g. optim.update_every=4 with optim.update_every_after=60000."""
    flat = {k: v for k, v in flat_config(run.config).items() if is_number(v)}
    period = start = None
    for k, v in flat.items():
        leaf = k.rsplit(".", 1)[-1]
        if leaf in _PERIOD_KEYS:
            period = int(v)
        elif "update" in leaf and any(w in leaf for w in ("after", "start", "from", "begin")):
            start = int(v)
    return start, period, "config.toml"


def schedule_frame(run: Run) -> tuple[pd.DataFrame, str]:
    """metrics.jsonl train lines -> [step, lr, update_every]; update_every from the metrics when logged,
    else rebuilt from the config's schedule (1 before its start step, its period after)."""
    m = run.metrics
    if m.empty or "lr" not in m or "step" not in m:
        raise MissingInput(f"{run.path}: metrics.jsonl has no step/lr lines")
    if "split" in m:
        m = m[m["split"] == "train"]
    cols = ["step", "lr"] + (["bits"] if "bits" in m else [])
    df = m[cols].dropna(subset=["step", "lr"]).copy()
    key = next((k for k in _PERIOD_KEYS if k in m.columns), None)
    if key is not None:
        df["update_every"] = m.loc[df.index, key].ffill().fillna(1).to_numpy()
        source = f"metrics.jsonl field {key!r}"
    else:
        start, period, source = _config_schedule(run)
        if period is None and "windows" in m:
            # measured: windows consumed per parameter update between two logged steps
            w = m.loc[df.index, "windows"].astype(float)
            df["update_every"] = (w.diff() / df["step"].diff()).bfill().fillna(1).to_numpy()
            source = "metrics.jsonl windows / steps between logged lines"
        elif period is None:
            df["update_every"] = 1
            source = "no update-frequency field in metrics.jsonl or config.toml: constant 1"
        else:
            start = start or 0
            df["update_every"] = np.where(df["step"] >= start, period, 1)
            source = f"config.toml (every {period} windows from step {start})"
    return df.sort_values("step").reset_index(drop=True), source


def schedule_label(run: Run) -> str:
    start, period, _ = _config_schedule(run)
    return "1 window per update" if not period or period == 1 else f"every {period} windows from step {start or 0}"


def figure3(runs: list[Run]) -> Plot:
    """Top: the learning rate and windows per update of one run (one with a reduced update frequency if
    there is one). Bottom, as in the paper's Figure 3: training bits of that model under each schedule run."""
    cands = [r for r in runs if not r.metrics.empty and "lr" in r.metrics and r.domain in ("text", "")]
    if not cands:
        raise MissingInput("Figure 3 needs a text training run whose metrics.jsonl logs lr")
    run = min(cands, key=lambda r: (schedule_label(r) == "1 window per update", r.model != "compressive", str(r.path)))
    df, source = schedule_frame(run)
    peers = [r for r in cands if r.dataset == run.dataset and r.model == run.model
             and r.results.get("compression") == run.results.get("compression")
             and r.results.get("compression_loss") == run.results.get("compression_loss")]
    with_loss = "bits" in df and df["bits"].notna().any()
    fig = Figure(figsize=(6.5, 6.0 if with_loss else 3.6), layout="constrained")
    ax = fig.add_subplot(2 if with_loss else 1, 1, 1)
    ax.plot(df.step, df.lr, color="#1f77b4", label="learning rate")
    ax.set_xlabel("training step")
    ax.set_ylabel("learning rate", color="#1f77b4")
    ax2 = ax.twinx()
    ax2.step(df.step, df.update_every, where="post", color="#d62728", label="windows per update")
    ax2.set_ylabel("windows per parameter update", color="#d62728")
    ax2.set_ylim(0, max(2, float(df.update_every.max())) + 1)
    ax.set_title(f"Update-frequency schedule vs learning rate ({run.label}, {run.path.name})", fontsize=9)
    if with_loss:   # the paper's Figure 3 plots training BPC under each schedule
        ax3 = fig.add_subplot(2, 1, 2, sharex=ax)
        for peer in sorted(peers, key=lambda r: str(r.path)):
            d = df if peer is run else schedule_frame(peer)[0]
            if "bits" in d:
                ax3.plot(d.step, d.bits, label=f"{schedule_label(peer)} ({peer.path.name})")
        ax3.set_xlabel("training step")
        ax3.set_ylabel("training bits per token")
        ax3.legend(fontsize=7)
    return Plot("figure3_schedule", "Figure 3: update-frequency schedule against the learning rate", fig,
                [f"update frequency from {source}",
                 "paper (Figure 3, Section 5.5.1): lowering the update frequency is preferable to decaying the lr"])


# --------------------------------------------------------------------------- Figure 4
def curves_frame(runs: list[Run], y: str, x: str, splits=("test", "valid", "train")) -> pd.DataFrame:
    """Learning curves [run, label, split, x, y] from metrics.jsonl: the first split in `splits` with two or
    more points (a curve), else the first with any."""
    rows = []
    for r in runs:
        m = r.metrics
        if m.empty or x not in m or y not in m:
            continue
        sizes = {s: int(((m["split"] == s) & m[y].notna()).sum()) if "split" in m else 0 for s in splits}
        split = next((s for s in splits if sizes[s] >= 2), None) or next((s for s in splits if sizes[s]), None)
        d = m[m["split"] == split] if split else m
        d = d[[x, y]].dropna()
        rows += [{"run": r.path.name, "label": r.label, "split": split, "x": float(a), "y": float(b)}
                 for a, b in zip(d[x], d[y])]
    return pd.DataFrame(rows, columns=["run", "label", "split", "x", "y"])


def figure4(runs: list[Run]) -> Plot:
    df = curves_frame([r for r in runs if r.domain == "speech"], "loss", "step")
    if df.empty:
        raise MissingInput("Figure 4 needs speech runs with metrics.jsonl (ctbench speech train ...)")
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for (run, label, split), d in df.groupby(["run", "label", "split"], sort=True, dropna=False):
        ax.plot(d.x, d.y, marker=".", label=f"{label} ({split})")
    ax.set_xlabel("training step")
    ax.set_ylabel("NLL (nats per sample)")
    ax.set_title("Figure 4: speech modelling", fontsize=10)
    ax.legend(fontsize=8)
    return Plot("figure4_speech", "Figure 4: speech NLL against training steps", fig, [paper.SPEECH_NOTE])


# --------------------------------------------------------------------------- Figure 5
def rl_frame(runs: list[Run], window: int = 5) -> tuple[pd.DataFrame, str]:
    """RL learning curves: return (human-normalised where every run logs it) against frames, smoothed
    over `window` points, one row per logged point. `task` tells the settings apart (the environment and,
    where a run records it, its delay), so a short-delay check and the long-delay comparison never merge."""
    rl = [r for r in runs if r.domain == "rl" and not r.metrics.empty and "frames" in r.metrics]
    use_hn = bool(rl) and all("human_normalised" in r.metrics and r.metrics["human_normalised"].notna().any()
                              for r in rl)
    y = "human_normalised" if use_hn else "episode_return"
    rows = []
    for r in rl:
        if y not in r.metrics:
            continue
        d = r.metrics[["frames", y]].dropna().sort_values("frames")
        smooth = d[y].rolling(window, min_periods=1).mean()
        group = "LSTM" if r.model == "lstm" else f"c={r.results.get('compression_rate', '?')}"
        delay = r.results.get("delay")
        task = f"{r.dataset}, delay {delay}" if delay is not None else str(r.dataset)
        rows += [{"run": r.path.name, "task": task, "delay": delay if delay is not None else -1, "group": group,
                  "frames": float(f), "y": float(v)} for f, v in zip(d["frames"], smooth)]
    return pd.DataFrame(rows, columns=["run", "task", "delay", "group", "frames", "y"]), y


def figure5(runs: list[Run]) -> Plot:
    df, y = rl_frame(runs)
    if df.empty:
        raise MissingInput("Figure 5 needs rl runs whose metrics.jsonl logs frames and episode_return")
    tasks = df.sort_values(["delay", "task"]).task.unique().tolist()
    fig = Figure(figsize=(6.5 if len(tasks) == 1 else 4.2 * len(tasks), 3.8), layout="constrained")
    axes = fig.subplots(1, len(tasks), sharey=True, squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        for group, g in df[df.task == task].groupby("group", sort=True):
            # seeds of one compression rate: mean and spread on a common frame grid
            grid = np.linspace(g.frames.min(), g.frames.max(), 100)
            curves = np.stack([np.interp(grid, d.frames, d.y) for _, d in g.groupby("run")])
            mean = curves.mean(axis=0)
            line, = ax.plot(grid, mean, label=f"{group} ({len(curves)} run{'s' if len(curves) > 1 else ''})")
            if len(curves) > 1:
                ax.fill_between(grid, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.2)
        ax.set_xlabel("environment frames")
        ax.set_title("Figure 5: RL learning curves by compression rate" if len(tasks) == 1 else task, fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("human-normalised score" if y == "human_normalised" else "episode return")
    if len(tasks) > 1:
        fig.suptitle("Figure 5: RL learning curves by compression rate", fontsize=10)
    return Plot("figure5_rl", "Figure 5: RL return against frames by compression rate", fig, [paper.RL_NOTE])
