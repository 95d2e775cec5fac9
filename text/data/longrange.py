"""`longrange`: a generated corpus with known long-range structure and an exactly computable entropy floor.

Each document (fixed length `doc_len`) is produced by this story, token by token:
  * position 0 is `<doc>`;
  * at every free step, with m entities introduced so far and f the last filler token (or `<doc>`):
      - with probability p_intro (only while m < max_entities): `<intro>` and a new entity's name of
        `name_len` tokens: the first drawn uniformly from the name tokens not yet first tokens in this
        document (so a first token identifies an entity), the others uniformly from all name tokens;
      - with probability p_ref (only when m >= 1): `<ref>` and an earlier entity's whole name, the entity
        chosen by its recency rank r (0 = most recently mentioned) with weight (r + 1) ** -recency_alpha
        (alpha 0: uniform);
      - otherwise a filler token from a fixed first-order Markov source (the same for every seed).
  * the document is cut at `doc_len` tokens, mid-name if need be.
Given the full past, tokens 2..name_len of a re-mention are certain (entropy 0), but a model that cannot
see back to the entity's previous mention pays log2(n_name) bits for each. Their distance to that
mention is geometric-like, spanning tens to thousands of tokens: the regime where a TransformerXL's
memory ends and the Compressive Transformer's compressed memory (Rae et al. 2020, Section 3) reaches.

`annotate` recovers, from the tokens alone, every position's true conditional entropy and surprisal
under the story (the floor no model can beat) and the re-mention distance; `bucket_report` sets a
model's per-token losses beside them (RUN_DIR/analysis/longrange.json).
"""
from __future__ import annotations

import dataclasses
import math
import random
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import Builder, Dataset, load_or_build
from .vocab import SymbolVocab

DOC, INTRO, REF = 0, 1, 2
N_SPECIAL = 3
DEFAULT_BUCKETS = (0, 64, 256, 512, 1024, 4096)
LN2 = math.log(2.0)
ANNOTATIONS = ("distance", "entropy", "surprisal")  # the per-position arrays saved with a prepared split


@dataclass(frozen=True)
class LongRangeConfig:
    n_filler: int = 61            # filler token types (3 + 61 + 192 = a vocabulary of 256)
    n_name: int = 192             # name token types
    name_len: int = 4             # tokens per entity name
    doc_len: int = 4096           # tokens per document
    max_entities: int = 24        # entities introduced per document at most
    p_intro: float = 0.01         # per free step, while m < max_entities
    p_ref: float = 0.02           # per free step, once m >= 1
    recency_alpha: float = 0.0    # re-mention choice weight (rank + 1) ** -alpha
    filler_branching: int = 4     # successors per filler state (the Markov source's sparsity)
    filler_seed: int = 1234       # fixes the Markov source: the same for every corpus seed
    train_docs: int = 512         # 2,097,152 training tokens with doc_len 4096
    valid_docs: int = 32
    test_docs: int = 32

    def __post_init__(self):
        checks = {
            "n_filler": self.n_filler >= 1, "n_name": self.n_name >= self.max_entities,
            "name_len": self.name_len >= 1, "doc_len": self.doc_len >= 2, "max_entities": self.max_entities >= 1,
            "p_intro": 0 < self.p_intro < 1, "p_ref": 0 <= self.p_ref < 1 and self.p_intro + self.p_ref < 1,
            "filler_branching": 1 <= self.filler_branching <= self.n_filler,
            "train_docs": self.train_docs >= 1, "valid_docs": self.valid_docs >= 1, "test_docs": self.test_docs >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"LongRangeConfig: invalid {', '.join(bad)} ({dataclasses.asdict(self)})")

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + self.n_filler + self.n_name

    @property
    def name_base(self) -> int:
        return N_SPECIAL + self.n_filler


def filler_matrix(cfg: LongRangeConfig) -> np.ndarray:
    """[n_filler + 1, n_filler] transition probabilities; row n_filler is the state after `<doc>`."""
    rng = np.random.default_rng(cfg.filler_seed)
    T = np.zeros((cfg.n_filler + 1, cfg.n_filler))
    for row in T:
        succ = rng.choice(cfg.n_filler, size=cfg.filler_branching, replace=False)
        row[succ] = rng.dirichlet(np.ones(cfg.filler_branching))
    return T


