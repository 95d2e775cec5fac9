"""The `longrange-topic` corpus: one topic token per document, re-mentioned after `<ref>` at drawn gaps."""
import json
import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from text.data import LongRangeConfig, prepare_dataset
from text.data import longrange as lr
from text_data_fixtures import no_download  # noqa: F401

TINY = LongRangeConfig(mode="topic", n_filler=2, n_name=2, doc_len=10, filler_branching=2,
                       gap_edges=(2, 4, 6), gap_weights=(0.7, 0.3), train_docs=1, valid_docs=1, test_docs=1)


def story(cfg):
    """Every complete document of the topic story with its probability, enumerated from the module
    docstring's description (independently of the generator and the annotator)."""
    T = lr.filler_matrix(cfg)
    e, w = cfg.gap_edges, np.asarray(cfg.gap_weights) / sum(cfg.gap_weights)
    gaps = {g: w[k] / (e[k + 1] - e[k]) for k in range(len(w)) for g in range(e[k], e[k + 1])}
    out = {}

    def fillers(seq, p, f, k, then):
        if k == 0 or len(seq) >= cfg.doc_len:
            return then(seq, p, f)
        for g in range(cfg.n_filler):
            if T[f, g] > 0:
                fillers(seq + [lr.N_SPECIAL + g], p * T[f, g], g, k - 1, then)

    def mentions(topic):
        def step(seq, p, f):
            if len(seq) >= cfg.doc_len:
                key = tuple(seq[:cfg.doc_len])
                out[key] = out.get(key, 0.0) + p
                return
            for g, q in gaps.items():
                fillers(seq, p * q, f, g - 2, lambda s, pp, ff: step(s + [lr.REF, topic], pp, ff))
        return step

    for t in range(cfg.n_name):
        mentions(cfg.name_base + t)([lr.DOC, lr.INTRO, cfg.name_base + t], 1.0 / cfg.n_name, cfg.n_filler)
    return out


@pytest.fixture(scope="module")
def tiny_story():
    return story(TINY)


def test_story_is_a_distribution(tiny_story):
    assert sum(tiny_story.values()) == pytest.approx(1.0, abs=1e-9) and len(tiny_story) > 20


def conditionals(docs: dict) -> dict:
    """{prefix: {next token: P(next | prefix)}} of a distribution over whole documents."""
    mass = defaultdict(lambda: defaultdict(float))
    for seq, p in docs.items():
        for t in range(len(seq)):
            mass[seq[:t]][seq[t]] += p
    return {k: {x: q / sum(v.values()) for x, q in v.items()} for k, v in mass.items()}


def test_entropy_floor_matches_brute_force(tiny_story):
    cond = conditionals(tiny_story)
    ann = {seq: lr.annotate_tokens(np.array(seq), TINY) for seq in tiny_story}
    got = np.array([(a["entropy"][t], a["surprisal"][t]) for seq, a in ann.items() for t in range(1, len(seq))])
    want = np.array([(-sum(q * math.log2(q) for q in cond[seq[:t]].values()), -math.log2(cond[seq[:t]][seq[t]]))
                     for seq in ann for t in range(1, len(seq))])
    assert len(got) > 100
    np.testing.assert_allclose(got, want, atol=1e-5)
    # summed floors = the joint entropy of a document
    joint = -sum(p * math.log2(p) for p in tiny_story.values())
    assert sum(p * ann[s]["entropy"].sum() for s, p in tiny_story.items()) == pytest.approx(joint, rel=1e-5)


def test_generator_samples_the_story(tiny_story):
    n = 20000
    seen = Counter(map(tuple, lr.generate(TINY, n, seed=3).reshape(n, TINY.doc_len).tolist()))
    assert set(seen) <= set(tiny_story), "the generator produced an impossible document"
    p = np.array([q for q in tiny_story.values() if q > 0.005])
    freq = np.array([seen[d] / n for d, q in tiny_story.items() if q > 0.005])
    assert len(p) > 10 and np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n)), np.abs(freq - p).max()


