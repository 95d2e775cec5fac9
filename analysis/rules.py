"""The one rule for judging a claim of the paper with our runs (results/README.md states it in words).

    metric      every comparison is decided on a log loss per token (bits or nats; `score`), never on
                perplexity, which exaggerates small differences; RL on the return. `lower_is_better` is the
                one place that knows a metric's better direction.
    arm         the runs of one setting that differ only in their seed (`arms`): same domain, dataset, split,
                metric, model, memory sizes, and config.toml apart from seeds and bookkeeping keys (device,
                precision, logging, budget). Reruns of one seed stay separate runs of an arm and are not
                counted as seeds.
    pair        a designated Compressive Transformer / TransformerXL pair (`designated_pairs`): same dataset,
                split and metric, both at their trained memory sizes, the TXL's memory equal to the CT's
                memory + compressed memory (equal attention cost), the same data and training settings; where
                several CT settings qualify, the one trained as its preset stands (not a sweep's override of
                its compressor), then the paper's main one (conv compressor, attention-reconstruction loss).
                Never the best of many CT runs against one TXL. Settings trained differently (e.g. a preset
                and its longer-trained version), each with its own TXL twin, are separate pairs, the one with
                most seeds first.
    verdict     `verdict`: the CT's advantage (TXL - CT for a loss) per seed; its 95% t-interval over seeds
                (paired by seed when both arms have the same seeds, Welch otherwise). "reproduced" when the
                interval lies above 0, "NOT reproduced" when it lies below 0, "tie" when it holds 0, and
                "1 seed: no verdict" when either side has fewer than two seeds.
    paired      `paired_tokens`: where both runs saved per-token losses on the same test tokens, the mean
                per-token difference with a t-interval over documents (shown beside the verdict; a single
                seed's paired interval measures test-set noise, not seed noise, so it never decides).
"""
from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from analysis.runs import Run, is_number

LOWER_IS_BETTER = frozenset({"bpc", "ppl", "word_ppl", "bits_per_token", "nll_nats", "bits", "loss", "nats"})
LN2 = math.log(2.0)
NO_VERDICT = "1 seed: no verdict"
MAIN_CT = ("conv", "attention")   # the paper's main compressor and compression loss


def lower_is_better(metric: str) -> bool:
    return str(metric) in LOWER_IS_BETTER


def best_index(values, metric: str):
    """Index label of the best entry of a pandas Series of `metric` values."""
    return values.idxmin() if lower_is_better(metric) else values.idxmax()


def score(res: dict) -> tuple[float, str, bool] | None:
    """results.json -> (value, unit, lower is better) on the scale verdicts are decided on: bits per token
    for text (from bits_per_token, loss_nats, or log2 of a perplexity), nats per sample for speech, the
    metric itself otherwise (RL return)."""
    metric, value = str(res.get("metric", "")), res.get("value")
    unit = {"bpc": "bits per character"}.get(metric, "bits per token")
    if is_number(res.get("bits_per_token")):
        return float(res["bits_per_token"]), unit, True
    if is_number(res.get("loss_nats")) and metric != "nll_nats":
        return float(res["loss_nats"]) / LN2, unit, True
    if not is_number(value):
        return None
    if metric in ("ppl", "word_ppl"):
        return math.log2(float(value)), "bits per word" if metric == "word_ppl" else "bits per token", True
    if metric == "nll_nats":
        return float(value), "nats per sample", True
    if metric in ("bpc", "bits_per_token", "bits"):
        return float(value), unit, True
    return float(value), metric, lower_is_better(metric)


def seed_of(run: Run) -> int | None:
    """The training seed: results.json `seed`, else config.toml train.seed / run.seed / seed."""
    for src in (run.results, run.config.get("train", {}), run.config.get("run", {}), run.config):
        if isinstance(src, dict) and is_number(src.get("seed")):
            return int(src["seed"])
    return None


# config keys that do not change what is trained (bookkeeping, devices, logging) or that tell seeds apart;
# an RL run's budget (minutes, or frames when the lr does not anneal over them) only says when it stopped:
# its results record the frames it reached, which the RL claims row shows. The precision is a device
# setting like the device: "auto" gives bf16 on one machine and fp32 on the next, so "auto", "fp32" and
# "bf16" all name the same model; bf16 against fp32 was within seed noise where measured
# (results/precision/README.md), and results.json records the precision each run used
_IGNORED = frozenset({"seed", "device", "threads", "progress", "log_every", "log_every_s", "eval_every",
                      "checkpoint_every", "checkpoint_every_s", "keep_step_checkpoints", "num_actors",
                      "ray_address", "backend", "crash_actor", "crash_at_unroll", "valid_windows", "max_time_s",
                      "precision"})


