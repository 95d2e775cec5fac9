"""The paper's tables rebuilt from run directories, each with the paper's number beside ours.

Every builder takes a list of `Run`s and returns a `Table` (a pandas frame plus notes: where the
paper's numbers come from, and the scale ours ran at), or raises `MissingInput` with a one-line reason
that the report prints instead of the table.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paper
from analysis.runs import Run, RunFormatError, flat_config, is_number

LOWER_IS_BETTER = {"bpc", "ppl", "word_ppl", "bits_per_token", "nll_nats", "bits"}


class MissingInput(Exception):
    """The runs given hold nothing this table or figure is made from; str(e) says what is missing."""


@dataclass
class Table:
    name: str                   # file stem: results/tables/<name>.md / .csv
    title: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    scale: pd.DataFrame | None = None   # the runs behind the table: params, tokens, device, wall time
    percent_rows: tuple[str, ...] = ()  # rows (by first-column label) shown as percentages in Markdown

    def markdown(self) -> str:
        parts = [f"## {self.title}", "", to_markdown(self.frame, self.percent_rows)]
        if self.notes:
            parts += [""] + [f"- {n}" for n in dict.fromkeys(self.notes)]   # once each, in order
        if self.scale is not None and len(self.scale):
            parts += ["", "Scale of our runs:", "", to_markdown(self.scale)]
        return "\n".join(parts) + "\n"

    def write(self, out_dir: Path) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        md, csv = out_dir / f"{self.name}.md", out_dir / f"{self.name}.csv"
        atomic_write(md, self.markdown())
        atomic_write(csv, self.frame.to_csv(index=False))
        return [md, csv]


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)             # mkstemp makes 0600; give the file a normal mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fmt(x) -> str:
    """Numbers for humans: 4 significant digits, thousands as integers, missing as an en dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"
    return str(x).replace("|", "\\|")


def fmt_percent(x) -> str:
    return f"{x:+.1%}" if is_number(x) else fmt(x)


def to_markdown(df: pd.DataFrame, percent_rows: tuple[str, ...] = ()) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        f = fmt_percent if row[0] in percent_rows else fmt
        lines.append("| " + " | ".join([fmt(row[0])] + [f(v) for v in row[1:]]) + " |")
    return "\n".join(lines)


def fmt_duration(seconds) -> str:
    if not is_number(seconds):
        return "–"
    s = float(seconds)
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def scale_frame(runs: list[Run]) -> pd.DataFrame:
    """The scale each run ran at (the issue asks for it under every table)."""
    rows = []
    for r in runs:
        res = r.results
        world = res.get("world_size")
        device = f"{world} x {res.get('device')}" if is_number(world) and world > 1 else res.get("device")
        rows.append({"run": r.path.name, "model": r.label, "preset": res.get("preset"),
                     "params": res.get("params"), "tokens_seen": res.get("tokens_seen"),
                     "steps": res.get("steps"), "device": device,
                     "wall_time": fmt_duration(res.get("wall_time_s")),
                     "partial_data": res.get("partial_data")})
    return pd.DataFrame(rows)


def better(a: float, b: float, metric: str) -> bool:
    return a < b if metric in LOWER_IS_BETTER else a > b


TIE = 0.005   # relative difference under which two headline numbers count as a tie


def ordering_verdict(ct: float, txl: float, metric: str) -> str:
    """Whether the paper's ordering (CT better than TXL) holds; a difference under TIE is no evidence."""
    if abs(ct - txl) <= TIE * max(abs(ct), abs(txl)):
        return f"NOT reproduced (a tie: within {TIE:.1%})"
    return "reproduced" if better(ct, txl, metric) else "NOT reproduced"


