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

from analysis import paper, rules
from analysis.rules import at_trained_size
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
        """<name>.png (no software version or date in its metadata, so a rebuild is byte-identical) and
        <name>.md beside it: the title, the figure and its notes (what it shows, the paper's result)."""
        path = out_dir / f"{self.name}.png"
        buf = io.BytesIO()
        FigureCanvasAgg(self.figure)
        self.figure.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
        atomic_write(path, buf.getvalue())
        atomic_write(out_dir / f"{self.name}.md", self.markdown())
        return path

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", f"![{self.title}]({self.name}.png)", ""]
        return "\n".join(lines + [f"- {n}" for n in dict.fromkeys(self.notes)]) + "\n"


# --------------------------------------------------------------------------- Figure 2
def visible_queries(cmem: int, mem: int, window: int, same_length: bool = False) -> np.ndarray:
    """[cmem + mem + window]: how many of a full window's queries may attend to each key slot (core's
    attention_mask: causal inside the window; with same_length, query i sees only keys j > i)."""
    prefix = cmem + mem
    j = np.arange(prefix + window)[None, :]
    i = np.arange(window)[:, None]
    allowed = j <= prefix + i
    if same_length and prefix > 0:
        allowed &= j > i
    return allowed.sum(axis=0)


def attention_buckets(stats: dict, n_buckets: int = 6, path: Path | None = None,
                      same_length: bool = False, windows: np.ndarray | None = None) -> pd.DataFrame:
    """attention_stats.json -> Figure 2's data: each region ([cmem; mem; window], oldest first) cut into
    `n_buckets` bins of equal width; `weight` is the MEAN attention weight per slot of a bin (so a bin's size
    does not scale it), each slot's weight averaged over the queries that can see it (the file's per-slot
    means are over all of a window's queries, masked ones included: they are divided by the visible share),
    then averaged over layers. windows: attention_windows.npz's `weight` [W, K] (a window's mean over
    layers per slot, NaN where a slot did not exist yet); given, the frame also holds `per_window`, each
    bin's weight in each window where every slot of the bin existed (the memories fill during the first)."""
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
    if windows is not None and (windows.ndim != 2 or windows.shape[1] != sum(sizes)):
        raise RunFormatError(f"{where}attention_windows.npz: weight has shape {windows.shape}, expected "
                             f"[windows, {sum(sizes)}]")
    visible_share = sizes[2] / np.maximum(visible_queries(*sizes, same_length), 1)   # a slot no query sees: 0
    per_slot = (per_layer * visible_share).mean(axis=0)                               # [K]
    rows, start, index = [], 0, 1
    for region, size in zip(REGIONS, sizes):
        block = slice(start, start + size)
        start += size
        if size == 0:      # e.g. a TransformerXL has no compressed memory
            continue
        for part, chunk in enumerate(np.array_split(np.arange(size), min(n_buckets, size))):
            row = {"bucket": index, "region": region, "part": part + 1, "slots": len(chunk),
                   "weight": float(per_slot[block][chunk].mean())}
            if windows is not None:
                w = (windows[:, block][:, chunk] * visible_share[block][chunk]).mean(axis=1)
                row["per_window"] = w[~np.isnan(w)]
            rows.append(row)
            index += 1
    return pd.DataFrame(rows)


def _attention_windows(run: Run) -> np.ndarray | None:
    p = run.analysis_file("attention_windows.npz")
    if p is None:
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            return np.asarray(z["weight"], dtype=np.float64)
    except (ValueError, OSError, KeyError) as err:
        raise RunFormatError(f"{p}: unreadable ({err}); rerun eval with --save-analysis") from None