# keys that configs gained later, at the value that does what runs written before them did: such a key is
# the same setting whether present or absent (a WaveNet's "reread" context is how every run before
# wavenet.context trained)
_LATER_DEFAULTS = {"loss_reduction": "mean", "context": "reread"}


def setting(config: dict, drop_sections: tuple[str, ...] = ()) -> str:
    """config.toml without seeds and bookkeeping keys, as canonical JSON."""
    def clean(d: dict, top: bool) -> dict:
        budget = set() if d.get("lr_anneal") is True else {"total_frames"}
        return {k: clean(v, False) if isinstance(v, dict) else v for k, v in sorted(d.items())
                if k not in _IGNORED and k not in budget and not (top and k in drop_sections)
                and not (k in _LATER_DEFAULTS and v == _LATER_DEFAULTS[k])}
    return json.dumps(clean(config, True), sort_keys=True, default=str)


def at_trained_size(run: Run) -> bool:
    """False for an evaluation at memory sizes other than the trained ones (those belong to Tables 8-9)."""
    res = run.results
    return all(not is_number(res.get(f"train_{k}")) or res.get(k) == res[f"train_{k}"] for k in ("mem_len", "cmem_len"))


def arm_key(run: Run) -> tuple:
    res = run.results
    fields = json.dumps([res.get(k) for k in ("preset", "params", "compression_rate", "compression",
                                              "compression_loss", "delay")], default=str)
    cfg = setting(run.config) if run.config else json.dumps(res.get("steps"))
    return (run.domain, run.dataset, str(res.get("split")), str(res.get("metric")), run.model,
            res.get("mem_len"), res.get("cmem_len"), fields, cfg)


@dataclass
class Arm:
    """Runs of one setting; `seeds` holds one run per seed (the first in path order), `reruns` the rest."""
    runs: list[Run]

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def by_seed(self) -> dict:
        out: dict = {}
        for r in self.runs:
            out.setdefault(seed_of(r), r)
        return out

    @property
    def n_seeds(self) -> int:
        return len(self.by_seed)

    def values(self, of: Callable[[Run], float | None] = lambda r: (score(r.results) or (None,))[0]) -> dict:
        """{seed: value} over seeds (a seed's first run), leaving out runs `of` gives None for."""
        return {s: v for s, r in self.by_seed.items() if (v := of(r)) is not None and is_number(v)}


def arms(runs: list[Run]) -> list[Arm]:
    groups: dict[tuple, list[Run]] = {}
    for r in sorted(runs, key=lambda r: str(r.path)):
        groups.setdefault(arm_key(r), []).append(r)
    return [Arm(rs) for _, rs in sorted(groups.items(), key=lambda kv: str(kv[0]))]


def is_main_ct(arm: Arm) -> bool:
    """Whether the setting uses the paper's main compressor and compression loss (MAIN_CT)."""
    res = arm.first.results
    return (str(res.get("compression")), str(res.get("compression_loss"))) == MAIN_CT


def prefer_main(cts: list[Arm]) -> list[Arm]:
    """Of several Compressive Transformer settings, those with the paper's main compressor and loss (all of
    them when none has it)."""
    return [c for c in cts if is_main_ct(c)] or cts


def designated_ct(runs: list[Run]) -> dict[str, Arm]:
    """{dataset: the one Compressive Transformer arm a figure shows}: the CT of the dataset's designated pair,
    else its only CT setting at trained memory sizes (after `prefer_main`); none where that is ambiguous."""
    pairs, _ = designated_pairs(runs)
    out: dict[str, Arm] = {}
    for p in pairs:                       # sorted by split: a test split before a validation one
        out.setdefault(p.dataset, p.ct)
    cts = arms([r for r in runs if r.model == "compressive" and at_trained_size(r) and r.dataset not in out])
    for ds in sorted({a.first.dataset for a in cts}):
        here = prefer_main([a for a in cts if a.first.dataset == ds])
        if len(here) == 1:
            out[ds] = here[0]
    return dict(sorted(out.items()))


@dataclass
class Pair:
    domain: str
    dataset: str
    split: str
    metric: str
    ct: Arm
    txl: Arm