# --------------------------------------------------------------------------- headline results
def headline(runs: list[Run]) -> Table:
    """Every run's headline metric, the paper's number for the same dataset and model where it has one,
    and for each dataset with both a Compressive Transformer and a TransformerXL, whether the paper's
    ordering (CT better) holds in our runs."""
    if not runs:
        raise MissingInput("no run directories")
    rows = []
    for r in runs:
        res = r.results
        ref = paper.HEADLINE.get((paper.norm_dataset(r.dataset), r.model))
        rows.append({"domain": r.domain, "dataset": r.dataset, "model": r.label, "preset": res.get("preset"),
                     "split": res.get("split"), "metric": res.get("metric"), "value": res.get("value"),
                     "paper": ref[0] if ref else None, "paper_source": ref[2] if ref else None,
                     "mem_len": res.get("mem_len"), "cmem_len": res.get("cmem_len"),
                     "params": res.get("params"), "tokens_seen": res.get("tokens_seen"),
                     "device": res.get("device"), "wall_time": fmt_duration(res.get("wall_time_s")),
                     "partial_data": res.get("partial_data")})
    df = pd.DataFrame(rows).sort_values(["domain", "dataset", "metric", "model"], kind="stable")
    notes = []
    for (ds, metric), g in df.groupby(["dataset", "metric"], sort=True):
        ct = [r for r in runs if r.dataset == ds and r.results.get("metric") == metric and r.model == "compressive"]
        txl = [r for r in runs if r.dataset == ds and r.results.get("metric") == metric and r.model == "transformerxl"]
        if not ct or not txl:
            continue
        pick = (lambda rs: min(rs, key=lambda r: r.results["value"])) if metric in LOWER_IS_BETTER else \
            (lambda rs: max(rs, key=lambda r: r.results["value"]))
        c, t = pick(ct).results["value"], pick(txl).results["value"]
        verdict = ordering_verdict(c, t, metric)
        notes.append(f"{ds} ({metric}): best Compressive Transformer {fmt(c)} vs best TransformerXL {fmt(t)}: "
                     f"the paper's ordering (CT better) is {verdict} at our scale")
    notes.append("paper numbers are from full-size models on the full datasets (" + paper.CITATION +
                 "); ours ran at the scale listed, so only the ordering is comparable")
    return Table("headline", "Headline results (ours vs the paper)", df.reset_index(drop=True), notes)


# --------------------------------------------------------------------------- Table 5
def table5(runs: list[Run]) -> Table:
    """Compression function x compression loss (paper Table 5, enwik8 BPC)."""
    ct = [r for r in runs if r.model == "compressive" and r.domain == "text" and is_number(r.results.get("value"))
          and at_trained_size(r)]
    if not ct:
        raise MissingInput("Table 5 needs text runs of the Compressive Transformer (compression x loss sweep)")
    rows = []
    for r in ct:
        res = r.results
        comp, loss = paper.norm_key(res.get("compression")), paper.norm_key(res.get("compression_loss"))
        rows.append({"dataset": r.dataset, "compression": comp, "compression_loss": loss,
                     "c": res.get("compression_rate"), "split": res.get("split"), "metric": res.get("metric"),
                     "ours": res["value"],
                     "paper_bpc": paper.table5_paper(comp, loss), "run": r.path.name})
    df = pd.DataFrame(rows)
    # A dataset with a single compressor/loss setting is a main-result run, not part of a sweep: where some
    # dataset has a sweep, only swept datasets are shown.
    settings = df.groupby("dataset")[["compression", "compression_loss"]].apply(lambda g: len(g.drop_duplicates()))
    if (settings > 1).any():
        swept = set(settings[settings > 1].index)
        df = df[df.dataset.isin(swept)]
        ct = [r for r in ct if r.dataset in swept]
    df = df.sort_values(["dataset", "split", "metric", "ours"], ascending=[True, True, True, False], kind="stable")
    notes = ["paper: Table 5 (enwik8 test BPC, best c of 2/3/4 per row): " + ", ".join(
        f"{c}+{l} {v}" for (c, l), v in paper.TABLE5.items())]
    if df["compression"].nunique() * df["compression_loss"].nunique() < 2:
        notes.append("only one compressor/loss setting in these runs: run the sweep for a comparison")
    if df["split"].nunique() > 1:
        notes.append("rows come from different splits (train-time validation subset vs evaluation): compare within a split")
    if not any(paper.norm_dataset(r.dataset) == "enwik8" for r in ct):
        notes.append("our runs are not on enwik8: compare orderings, not values")
    return Table("table5_compression", "Table 5: compression function x compression loss",
                 df.reset_index(drop=True), notes, scale_frame(ct))


def at_trained_size(run: Run) -> bool:
    """False for an evaluation at memory sizes other than the trained ones (those belong to Tables 8-9)."""
    res = run.results
    return all(not is_number(res.get(f"train_{k}")) or res.get(k) == res[f"train_{k}"] for k in ("mem_len", "cmem_len"))