def choice_weights(cfg: LongRangeConfig, m: int) -> np.ndarray:
    """[m] probability of re-mentioning the entity of recency rank r (0 = most recent)."""
    w = (np.arange(m) + 1.0) ** -cfg.recency_alpha
    return w / w.sum()


def vocabulary(cfg: LongRangeConfig) -> SymbolVocab:
    return SymbolVocab(["<doc>", "<intro>", "<ref>"] + [f"f{i}" for i in range(cfg.n_filler)]
                       + [f"n{i}" for i in range(cfg.n_name)])


# ---------------------------------------------------------------------------------------------- sampling
def generate(cfg: LongRangeConfig, n_docs: int, seed: int) -> np.ndarray:
    """[n_docs * doc_len] token ids following the story in the module docstring.

    Equivalent to deciding each free step in turn, but faster: the number of filler tokens before the
    next event is geometric (the event probability only changes at events), and fillers form one Markov
    chain per document because names do not move the chain's state.
    """
    rnd = random.Random(seed)
    T = filler_matrix(cfg)
    succ = [np.flatnonzero(row).tolist() for row in T]
    cum = [np.cumsum(row[np.flatnonzero(row)]).tolist() for row in T]
    for c in cum:
        c[-1] = 1.0  # guard against rounding leaving u >= cum[-1]
    L, E, base, n_doc = cfg.name_len, cfg.n_name, cfg.name_base, cfg.doc_len
    cw = [None] + [np.cumsum(choice_weights(cfg, m)).tolist() for m in range(1, cfg.max_entities + 1)]
    out = np.empty(n_docs * n_doc, dtype=np.int64)
    for d in range(n_docs):
        doc = [DOC]
        f = cfg.n_filler
        names: list[list[int]] = []     # by recency, most recent first
        used_first: set[int] = set()
        while len(doc) < n_doc:
            m = len(names)
            p_i = cfg.p_intro if m < cfg.max_entities else 0.0
            p_r = cfg.p_ref if m >= 1 else 0.0
            p_e = p_i + p_r
            room = n_doc - len(doc)
            k = room if p_e == 0 else min(room, int(math.log(1.0 - rnd.random()) / math.log(1.0 - p_e)))
            for _ in range(k):
                f = succ[f][bisect_right(cum[f], rnd.random())]
                doc.append(N_SPECIAL + f)
            if k == room:
                break
            if rnd.random() * p_e < p_i:
                free = [t for t in range(E) if t not in used_first]
                first = free[rnd.randrange(len(free))]
                used_first.add(first)
                name = [base + first] + [base + rnd.randrange(E) for _ in range(L - 1)]
                names.insert(0, name)
                doc.append(INTRO)
            else:
                c = cw[m]
                r = min(bisect_right(c, rnd.random() * c[-1]), m - 1)
                name = names.pop(r)
                names.insert(0, name)
                doc.append(REF)
            doc.extend(name)
        out[d * n_doc:(d + 1) * n_doc] = doc[:n_doc]
    return out


