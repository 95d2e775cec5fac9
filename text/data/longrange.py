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

`mode = "topic"` (the `longrange-topic` corpus) tells a second story, one that a one-step content lookup
solves (no induction circuit: the query is the `<ref>` marker, the key is "a topic token"):
  * position 0 is `<doc>`, position 1 `<intro>`, position 2 the document's ONE topic token, uniform over
    the `n_name` name tokens (log2 n_name bits to a model that cannot see it);
  * then, repeatedly: a gap g is drawn (a bucket [gap_edges[k], gap_edges[k+1]) with weight
    gap_weights[k], g uniform inside it), g - 2 filler tokens from the same Markov source, `<ref>` and the
    topic token again, g tokens after the previous topic token; the document is cut at `doc_len`.
The `<ref>` marker's probability at a free step is the gap distribution's hazard given the steps since the
last mention, so the floor stays exact; the topic after `<ref>` is certain given the past, and its
distance is g, the gap to the most recent mention (the nearest copy a model can read).

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
MODES = ("entity", "topic")
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
    # mode "topic" (`longrange-topic`): one topic per document, re-mentioned at gaps drawn from buckets
    # (p_intro, p_ref, name_len, max_entities and recency_alpha are then unused; n_name = topic tokens)
    mode: str = "entity"
    gap_edges: tuple[int, ...] = (8, 64, 192, 320, 640, 1024)
    gap_weights: tuple[float, ...] = (0.7, 0.1, 0.05, 0.1, 0.05)

    def __post_init__(self):
        checks = {
            "n_filler": self.n_filler >= 1,
            "n_name": self.n_name >= (self.max_entities if self.mode == "entity" else 1),
            "name_len": self.name_len >= 1, "doc_len": self.doc_len >= 2, "max_entities": self.max_entities >= 1,
            "p_intro": 0 < self.p_intro < 1, "p_ref": 0 <= self.p_ref < 1 and self.p_intro + self.p_ref < 1,
            "filler_branching": 1 <= self.filler_branching <= self.n_filler,
            "train_docs": self.train_docs >= 1, "valid_docs": self.valid_docs >= 1, "test_docs": self.test_docs >= 1,
            "mode": self.mode in MODES,
        }
        if self.mode == "topic":
            e, w = list(self.gap_edges), list(self.gap_weights)
            checks["gap_edges"] = len(e) >= 2 and e[0] >= 2 and all(a < b for a, b in zip(e, e[1:]))
            checks["gap_weights"] = len(w) == len(e) - 1 and min(w, default=-1) >= 0 and sum(w) > 0
            checks["doc_len"] = self.doc_len >= 3
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
def _filler_walker(cfg: LongRangeConfig):
    """walk(rnd, f, k, doc) -> f: appends k filler tokens of the Markov chain from state f to `doc`."""
    T = filler_matrix(cfg)
    succ = [np.flatnonzero(row).tolist() for row in T]
    cum = [np.cumsum(row[np.flatnonzero(row)]).tolist() for row in T]
    for c in cum:
        c[-1] = 1.0  # guard against rounding leaving u >= cum[-1]

    def walk(rnd: random.Random, f: int, k: int, doc: list) -> int:
        for _ in range(k):
            f = succ[f][bisect_right(cum[f], rnd.random())]
            doc.append(N_SPECIAL + f)
        return f
    return walk


def gap_probs(cfg: LongRangeConfig) -> np.ndarray:
    """[gap_edges[-1]] P(gap = g) of the topic story (zero below gap_edges[0])."""
    e, w = cfg.gap_edges, np.asarray(cfg.gap_weights, dtype=np.float64)
    w = w / w.sum()
    p = np.zeros(e[-1])
    for k in range(len(w)):
        p[e[k]:e[k + 1]] = w[k] / (e[k + 1] - e[k])
    return p


def generate(cfg: LongRangeConfig, n_docs: int, seed: int) -> np.ndarray:
    """[n_docs * doc_len] token ids following the story of `cfg.mode` in the module docstring."""
    return (_generate_topic if cfg.mode == "topic" else _generate_entity)(cfg, n_docs, seed)


def _generate_topic(cfg: LongRangeConfig, n_docs: int, seed: int) -> np.ndarray:
    rnd = random.Random(seed)
    walk = _filler_walker(cfg)
    gap_cum = np.cumsum(gap_probs(cfg)).tolist()
    gap_cum[-1] = 1.0
    n_doc = cfg.doc_len
    out = np.empty(n_docs * n_doc, dtype=np.int64)
    for d in range(n_docs):
        topic = cfg.name_base + rnd.randrange(cfg.n_name)
        doc = [DOC, INTRO, topic]
        f = cfg.n_filler
        while len(doc) < n_doc:
            g = bisect_right(gap_cum, rnd.random())
            f = walk(rnd, f, min(g - 2, n_doc - len(doc)), doc)
            doc += [REF, topic]
        out[d * n_doc:(d + 1) * n_doc] = doc[:n_doc]
    return out