# --------------------------------------------------------------------------- Tables 8-9
def sweeps(runs: list[Run]) -> list[Table]:
    """Compressed-memory size at evaluation (paper Tables 8-9): evaluation runs of one trained model
    (same dataset, preset and parameter count) at two or more (mem_len, cmem_len)."""
    ct = [r for r in runs if r.model == "compressive" and is_number(r.results.get("value"))
          and is_number(r.results.get("cmem_len"))]
    groups: dict[tuple, list[Run]] = {}
    for r in ct:
        res = r.results
        # one trained model evaluated several ways: the same training config (an evaluation copy keeps its
        # run's config.toml), or without one the same preset, size and compressor; and the same split
        trained = json.dumps({k: r.config.get(k) for k in ("model", "data", "train")}, sort_keys=True, default=str) \
            if r.config else (res.get("preset"), res.get("params"), res.get("compression"),
                              res.get("compression_loss"), res.get("compression_rate"))
        key = (r.dataset, res.get("preset"), res.get("metric"), str(trained), res.get("split"))
        groups.setdefault(key, []).append(r)
    tables = []
    for (ds, preset, metric, *_), rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        sizes = {(r.results.get("mem_len"), r.results["cmem_len"]) for r in rs}
        if len(sizes) < 2:
            continue
        ref = paper.SWEEPS.get(paper.norm_dataset(ds), {})
        rows = [{"mem_len": r.results.get("mem_len"), "cmem_len": r.results["cmem_len"],
                 "split": r.results.get("split"), "metric": metric, "ours": r.results["value"],
                 "paper": ref.get(int(r.results["cmem_len"])), "run": r.path.name} for r in rs]
        df = pd.DataFrame(rows).sort_values(["mem_len", "cmem_len"], kind="stable").reset_index(drop=True)
        best = df.loc[df["ours"].idxmin() if metric in LOWER_IS_BETTER else df["ours"].idxmax()]
        notes = [f"best ours: mem {fmt(best['mem_len'])}, cmem {fmt(best['cmem_len'])} -> {fmt(best['ours'])} {metric}"]
        if ref:
            notes.append(f"paper ({paper.norm_dataset(ds)}, {paper.SWEEP_SOURCE}): " +
                         ", ".join(f"cmem {k}: {v}" for k, v in ref.items()))
        else:
            notes.append("the paper has no sweep for this dataset (Table 8 is enwik8, Table 9 WikiText-103)")
        name = f"table8_9_sweep_{_slug(ds)}_{_slug(str(preset))}"
        name += f"_{len(tables) + 1}" if any(t.name == name for t in tables) else ""
        tables.append(Table(name, f"Tables 8-9: compressed memory size at evaluation ({ds}, {preset})", df, notes,
                            scale_frame(rs)))
    if not tables:
        raise MissingInput("Tables 8-9 need evaluation runs of one Compressive Transformer at 2+ memory sizes "
                           "(ctbench text eval --run DIR --cmem-len N)")
    return tables


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in s.lower()).strip("-") or "x"


# --------------------------------------------------------------------------- Table 7
def train_tokens_of(run: Run, arrays: dict[str, np.ndarray]) -> int | None:
    """Size of the training split, from results.json, the npz or config.toml (first found)."""
    res = run.results
    for src in (res, res.get("dataset_stats") or {}, res.get("data") or {}):
        if isinstance(src, dict) and is_number(src.get("train_tokens")):
            return int(src["train_tokens"])
    if "train_tokens" in arrays and arrays["train_tokens"].size == 1:
        return int(arrays["train_tokens"])
    for k, v in flat_config(run.config).items():
        if k.endswith("train_tokens") and is_number(v):
            return int(v)
    return None


def estimate_train_tokens(token: np.ndarray, train_count: np.ndarray) -> int:
    """Lower bound on the training-set size when no file states it: the summed training counts of the
    distinct words that were evaluated. It misses only the mass of training words absent from the
    evaluated text, which on Wikipedia-like text is a few percent."""
    _, first = np.unique(token, return_index=True)
    return int(train_count[first].sum())