# -------------------------------------------------------------------------------------------- annotation
def _entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _free_step_tables(cfg: LongRangeConfig, T: np.ndarray):
    """For each m (entities so far) and previous filler state f: the free step's entropy [M+1, F+1] and
    log2-probabilities of `<intro>` [M+1], `<ref>` [M+1] and each filler [M+1, F+1, F]."""
    M = cfg.max_entities
    p_i = np.where(np.arange(M + 1) < M, cfg.p_intro, 0.0)
    p_r = np.where(np.arange(M + 1) >= 1, cfg.p_ref, 0.0)
    p_f = (1 - p_i - p_r)[:, None, None] * T[None]
    full = np.concatenate([np.broadcast_to(p_i[:, None, None], (M + 1, len(T), 1)),
                           np.broadcast_to(p_r[:, None, None], (M + 1, len(T), 1)), p_f], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(full > 0, full * np.log2(full), 0.0).sum(axis=2)
        return h, np.log2(p_i), np.log2(p_r), np.log2(p_f)


def annotate_tokens(tokens: np.ndarray, cfg: LongRangeConfig) -> dict[str, np.ndarray]:
    """Per-position truth of the story for a stream of whole documents (starting at a document start).

    Returns {"distance": [N] int64, tokens back to the same name token in the entity's previous mention
    (name tokens 2..name_len of a re-mention; -1 elsewhere), "entropy": [N] float32 bits, the true
    conditional entropy of token t given tokens < t, "surprisal": [N] float32 bits, -log2 p(token t | past),
    "config": the generator configuration as a dict}.
    Token classes (special / filler / name) are disjoint, so the story's state is recovered exactly.
    """
    tok = np.asarray(tokens).astype(np.int64)
    N, D, L, E, base = len(tok), cfg.doc_len, cfg.name_len, cfg.n_name, cfg.name_base
    pos = np.arange(N)
    in_doc = pos % D
    if not np.array_equal(np.flatnonzero(tok == DOC), np.flatnonzero(in_doc == 0)):
        raise ValueError(f"longrange stream: <doc> must open every {D}-token document and appear nowhere else")
    T = filler_matrix(cfg)
    free_h, lp_i, lp_r, lp_f = _free_step_tables(cfg, T)

    # m before each position: <intro> markers since the document start, not counting the current one
    is_intro, is_ref = tok == INTRO, tok == REF
    c = np.cumsum(is_intro)
    m = c - is_intro - (c - is_intro)[pos - in_doc]
    # previous filler state: forward-fill the last filler position within the document
    is_fill = (tok >= N_SPECIAL) & (tok < base)
    last = np.where(is_fill, pos, -1)
    last[in_doc == 0] = pos[in_doc == 0]  # a barrier at each <doc>
    last = np.maximum.accumulate(last)
    prev = np.concatenate([[0], last[:-1]])
    f_prev = np.where(is_fill[prev] & (in_doc > 0), tok[prev] - N_SPECIAL, cfg.n_filler)

    entropy = np.zeros(N)
    surprisal = np.zeros(N)
    free = is_fill | is_intro | is_ref
    entropy[free] = free_h[m[free], f_prev[free]]
    surprisal[is_fill] = -lp_f[m[is_fill], f_prev[is_fill], tok[is_fill] - N_SPECIAL]
    surprisal[is_intro] = -lp_i[m[is_intro]]
    surprisal[is_ref] = -lp_r[m[is_ref]]

    distance = np.full(N, -1, dtype=np.int64)
    choice_h = [0.0] + [_entropy_bits(choice_weights(cfg, k)) for k in range(1, cfg.max_entities + 1)]
    choice_lp = [None] + [np.log2(choice_weights(cfg, k)) for k in range(1, cfg.max_entities + 1)]
    log_e = math.log2(E)
    recency: list[int] = []
    last_start: dict[int, int] = {}
    doc = -1
    for start in np.flatnonzero(is_intro | is_ref).tolist():
        if start // D != doc:
            doc, recency, last_start = start // D, [], {}
        end = min((doc + 1) * D, N)
        if start + 1 >= end:
            continue
        first = int(tok[start + 1]) - base
        names = slice(start + 2, min(start + 1 + L, end))
        k = len(recency)
        if is_intro[start]:
            entropy[start + 1] = surprisal[start + 1] = math.log2(E - k)
            entropy[names] = surprisal[names] = log_e
            recency.insert(0, first)
        else:
            r = recency.index(first)
            entropy[start + 1] = choice_h[k]
            surprisal[start + 1] = -choice_lp[k][r]
            recency.insert(0, recency.pop(r))
            distance[names] = start - last_start[first]
        last_start[first] = start
    return {"distance": distance, "entropy": entropy.astype(np.float32), "surprisal": surprisal.astype(np.float32),
            "config": dataclasses.asdict(cfg)}


def annotate(ds_or_tokens, split: str = "test", cfg: LongRangeConfig | None = None) -> dict[str, np.ndarray]:
    """Annotations of a longrange split (a prepared Dataset, read from its cache) or of a token array."""
    if isinstance(ds_or_tokens, Dataset):
        ds = ds_or_tokens
        out = {k: np.asarray(ds.array(f"{split}.{k}")) for k in ANNOTATIONS}
        return {**out, "config": ds.manifest["longrange_config"]}
    return annotate_tokens(np.asarray(ds_or_tokens), cfg or LongRangeConfig())


def bucket_report(loss_nats, positions, annotations: dict, buckets=None, n_name: int | None = None) -> dict:
    """Bits per token overall and on re-mentions by distance, beside the generator's floor.

    loss_nats: [N] a model's loss (nats) on the target token at each of `positions`, [N] indices of the
    targets in the annotated split (StreamBatcher.target_positions gives them). annotations: from
    `annotate`. buckets: [lo, hi) distance edges, the last bucket open-ended (default 0, 64, 256, 512,
    1024, 4096). n_name: name token types, for `forgotten_name_bits` (default: from the annotations'
    config). Returns a JSON-serialisable dict (RUN_DIR/analysis/longrange.json).
    """
    n_name = n_name or (annotations.get("config") or {}).get("n_name")
    loss_bits = np.asarray(loss_nats, dtype=np.float64) / LN2
    pos = np.asarray(positions, dtype=np.int64)
    dist = np.asarray(annotations["distance"])[pos]
    ent = np.asarray(annotations["entropy"], dtype=np.float64)[pos]
    sur = np.asarray(annotations["surprisal"], dtype=np.float64)[pos]
    edges = list(buckets or DEFAULT_BUCKETS)

    def summary(mask) -> dict:
        n = int(mask.sum())
        mean = (lambda a: float(a[mask].mean())) if n else (lambda a: None)
        return {"tokens": n, "bits": mean(loss_bits), "floor_entropy_bits": mean(ent), "floor_surprisal_bits": mean(sur)}

    rows = []
    for k, lo in enumerate(edges):
        hi = edges[k + 1] if k + 1 < len(edges) else None
        mask = (dist >= lo) & (dist < hi if hi is not None else True)
        rows.append({"lo": lo, "hi": hi, **summary(mask)})
    return {
        "overall": summary(np.ones(len(pos), dtype=bool)),
        "remention": summary(dist >= 0),
        "other": summary(dist < 0),
        "buckets": rows,
        "forgotten_name_bits": math.log2(n_name) if n_name else None,
        "config": annotations.get("config"),
        "note": "bits = model loss / ln 2 on the target token; floor_* = the generator's true conditional "
                "entropy / surprisal (no model can do better on average); remention = name tokens 2.. of a "
                "re-mention, bucketed by distance to the entity's previous mention",
    }


# ------------------------------------------------------------------------------------------- preparation
def build(b: Builder, cfg: LongRangeConfig, seed: int) -> None:
    b.set_vocab(vocabulary(cfg))
    b.manifest["longrange_config"] = dataclasses.asdict(cfg)
    for k, (split, n_docs) in enumerate((("train", cfg.train_docs), ("valid", cfg.valid_docs), ("test", cfg.test_docs))):
        split_seed = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
        tokens = generate(cfg, n_docs, split_seed)
        ann = annotate_tokens(tokens, cfg)
        for name in ANNOTATIONS:
            b.add_array(f"{split}.{name}", ann[name])
        b.add_split(split, tokens, np.arange(n_docs) * cfg.doc_len, source=f"generated seed={seed}",
                    word_count=None, floor_entropy_bits=float(ann["entropy"].mean()),
                    remention_tokens=int((ann["distance"] >= 0).sum()))


def prepare(data_dir: Path, seed: int, cfg: LongRangeConfig | None = None):
    cfg = cfg or LongRangeConfig()
    params = {"dataset": "longrange", "seed": seed, "config": dataclasses.asdict(cfg)}
    return load_or_build(data_dir, "longrange", "token", params, lambda b: build(b, cfg, seed))