def figure2_frame(runs: list[Run], n_buckets: int = 6) -> pd.DataFrame:
    """One row per (dataset, bucket): the designated Compressive Transformer's mean weight per slot, mean
    and standard deviation over seeds (`seeds` of them; std NaN with one seed) and, where the runs saved
    their per-window record, the standard deviation over every window of every seed (`window_std`, over
    `windows` windows; NaN without the record)."""
    with_stats = [r for r in runs if r.analysis_file("attention_stats.json") and r.model != "lstm"]
    parts = []
    for ds, arm in rules.designated_ct(with_stats).items():
        per_seed = []
        for r in arm.by_seed.values():
            same = bool(flat_config(r.config).get("model.same_length", False))
            per_seed.append(attention_buckets(r.analysis_json("attention_stats.json"), n_buckets,
                                              r.analysis_file("attention_stats.json"), same, _attention_windows(r)))
        df = per_seed[0].drop(columns=["weight", "per_window"], errors="ignore")
        w = np.stack([d["weight"].to_numpy() for d in per_seed])
        df["weight"] = w.mean(axis=0)
        df["std"] = w.std(axis=0, ddof=1) if len(w) > 1 else np.nan
        df["seeds"] = len(w)
        pooled = ([np.concatenate([d["per_window"].iloc[b] for d in per_seed]) for b in range(len(df))]
                  if all("per_window" in d for d in per_seed) else [np.array([])] * len(df))
        df["window_std"] = [p.std(ddof=1) if len(p) > 1 else np.nan for p in pooled]
        df["windows"] = [len(p) for p in pooled]
        df.insert(0, "dataset", arm.first.short_dataset)
        df["runs"] = ", ".join(r.path.name for r in arm.by_seed.values())
        parts.append(df)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def figure2(runs: list[Run], n_buckets: int = 6) -> Plot:
    df = figure2_frame(runs, n_buckets)
    if df.empty:
        raise MissingInput("Figure 2 needs analysis/attention_stats.json of a Compressive Transformer "
                           "(ctbench text eval --run DIR --save-analysis)")
    datasets = list(dict.fromkeys(df.dataset))
    fig = Figure(figsize=(7.5, 2.6 * len(datasets)), layout="constrained")
    for i, ds in enumerate(datasets):
        d_ds = df[df.dataset == ds]
        ax = fig.add_subplot(len(datasets), 1, i + 1)
        for region in REGIONS:
            d = d_ds[d_ds.region == region]
            if d.empty:
                continue
            # the spread over windows (and seeds) where the runs recorded it, else over seeds alone
            spread = d["window_std"] if not d["window_std"].isna().all() else d["std"]
            yerr = None if spread.isna().all() else spread
            ax.bar(d.bucket, d.weight, yerr=yerr, color=REGION_COLOURS[region], label=region, capsize=2)
        ax.set_xlabel("bucket (oldest to newest: compressed memory, memory, window)")
        ax.set_ylabel("mean attention per slot")
        seeds = int(d_ds.seeds.iloc[0])
        ax.set_title(f"{ds} ({seeds} seed{'s' if seeds > 1 else ''}: {d_ds.runs.iloc[0]})", fontsize=9)
        ax.set_xticks(d_ds.bucket)
        ax.legend(fontsize=8)
    fig.suptitle("Figure 2: mean attention per slot, over the queries that see it and over layers", fontsize=10)
    single = ((df.seeds == 1) & df.window_std.isna()).any()
    return Plot("figure2_attention", "Figure 2: mean attention weight per slot by position", fig,
                ["each bar: the mean attention weight per key slot of a bucket (6 equal-width buckets per region), "
                 "each slot averaged over the queries of the window that can see it (the causal mask hides the "
                 "window's newest slots from most queries), over heads, windows and layers",
                 "error bars: standard deviation over every window of every seed where the runs saved "
                 "analysis/attention_windows.npz (windows while the memories fill are left out), else over "
                 "seeds" + ("; a dataset with one seed and no per-window record has none" if single else ""),
                 "the Compressive Transformer of each dataset's designated CT/TXL pair (analysis/rules.py)",
                 paper.FIGURE2_NOTE])


# --------------------------------------------------------------------------- Supplementary Figure 6
def compressibility_frame(runs: list[Run]) -> pd.DataFrame:
    rows = []
    for r in runs:
        data = r.analysis_json("compression_losses.json")
        # the figure plots the attention-reconstruction loss of models trained with it; a model trained with
        # another loss (or none) has compressed memories that were never fitted to it
        if data is None or paper.norm_key(r.results.get("compression_loss")) != "attention" or not at_trained_size(r):
            continue
        per_layer = data.get("per_layer") if isinstance(data, dict) else None
        if not isinstance(per_layer, list) or not all(is_number(v) for v in per_layer):
            raise RunFormatError(f"{r.analysis_file('compression_losses.json')}: expected "
                                 '{"per_layer": [float, ...]}')
        rows += [{"run": r.path.name, "label": f"{r.label}, {r.short_dataset}", "layer": i + 1, "loss": float(v)}
                 for i, v in enumerate(per_layer)]
    return pd.DataFrame(rows, columns=["run", "label", "layer", "loss"])