def bucket_edges(train_tokens: int | None) -> tuple[tuple[float, ...], float]:
    """Table 7's edges (10K, 1K, 100 training occurrences on WikiText-103's 103M tokens), scaled by
    train_tokens / 103M on other corpora so that a bucket holds words of the same relative frequency."""
    scale = 1.0 if not train_tokens else train_tokens / paper.WIKITEXT103_TRAIN_TOKENS
    return tuple(e * scale for e in paper.TABLE7_EDGES), scale


def frequency_buckets(loss: np.ndarray, train_count: np.ndarray, edges: tuple[float, ...]) -> dict[str, dict]:
    """loss: [N] nats, train_count: [N] -> {bucket: {"ppl", "tokens"}} plus "All"."""
    hi, mid, lo = edges
    masks = {">10K": train_count >= hi, "1K-10K": (train_count >= mid) & (train_count < hi),
             "100-1K": (train_count >= lo) & (train_count < mid), "<100": train_count < lo,
             "All": np.ones_like(train_count, dtype=bool)}
    out = {}
    for name, m in masks.items():
        n = int(m.sum())
        out[name] = {"ppl": float(np.exp(loss[m].astype(np.float64).mean())) if n else float("nan"), "tokens": n}
    return out


def table7(runs: list[Run]) -> list[Table]:
    """Perplexity stratified by the target word's training frequency (paper Table 7)."""
    by_ds: dict[str, list[tuple[Run, dict]]] = {}
    for r in runs:
        if r.domain not in ("", "text") or r.analysis_file("token_losses.npz") is None:
            continue
        arrays = r.token_losses()
        if arrays is not None and "train_count" in arrays:
            by_ds.setdefault(r.dataset, []).append((r, arrays))
    if not by_ds:
        raise MissingInput("Table 7 needs word-level text eval runs with analysis/token_losses.npz holding "
                           "train_count (ctbench text eval --run DIR --save-analysis)")
    tables = []
    cols = list(paper.TABLE7_BUCKETS) + ["All"]
    for ds, items in sorted(by_ds.items()):
        # one run per model: the test split if there is one, then the best overall
        chosen: dict[str, tuple[Run, dict]] = {}
        for r, a in sorted(items, key=lambda it: (it[0].results.get("split") != "test",
                                                  float(np.mean(it[1]["loss"])))):
            chosen.setdefault(r.model, (r, a))
        rows, counts = [], None
        notes = []
        stats = {}
        for model in ["lstm", "transformerxl", "compressive"] + sorted(set(chosen) - {"lstm", "transformerxl",
                                                                                    "compressive"}):
            if model not in chosen:
                continue
            r, a = chosen[model]
            tt = train_tokens_of(r, a)
            estimated = tt is None and "token" in a
            if estimated:
                tt = estimate_train_tokens(a["token"], a["train_count"].astype(np.int64))
            edges, scale = bucket_edges(tt)
            b = frequency_buckets(a["loss"], a["train_count"].astype(np.int64), edges)
            stats[model] = b
            rows.append({"row": f"{model} (ours)", **{c: b[c]["ppl"] for c in cols}})
            counts = counts or {c: b[c]["tokens"] for c in cols}
            edge_txt = ", ".join(fmt(round(e, 1)) for e in edges)
            if tt is None:
                notes.append(f"training-set size unknown (results.json has no train_tokens): "
                             f"bucket edges left at the paper's {edge_txt}")
            elif abs(scale - 1) > 0.05:
                how = ("estimated from the training counts of the evaluated words (results.json has no "
                       "train_tokens): a lower bound, " if estimated else "")
                notes.append(f"{how}corpus of {tt:,} training tokens, so bucket edges are scaled by "
                             f"{tt:,}/103M = {scale:.4g}: edges {edge_txt} occurrences stand for the paper's "
                             "10K, 1K, 100")
        if "compressive" in stats and "transformerxl" in stats:
            rows.append({"row": "relative gain over TXL (ours)",
                         **{c: _gain(stats["transformerxl"][c]["ppl"], stats["compressive"][c]["ppl"]) for c in cols}})
        rows.append({"row": "tokens in bucket", **(counts or {})})
        for model in ("lstm", "transformerxl", "compressive"):
            rows.append({"row": f"{model} (paper)", **paper.TABLE7[model]})
        rows.append({"row": "relative gain over TXL (paper)", **paper.TABLE7_GAIN})
        notes.append("paper: Table 7, WikiText-103 test perplexity by training frequency (LSTM from Rae et al. 2018)")
        notes.append("relative gain = (ppl_TXL - ppl_CT) / ppl_TXL")
        if "compressive" in stats and "transformerxl" in stats:
            g_rare = _gain(stats["transformerxl"]["<100"]["ppl"], stats["compressive"]["<100"]["ppl"])
            g_freq = _gain(stats["transformerxl"][">10K"]["ppl"], stats["compressive"][">10K"]["ppl"])
            if is_number(g_rare) and is_number(g_freq):
                verdict = "reproduced" if g_rare > max(g_freq, 0) else "NOT reproduced"
                notes.append(f"paper's claim (larger gain on rare words than frequent ones): {verdict} "
                             f"(ours: <100 {g_rare:+.1%}, >10K {g_freq:+.1%})")
        tables.append(Table(f"table7_frequency_{_slug(ds)}", f"Table 7: perplexity by training frequency ({ds})",
                            pd.DataFrame(rows, columns=["row"] + cols), notes,
                            scale_frame([chosen[m][0] for m in chosen]),
                            percent_rows=("relative gain over TXL (ours)", "relative gain over TXL (paper)")))
    return tables


