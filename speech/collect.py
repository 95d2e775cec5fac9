"""`ctbench speech collect`: copy finished runs' results into results/speech/ with learning curves (Figure 4).

For each run directory: results.json and metrics.jsonl are copied to OUT/<preset>/; OUT/curves.csv holds every
metrics line (preset, model, split, step, samples, nats, bits), OUT/summary.csv one row per run, and
OUT/curves.png held-out bits per sample against training steps (training loss dashed), one line per model.
"""
from __future__ import annotations

import io
from pathlib import Path

from core.run.collect import collect_runs
from core.run.io import atomic_write_bytes

SUMMARY_KEYS = ("preset", "model", "dataset", "split", "value", "bits_per_sample", "params", "steps", "tokens_seen",
                "wall_time_s", "valid_nll_nats", "eval_seconds", "samples_scored", "device")
CURVE_KEYS = ("preset", "model", "dataset", "split", "step", "samples", "nats", "bits")


def _curve_rows(run: Path, res: dict, lines: list[dict]) -> list[dict]:
    return [{"preset": res["preset"], "model": res["model"], "dataset": res["dataset"], "split": r["split"],
             "step": r["step"], "samples": r["tokens"], "nats": r["loss"], "bits": r["bits"]} for r in lines]


def collect(run_dirs: list[str | Path], out: str | Path, plot: bool = True) -> list[dict]:
    """Copy each run's results and curves into `out` (one folder per preset); returns the summary rows."""
    summary, curves = collect_runs(
        run_dirs, out, name=lambda run, res: res["preset"], summary_row=lambda run, res, lines: res,
        summary_keys=SUMMARY_KEYS, curve_rows=_curve_rows, curve_keys=CURVE_KEYS,
        hint="train the run to the end, or `ctbench speech eval --run RUN_DIR`")
    if plot:
        plot_curves(curves, Path(out) / "curves.png")
    return summary


def plot_curves(curves: list[dict], path: Path) -> None:
    """Held-out (solid) and training (dashed) bits per sample against steps; one panel per dataset, one colour
    per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(c["dataset"] for c in curves))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 3.8), dpi=100, squeeze=False)
    colours = {}
    for ax, dataset in zip(axes[0], datasets):
        for preset in dict.fromkeys(c["preset"] for c in curves if c["dataset"] == dataset):
            model = next(c["model"] for c in curves if c["preset"] == preset)
            colour = colours.setdefault(model, f"C{len(colours)}")
            for split, style in (("valid", "-"), ("train", "--")):
                pts = [(c["step"], c["bits"]) for c in curves if c["preset"] == preset and c["split"] == split]
                if pts:
                    ax.plot(*zip(*pts), style, color=colour, marker="o" if split == "valid" else None,
                            markersize=3, alpha=1.0 if split == "valid" else 0.5,
                            label=f"{model} ({'held-out' if split == 'valid' else 'train'})")
        ax.set_title(f"{dataset}", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("bits per sample (8-bit mu-law)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Speech learning curves (cf. Rae et al. 2020, Figure 4)", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