def same_training(a: Run, b: Run) -> bool:
    """The same data and training settings (model sections aside); without a config.toml on either side, the
    same preset family, step count and tokens seen."""
    if a.config and b.config:
        return setting(a.config, ("model", "agent", "preset", "eval")) == setting(b.config, ("model", "agent", "preset",
                                                                                           "eval"))
    family = lambda r: str(r.results.get("preset", "")).removesuffix("-txl")  # noqa: E731
    return family(a) == family(b) and a.results.get("steps") == b.results.get("steps") \
        and a.results.get("tokens_seen") == b.results.get("tokens_seen")


def same_budget(a: Run, b: Run) -> bool:
    """The same data, step count and samples seen: a baseline of another kind (WaveNet, whose batches are
    shaped differently) trained as long as the run it is compared with."""
    data = lambda r: setting(r.config.get("data", {})) if r.config else None  # noqa: E731
    return all(a.results.get(k) == b.results.get(k) for k in ("steps", "tokens_seen")) and data(a) == data(b)


PRESETS = Path(__file__).resolve().parents[1] / "configs"


def trained_as_preset(run: Run) -> bool | None:
    """Whether the run kept its preset's compressor and compression loss (configs/<domain>/<preset>.toml);
    None where the preset file or the run's config.toml is not there to compare."""
    path = PRESETS / (run.domain or "text") / f"{run.results.get('preset')}.toml"
    mine = run.config.get("model") if run.config else None
    if not path.is_file() or not isinstance(mine, dict):
        return None
    try:
        preset = tomllib.loads(path.read_text()).get("model", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return all(mine.get(k) == preset[k] for k in ("compression", "compression_loss") if k in preset)


def designated_pairs(runs: list[Run]) -> tuple[list[Pair], list[str]]:
    """The CT / TXL pairs the headline compares (see the module docstring), and one note per dataset where
    no pair could be designated."""
    usable = [r for r in runs if at_trained_size(r) and score(r.results) is not None]
    all_arms = arms(usable)
    pairs, notes = [], []
    keys = sorted({(a.first.domain, a.first.dataset, str(a.first.results.get("split")),
                    str(a.first.results.get("metric"))) for a in all_arms})
    for domain, ds, split, metric in keys:
        here = [a for a in all_arms if (a.first.domain, a.first.dataset, str(a.first.results.get("split")),
                                        str(a.first.results.get("metric"))) == (domain, ds, split, metric)]
        cts = [a for a in here if a.first.model == "compressive"]
        txls = [a for a in here if a.first.model == "transformerxl"]
        if not cts or not txls:
            continue
        matches = [(c, t) for c in cts for t in txls
                   if t.first.results.get("mem_len") == (c.first.results.get("mem_len") or 0) + (c.first.results.get("cmem_len") or 0)
                   and same_training(c.first, t.first)]
        if len(matches) > 1:
            # a sweep run (e.g. Table 5's compressors, `--preset P --set model.compression=...`) is not P's CT
            matches = [(c, t) for c, t in matches if trained_as_preset(c.first) is not False] or matches
        if len(matches) > 1:
            main = prefer_main([c for c, _ in matches])
            matches = [(c, t) for c, t in matches if any(c is m for m in main)]
        one_to_one = len({id(c) for c, _ in matches}) == len({id(t) for _, t in matches}) == len(matches)
        if matches and one_to_one:
            pairs += [Pair(domain, ds, split, metric, c, t)
                      for c, t in sorted(matches, key=lambda m: (-min(m[0].n_seeds, m[1].n_seeds),
                                                                 str(m[0].first.path)))]
        else:
            notes.append(f"{ds} ({split}, {metric}): no designated CT/TXL pair ("
                         + ("no TXL with memory = CT memory + compressed memory and the same training settings"
                            if not matches else f"{len(matches)} candidate pairs") + ")")
    return pairs, notes


@dataclass
class Verdict:
    label: str
    advantage: float          # mean over seeds of the CT's advantage (positive: CT better)
    lo: float                 # 95% interval of that mean (NaN with one seed)
    hi: float
    n_a: int
    n_b: int
    how: str                  # "paired by seed", "Welch" or why there is no interval

    def text(self, unit: str = "") -> str:
        u = f" {unit}" if unit else ""
        if math.isnan(self.lo):
            return f"{self.label} (advantage {self.advantage:+.4g}{u}; {self.how})"
        return (f"{self.label} (advantage {self.advantage:+.4g}{u}, 95% interval [{self.lo:+.4g}, {self.hi:+.4g}], "
                f"{self.n_a} vs {self.n_b} seeds, {self.how})")


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) by its continued fraction (Numerical Recipes' betacf)."""
    if x <= 0 or x >= 1:
        return float(x >= 1)
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    c, d, f = 1.0, 0.0, 1.0
    for i in range(400):
        m = i // 2
        num = 1.0 if i == 0 else (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)) if i % 2 == 0
                                   else -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1.0 + num / (c if abs(c) > 1e-300 else 1e-300)
        f *= c * d
        if abs(1.0 - c * d) < 1e-14:
            break
    return front * (f - 1.0)


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t with `df` (> 0, not necessarily whole) degrees of freedom, for p in (0.5, 1)."""
    def upper_tail(t: float) -> float:          # P(T > t) for t >= 0
        return 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    lo, hi = 0.0, 1.0
    while upper_tail(hi) > 1 - p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if upper_tail(mid) > 1 - p else (lo, mid)
    return (lo + hi) / 2


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi) of the mean of `x` (2+ values), Student t."""
    x = np.asarray(x, dtype=np.float64)
    m = float(x.mean())
    half = float(t_quantile(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half


def verdict(a: dict, b: dict, lower_better: bool, level: float = 0.95) -> Verdict:
    """a, b: {seed: value} of the claimed-better side and the other. The rule of the module docstring."""
    sign = -1.0 if lower_better else 1.0
    adv_mean = sign * (np.mean(list(a.values())) - np.mean(list(b.values()))) if a and b else float("nan")
    if len(a) < 2 or len(b) < 2:
        return Verdict(NO_VERDICT, float(adv_mean), float("nan"), float("nan"), len(a), len(b),
                       f"{len(a)} vs {len(b)} seeds")
    if set(a) == set(b):
        diffs = np.array([sign * (a[s] - b[s]) for s in sorted(a, key=str)])
        m, lo, hi = t_interval(diffs, level)
        how = "paired by seed"
    else:
        xa, xb = np.array(list(a.values()), float), np.array(list(b.values()), float)
        va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
        m = sign * float(xa.mean() - xb.mean())
        if va + vb == 0:
            lo = hi = m
        else:
            df = (va + vb) ** 2 / (va ** 2 / (len(xa) - 1) + vb ** 2 / (len(xb) - 1))
            half = float(t_quantile(0.5 + level / 2, df) * math.sqrt(va + vb))
            lo, hi = m - half, m + half
        how = "Welch"
    label = "reproduced" if lo > 0 else "NOT reproduced" if hi < 0 else "tie"
    return Verdict(label, m, lo, hi, len(a), len(b), how)


def mean_std(values: dict | list) -> str:
    """'3.791 +- 0.002 (3 seeds)' or '3.791 (1 seed)'."""
    v = np.array(list(values.values()) if isinstance(values, dict) else values, dtype=np.float64)
    if len(v) == 0:
        return "–"
    if len(v) == 1:
        return f"{v[0]:.4g} (1 seed)"
    return f"{v.mean():.4g} +- {v.std(ddof=1):.2g} ({len(v)} seeds)"


DOC_BLOCKS = 32   # test-set blocks standing in for documents when the per-token file has no document ids


def paired_tokens(a: Run, b: Run, level: float = 0.95) -> str:
    """Per-token comparison of two runs on the same test tokens: mean of (b - a) in bits per token with a
    t-interval over documents (or DOC_BLOCKS contiguous blocks), or why there is none."""
    try:
        ta, tb = a.token_losses(), b.token_losses()
    except Exception as err:   # a malformed file must not cost the table; the reason is shown instead
        return f"per-token file unreadable: unpaired ({err})"
    if ta is None or tb is None:
        return "no per-token file: unpaired"
    pa, pb = ta.get("position"), tb.get("position")
    if pa is None or pb is None or len(pa) != len(pb) or not np.array_equal(pa, pb):
        return "per-token files score different tokens: unpaired"
    diff = (tb["loss"].astype(np.float64) - ta["loss"].astype(np.float64)) / LN2
    if "doc" in ta and len(ta["doc"]) == len(diff):
        _, groups = np.unique(ta["doc"], return_inverse=True)
        unit = "documents"
    else:
        groups = np.minimum(np.arange(len(diff)) * DOC_BLOCKS // max(len(diff), 1), DOC_BLOCKS - 1)
        unit = "contiguous blocks"
    per_doc = np.bincount(groups, weights=diff) / np.bincount(groups)
    if len(per_doc) < 2:
        return f"paired on {len(diff):,} tokens: {float(diff.mean()):+.4g} bits per token (one {unit[:-1]}: no interval)"
    m, lo, hi = t_interval(per_doc, level)
    return (f"paired on {len(diff):,} tokens: {m:+.4g} bits per token, 95% interval [{lo:+.4g}, {hi:+.4g}] over "
            f"{len(per_doc)} {unit}")