def _gain(base: float, new: float) -> float:
    return (base - new) / base if base and is_number(base) and is_number(new) else float("nan")


# --------------------------------------------------------------------------- longrange
_RANGE_KEYS = (("lo", "hi"), ("min", "max"), ("low", "high"), ("start", "end"), ("min_distance", "max_distance"),
               ("distance_lo", "distance_hi"))
_BITS_KEYS = ("bits", "bits_per_token", "model_bits", "bpt", "mean_bits")
_FLOOR_KEYS = ("floor_entropy_bits", "floor_bits", "entropy_floor", "entropy_floor_bits", "floor", "entropy_bits",
               "entropy")
_COUNT_KEYS = ("n", "tokens", "count", "n_tokens")


def _num(x) -> float:
    return float(x) if is_number(x) else float("nan")


def _first(d: dict, keys) -> object:
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return None


def parse_longrange(data: dict, path: Path) -> tuple[pd.DataFrame, dict]:
    """longrange.json -> (one row per distance bucket: bucket, n, bits, floor_bits; overall {bits, floor_bits})."""
    if not isinstance(data, dict):
        raise RunFormatError(f"{path}: expected a JSON object")
    buckets = _first(data, ("buckets", "distance_buckets", "by_distance"))
    if isinstance(buckets, dict):
        buckets = [{"label": k, **(v if isinstance(v, dict) else {"bits": v})} for k, v in buckets.items()]
    if not isinstance(buckets, list) or not buckets:
        raise RunFormatError(f"{path}: no distance buckets (expected a 'buckets' list; found keys {sorted(data)})")
    rows = []
    for b in buckets:
        label = b.get("label") or b.get("bucket")
        if label is None:
            for lo_k, hi_k in _RANGE_KEYS:
                if lo_k in b and hi_k in b:
                    # [lo, hi) in tokens; an open last bucket has hi = null
                    label = f"{b[lo_k]}-{b[hi_k]}" if b[hi_k] is not None else f">={b[lo_k]}"
                    break
        if label is None and "distance" in b:
            label = str(b["distance"])
        if label is None or not any(k in b for k in _BITS_KEYS):
            raise RunFormatError(f"{path}: a bucket lacks a distance range or bits (keys {sorted(b)})")
        rows.append({"bucket": str(label), "n": _first(b, _COUNT_KEYS), "bits": _num(_first(b, _BITS_KEYS)),
                     "floor_bits": _num(_first(b, _FLOOR_KEYS))})
    if isinstance(data.get("remention"), dict):   # all re-mentions together, whatever their distance
        rem = data["remention"]
        rows.append({"bucket": "all re-mentions", "n": _first(rem, _COUNT_KEYS), "bits": _num(_first(rem, _BITS_KEYS)),
                     "floor_bits": _num(_first(rem, _FLOOR_KEYS))})
    overall_src = data.get("overall") if isinstance(data.get("overall"), dict) else data
    overall = {"bits": _num(_first(overall_src, ("overall_bits",) + _BITS_KEYS)),
               "floor_bits": _num(_first(overall_src, ("overall_floor_bits",) + _FLOOR_KEYS)),
               "n": _first(overall_src, _COUNT_KEYS) if overall_src is not data else None}
    return pd.DataFrame(rows), overall