def layer_compressibility(runs: list[Run]) -> Plot:
    df = compressibility_frame(runs)
    if df.empty:
        raise MissingInput("layer compressibility needs analysis/compression_losses.json from a Compressive "
                           "Transformer trained with the attention-reconstruction loss (eval with --save-analysis)")
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for (run, label), d in df.groupby(["run", "label"], sort=True):
        ax.plot(d.layer, d.loss, marker="o", label=f"{label} ({run})")
    if (df.loss > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_xticks(sorted(df.layer.unique()))          # layers are whole numbers
    ax.set_ylabel("attention-reconstruction loss")
    ax.set_title("Layer compressibility (paper: Supplementary Figure 6)", fontsize=10)
    ax.legend(fontsize=7)
    return Plot("figure6_compressibility", "Supplementary Figure 6: compression loss per layer", fig,
                ["only runs trained with the attention-reconstruction loss; the loss of each layer's compressed "
                 "memory at evaluation",
                 "paper (Supplementary Figure 6): first layer most compressible, no clear trend with depth; "
                 "word-level loss ~10x character-level"])


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


def unique_labels(labels: list[str], names: list[str]) -> list[str]:
    """Legend entries: a label that would repeat gets its run's name."""
    return [f"{l} ({n})" if labels.count(l) > 1 else l for l, n in zip(labels, names)]


def figure4(runs: list[Run]) -> Plot:
    """One panel per dataset and training length (a preset and its longer-trained tier are not one race); the
    seeds of a model share its colour and one legend entry."""
    speech = [r for r in runs if r.domain == "speech"]
    df = curves_frame(speech, "loss", "step")
    if df.empty:
        raise MissingInput("Figure 4 needs speech runs with metrics.jsonl (ctbench speech train ...)")
    by_name = {r.path.name: r for r in speech}
    df["dataset"] = df.run.map(lambda n: by_name[n].short_dataset)
    df["steps"] = df.run.map(lambda n: by_name[n].results.get("steps"))
    panels = sorted({(ds, st) for ds, st in zip(df.dataset, df.steps)}, key=lambda k: (k[0], str(k[1])))
    tiers = pd.Series([ds for ds, _ in panels]).value_counts()
    fig = Figure(figsize=(5.0 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (ds, steps) in zip(axes, panels):
        here = df[(df.dataset == ds) & (df.steps.astype(str) == str(steps))]
        keys = sorted({(label, split) for label, split in zip(here.label, here.split)}, key=str)
        for colour, (label, split) in enumerate(keys):
            curves = list(here[(here.label == label) & (here.split == split)].groupby("run", sort=True))
            for i, (_, d) in enumerate(curves):
                ax.plot(d.x, d.y, marker=".", color=f"C{colour}",
                        label=f"{label} ({split}), {len(curves)} run{'s' * (len(curves) > 1)}" if i == 0 else None)
        ax.set_xlabel("training step")
        ax.set_ylabel("NLL (nats per sample)")
        ax.set_title(f"Figure 4: speech modelling, {ds}" + (f", {steps} steps" if tiers[ds] > 1 else ""), fontsize=10)
        ax.legend(fontsize=8)
    return Plot("figure4_speech", "Figure 4: speech NLL against training steps", fig,
                ["one panel per dataset and training length; held-out NLL in nats per sample against training steps, "
                 "one line per run, a model's seeds in one colour", paper.SPEECH_NOTE])


# --------------------------------------------------------------------------- Figure 5
SOLVED_RETURN = {"nonmatching": 1.0}   # every episode rewarded: the task is solved


def rl_frame(runs: list[Run], window: int = 5) -> tuple[pd.DataFrame, str]:
    """RL learning curves: return (human-normalised where every run logs it) against frames, smoothed
    over `window` points, one row per logged point. `task` tells the settings apart (the environment and,
    where a run records it, its delay), so a short-delay check and the long-delay comparison never merge;
    `arm` the runs of one setting (analysis.rules.arms), `seed` the run's seed."""
    rl = [r for r in runs if r.domain == "rl" and not r.metrics.empty and "frames" in r.metrics]
    use_hn = bool(rl) and all("human_normalised" in r.metrics and r.metrics["human_normalised"].notna().any()
                              for r in rl)
    y = "human_normalised" if use_hn else "episode_return"
    arm_of = {id(r): i for i, a in enumerate(rules.arms(rl)) for r in a.runs}
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
                  "arm": arm_of[id(r)], "seed": rules.seed_of(r), "frames": float(f), "y": float(v)}
                 for f, v in zip(d["frames"], smooth)]
    return pd.DataFrame(rows, columns=["run", "task", "delay", "group", "arm", "seed", "frames", "y"]), y


def late_return(run: Run, fraction: float = 0.1) -> float | None:
    """The return over the run's last `fraction` of frames: its logged episode returns, each weighted by the
    episodes it averages (1 where the log has no count). Beside the results' last-100-episode return, it
    says whether a dip in the last few thousand frames decides a seed. None without such logs."""
    m = run.metrics
    if m.empty or "frames" not in m or "episode_return" not in m:
        return None
    d = m[["frames", "episode_return"]].assign(
        n=m["episodes"].fillna(1) if "episodes" in m else 1.0).dropna(subset=["frames", "episode_return"])
    d = d[d.n > 0]
    if d.empty:
        return None
    late = d[d.frames > (1 - fraction) * d.frames.max()]
    return float((late.episode_return * late.n).sum() / late.n.sum())


def seed_band(g: pd.DataFrame, points: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """One arm's runs -> (frames, mean, low, high, seeds) over the frames every seed reached (no run is
    continued past its last point); reruns of a seed are left out (its first run in name order counts)."""
    firsts = g.sort_values("run").drop_duplicates("seed")["run"]
    curves = [d for run, d in g.groupby("run", sort=True) if run in set(firsts)]
    lo, hi = max(d.frames.min() for d in curves), min(d.frames.max() for d in curves)
    if len(curves) == 1:
        d = curves[0]
        return d.frames.to_numpy(), d.y.to_numpy(), d.y.to_numpy(), d.y.to_numpy(), 1
    grid = np.linspace(lo, hi, points)
    ys = np.stack([np.interp(grid, d.frames, d.y) for d in curves])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0), len(curves)


def figure5(runs: list[Run]) -> Plot:
    df, y = rl_frame(runs)
    if df.empty:
        raise MissingInput("Figure 5 needs rl runs whose metrics.jsonl logs frames and episode_return")
    tasks = df.sort_values(["delay", "task"]).task.unique().tolist()
    fig = Figure(figsize=(6.5 if len(tasks) == 1 else 4.2 * len(tasks), 3.8), layout="constrained")
    axes = fig.subplots(1, len(tasks), sharey=True, squeeze=False)[0]
    rl = {r.path.name: r for r in runs if r.domain == "rl"}
    for ax, task in zip(axes, tasks):
        here = df[df.task == task]
        arms = sorted(here.groupby("arm"), key=lambda kv: (kv[1].group.iloc[0], sorted(kv[1].run)[0]))
        labels = unique_labels([g.group.iloc[0] for _, g in arms], [" + ".join(sorted(g.run.unique())) for _, g in arms])
        for (_, g), label in zip(arms, labels):
            frames, mean, low, high, seeds = seed_band(g)
            line, = ax.plot(frames, mean, label=f"{label}, {seeds} seed{'s' if seeds > 1 else ''}")
            if seeds > 1:
                ax.fill_between(frames, low, high, color=line.get_color(), alpha=0.2)
        first = rl[here.run.iloc[0]].results
        if y == "episode_return" and is_number(first.get("chance_return")):
            ax.axhline(first["chance_return"], color="grey", linestyle=":", label="chance")
        solved = first.get("solved_return", SOLVED_RETURN.get(str(first.get("dataset"))))
        if y == "episode_return" and is_number(solved):
            ax.axhline(solved, color="black", linestyle="--", linewidth=0.8, label="solved")
        ax.set_xlabel("environment frames")
        ax.set_title("Figure 5: RL learning curves by compression rate" if len(tasks) == 1 else task, fontsize=10)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)   # below: curves stay visible
    axes[0].set_ylabel("human-normalised score" if y == "human_normalised" else "episode return")
    if len(tasks) > 1:
        fig.suptitle("Figure 5: RL learning curves by compression rate", fontsize=10)
    return Plot("figure5_rl", "Figure 5: RL return against frames by compression rate", fig,
                ["one line per setting: the mean over its seeds (band: min to max over seeds) up to the frames "
                 "every seed reached; a rerun of a seed with another budget is its own line; return smoothed "
                 "over 5 logged points", "dotted: chance; dashed: solved (every episode rewarded)", paper.RL_NOTE])