def _generate_entity(cfg: LongRangeConfig, n_docs: int, seed: int) -> np.ndarray:
    """[n_docs * doc_len] token ids following the story in the module docstring.

    Equivalent to deciding each free step in turn, but faster: the number of filler tokens before the
    next event is geometric (the event probability only changes at events), and fillers form one Markov
    chain per document because names do not move the chain's state.
    """
    rnd = random.Random(seed)
    walk = _filler_walker(cfg)
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
            f = walk(rnd, f, k, doc)
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
    is_intro, is_ref = tok == INTRO, tok == REF
    is_fill = (tok >= N_SPECIAL) & (tok < base)
    f_prev = _last_before(is_fill, in_doc, tok - N_SPECIAL, cfg.n_filler)  # previous filler state
    if cfg.mode == "topic":
        return _annotate_topic(tok, cfg, T, in_doc, is_fill, is_ref, f_prev)
    free_h, lp_i, lp_r, lp_f = _free_step_tables(cfg, T)

    # m before each position: <intro> markers since the document start, not counting the current one
    c = np.cumsum(is_intro)
    m = c - is_intro - (c - is_intro)[pos - in_doc]

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


def _last_before(mask: np.ndarray, in_doc: np.ndarray, values: np.ndarray, empty):
    """[N] values[s] at the last position s < t of the same document with mask[s] (`empty` if none)."""
    pos = np.arange(len(mask))
    last = np.where(mask, pos, -1)
    last[in_doc == 0] = pos[in_doc == 0]  # a barrier at each <doc>
    last = np.maximum.accumulate(last)
    prev = np.concatenate([[0], last[:-1]])
    return np.where(mask[prev] & (in_doc > 0), values[prev], empty)


def _annotate_topic(tok, cfg: LongRangeConfig, T, in_doc, is_fill, is_ref, f_prev) -> dict:
    """`annotate_tokens` for the topic story: a free step (filler or `<ref>`) j tokens after the last
    topic token is `<ref>` with the gap's hazard h_j = P(g = j+1 | g >= j+1), else filler."""
    N, base = len(tok), cfg.name_base
    pos = np.arange(N)
    is_topic = tok >= base
    head = in_doc < 3
    want = np.array([DOC, INTRO, -1])[in_doc[head]]
    if np.any((tok[head] != want) & (want >= 0)) or np.any(~is_topic[head & (in_doc == 2)]):
        raise ValueError("longrange-topic stream: every document must open with <doc> <intro> TOPIC")
    p = gap_probs(cfg)
    surv = p[::-1].cumsum()[::-1]                      # surv[g] = P(gap >= g)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(surv > 0, p / surv, 1.0)     # hazard[g] = P(gap = g | gap >= g)
    hazard = np.append(hazard, 1.0)
    last_topic = _last_before(is_topic, in_doc, pos, -1)
    h = hazard[np.clip(pos - last_topic + 1, 0, len(hazard) - 1)]   # a `<ref>` here closes a gap of j + 1

    def xlog2(x):
        return np.where(x > 0, x * np.log2(np.where(x > 0, x, 1.0)), 0.0)

    hT = -xlog2(T).sum(axis=1)                         # [F+1] entropy of the filler after each state
    free = (is_fill | is_ref) & ~head
    entropy = np.zeros(N)
    surprisal = np.zeros(N)
    entropy[free] = (-xlog2(h) - xlog2(1 - h) + (1 - h) * hT[f_prev])[free]
    with np.errstate(divide="ignore"):
        surprisal[is_ref] = -np.log2(h[is_ref])
        fill = is_fill & ~head
        surprisal[fill] = -np.log2(1 - h[fill]) - np.log2(T[f_prev[fill], tok[fill] - N_SPECIAL])
    intro_topic = head & (in_doc == 2)
    entropy[intro_topic] = surprisal[intro_topic] = math.log2(cfg.n_name)
    distance = np.full(N, -1, dtype=np.int64)
    mention = is_topic & ~head
    distance[mention] = (pos - last_topic)[mention]
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
    1024, 4096; for the topic story its gap buckets). n_name: name token types, for `forgotten_name_bits`
    (default: from the annotations' config). Returns a JSON-serialisable dict (RUN_DIR/analysis/longrange.json).
    """
    n_name = n_name or (annotations.get("config") or {}).get("n_name")
    loss_bits = np.asarray(loss_nats, dtype=np.float64) / LN2
    pos = np.asarray(positions, dtype=np.int64)
    dist = np.asarray(annotations["distance"])[pos]
    ent = np.asarray(annotations["entropy"], dtype=np.float64)[pos]
    sur = np.asarray(annotations["surprisal"], dtype=np.float64)[pos]
    config = annotations.get("config") or {}
    edges = list(buckets or (config["gap_edges"][:-1] if config.get("mode") == "topic" else DEFAULT_BUCKETS))

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
                "re-mention (topic story: the topic token after <ref>), bucketed by distance to the previous "
                "mention",
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


# The `longrange-topic` corpus's defaults (= the cpu-topic presets'): 64 topics (6 bits forgotten), ~14 mentions
# per 2,048 tokens.
TOPIC_DEFAULT = LongRangeConfig(mode="topic", n_name=64, doc_len=2048, train_docs=256, valid_docs=16, test_docs=48)


def topic_config(cfg: LongRangeConfig | None = None) -> LongRangeConfig:
    """The `longrange-topic` spec's configuration: `cfg` in topic mode (TOPIC_DEFAULT when None)."""
    return TOPIC_DEFAULT if cfg is None else dataclasses.replace(cfg, mode="topic")


def prepare(data_dir: Path, seed: int, cfg: LongRangeConfig | None = None):
    cfg = cfg or LongRangeConfig()
    name = "longrange-topic" if cfg.mode == "topic" else "longrange"
    params = {"dataset": name, "seed": seed, "config": dataclasses.asdict(cfg)}
    return load_or_build(data_dir, name, "token", params, lambda b: build(b, cfg, seed))