WIN_MARGIN_BITS = 0.05   # a bucket counts as won only by more than this


def longrange(runs: list[Run]) -> Table | list[Table]:
    """Bits per token on re-mentions bucketed by distance, per model, with the generator's entropy floor:
    one table per generated corpus (longrange, longrange-topic), since buckets and floors differ."""
    with_file = [r for r in runs if r.analysis_file("longrange.json")]
    # compare models at the memory sizes they were trained with; evaluations at other sizes are Tables 8-9's
    chosen = list(filter(at_trained_size, with_file)) or with_file
    if not chosen:
        raise MissingInput("the longrange table needs analysis/longrange.json (ctbench text eval on the "
                           "longrange corpus with --save-analysis)")
    datasets = list(dict.fromkeys(r.dataset for r in chosen))
    made = [_longrange_table([r for r in chosen if r.dataset == ds], ds, len(datasets) > 1) for ds in datasets]
    return made[0] if len(made) == 1 else made


def _longrange_table(chosen: list[Run], dataset: str, suffix: bool) -> Table:
    found = [(r, r.analysis_json("longrange.json")) for r in chosen]
    overall_rows: dict = {"bucket": "all tokens"}
    floor_overall = n_overall = None
    labels, parts = [], []
    for r, data in found:
        df, overall = parse_longrange(data, r.analysis_file("longrange.json"))
        label = r.label if r.label not in labels else f"{r.label} ({r.path.name})"
        labels.append(label)
        parts.append(df.set_index("bucket").rename(columns={"bits": label}))
        overall_rows[label] = overall["bits"]
        floor_overall = floor_overall if floor_overall is not None else overall["floor_bits"]
        n_overall = n_overall if n_overall is not None else overall["n"]
    overall_rows["floor_bits"] = floor_overall
    overall_rows["n"] = n_overall
    # bucket rows in the order the files list them (n and floor from the first file that has the bucket)
    order = list(dict.fromkeys(b for p in parts for b in p.index))
    first = pd.concat([p[["n", "floor_bits"]] for p in parts])
    merged = first[~first.index.duplicated()].reindex(order)
    for label, p in zip(labels, parts):
        merged[label] = p[label].reindex(order)
    merged = merged.rename_axis("bucket").reset_index()
    merged = pd.concat([merged, pd.DataFrame([overall_rows])], ignore_index=True)
    merged = merged[["bucket", "n"] + labels + ["floor_bits"]].rename(columns={"floor_bits": "entropy floor"})
    notes = ["bits per token on re-mentions of rare entities, bucketed by distance (tokens) to the previous mention; "
             "the entropy floor is the generator's own entropy, the best any model can reach",
             "the paper has no such table: this is the embedded corpus's direct test of its central claim "
             "(compressed memory helps beyond the TransformerXL's range)"]
    forgot = next((d.get("forgotten_name_bits") for _, d in found if is_number(d.get("forgotten_name_bits"))), None)
    if forgot is not None:
        notes.append(f"a model that has forgotten the entity pays about {forgot:.3g} bits per name token "
                     "(log2 of the number of possible names); the floor on re-mentions is 0")
    ct = [l for l in labels if l.startswith("compressive")]
    txl = [l for l in labels if l.startswith("transformerxl")]
    if ct and txl:
        body = merged[~merged["bucket"].isin(["all tokens", "all re-mentions"])]
        body = body[body[ct[0]].notna() & body[txl[0]].notna()]
        wins = int((body[ct[0]] < body[txl[0]] - WIN_MARGIN_BITS).sum())
        notes.append(f"{ct[0]} beats {txl[0]} in {wins} of {len(body)} distance buckets "
                     f"(by more than {WIN_MARGIN_BITS} bits)")
    name = "longrange" if not suffix or dataset == "longrange" else f"longrange_{_slug(dataset)}"
    return Table(name, f"Long-range corpus ({dataset}): bits per token by re-mention distance", merged, notes,
                 scale_frame([r for r, _ in found]))