def test_deterministic_by_seed_and_spec():
    cfg = lr.TOPIC_DEFAULT
    a, b, c = lr.generate(cfg, 3, 7), lr.generate(cfg, 3, 7), lr.generate(cfg, 3, 8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert lr.topic_config(LongRangeConfig(n_name=64)).mode == "topic" and lr.topic_config() == cfg
    with pytest.raises(ValueError, match="<intro>"):
        lr.annotate_tokens(np.where(a == lr.INTRO, lr.REF, a), cfg)
    for bad in ({"gap_edges": (1, 8)}, {"gap_edges": (8, 8, 9)}, {"gap_weights": (1.0,)}, {"mode": "topics"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LongRangeConfig(**{**lr.dataclasses.asdict(cfg), **bad})


def test_gaps_land_in_the_intended_buckets():
    cfg = lr.TOPIC_DEFAULT
    tok = lr.generate(cfg, 64, seed=1)
    ann = lr.annotate_tokens(tok, cfg)
    dist, pos = ann["distance"], np.flatnonzero(ann["distance"] >= 0)
    assert len(pos) > 400
    assert np.all(tok[pos - 1] == lr.REF) and np.all(ann["entropy"][pos] == 0)
    refs = np.flatnonzero(tok == lr.REF)
    assert np.array_equal(pos, refs[refs % cfg.doc_len != cfg.doc_len - 1] + 1)   # a document may end on <ref>
    for t in pos.tolist():
        d = int(dist[t])
        assert tok[t - d] == tok[t] and not np.any(tok[t - d + 1:t] >= cfg.name_base)  # the previous mention
    assert dist[pos].min() >= 8 and dist[pos].max() < 1024
    # the bucket shares follow the weights (long gaps a little rarer: documents end mid-gap)
    hist = np.histogram(dist[pos], bins=list(cfg.gap_edges))[0] / len(pos)
    assert np.all(np.abs(hist - np.array(cfg.gap_weights)) < 0.08), hist
    assert hist[3] + hist[4] > 0.07       # a good share beyond a TXL's one-layer reach of 256


def test_prepared_dataset_and_bucket_report(tmp_path):
    cfg = lr.dataclasses.replace(lr.TOPIC_DEFAULT, gap_weights=(0.4, 0.15, 0.1, 0.25, 0.1), train_docs=4, valid_docs=2,
                                 test_docs=4)
    ds = prepare_dataset("longrange-topic", tmp_path, seed=5, longrange=cfg)
    assert ds.name == "longrange-topic" and ds.vocab.size == 3 + 61 + 64
    assert prepare_dataset("longrange", tmp_path, seed=5, longrange=cfg).path == ds.path   # mode decides
    ann = lr.annotate(ds, "test")
    assert ds.manifest["splits"]["test"]["floor_entropy_bits"] == pytest.approx(float(ann["entropy"].mean()))
    positions = np.arange(1, len(ds.split("test")))
    perfect = ann["surprisal"][positions].astype(np.float64) * math.log(2)
    dist = ann["distance"][positions]
    # a fake model: perfect, except that it forgets topics beyond 256 tokens (6 bits each)
    fake = np.where(dist >= 256, math.log(64), perfect)
    rep = lr.bucket_report(fake, positions, ann)
    json.dumps(rep)
    assert [b["lo"] for b in rep["buckets"]] == [8, 64, 192, 320, 640] and rep["buckets"][-1]["hi"] is None
    assert rep["forgotten_name_bits"] == 6.0
    assert sum(b["tokens"] for b in rep["buckets"]) == rep["remention"]["tokens"] == int((dist >= 0).sum())
    by = {b["lo"]: b for b in rep["buckets"]}
    assert by[8]["bits"] == by[64]["bits"] == 0.0
    assert by[320]["bits"] == pytest.approx(6.0) and by[640]["bits"] == pytest.approx(6.0)
    mid = dist[(dist >= 192) & (dist < 320)]                 # this bucket straddles the reach
    assert by[192]["tokens"] == len(mid) > 0 and by[192]["bits"] == pytest.approx(6.0 * np.mean(mid >= 256))
    assert rep["overall"]["floor_entropy_bits"] == pytest.approx(float(ann["entropy"][positions].mean()), rel=1e-6)


def test_cpu_topic_pair_has_equal_attention_cost():
    from core.run import load_config
    from text.config import TextConfig

    ct, txl = load_config(TextConfig, "text", "cpu-topic"), load_config(TextConfig, "text", "cpu-topic-txl")
    assert ct.data.dataset == txl.data.dataset == "longrange-topic" and ct.data.longrange == txl.data.longrange
    assert ct.data.longrange.mode == "topic" and ct.model.name == "compressive" and txl.model.name == "transformerxl"
    assert txl.model.mem_len == ct.model.mem_len + ct.model.cmem_len and txl.model.cmem_len == 0
    unused = ("mem_len", "cmem_len", "compression")
    same = lambda m: {k: v for k, v in lr.dataclasses.asdict(m).items() if k not in unused}
    assert same(ct.model) == same(txl.model) and ct.model.compression == "mean_pool"   # unused without cmem
    assert ct.train == txl.train and ct.data.window == txl.data.window
    assert ct.data.longrange == lr.TOPIC_DEFAULT        # `ctbench text prepare longrange-topic` makes this corpus
