import json
import math
from collections import defaultdict

import numpy as np
import pytest

from text.data import LongRangeConfig, prepare_dataset
from text.data import longrange as lr
from text_data_fixtures import no_download  # noqa: F401

TINY = LongRangeConfig(n_filler=2, n_name=3, name_len=2, doc_len=7, max_entities=2, p_intro=0.3, p_ref=0.25,
                       recency_alpha=1.0, filler_branching=2, train_docs=1, valid_docs=1, test_docs=1)


def story(cfg):
    """Every complete document the story can produce, with its probability, enumerated from the
    module docstring's description (independently of the generator and the annotator)."""
    T = lr.filler_matrix(cfg)
    E, base, L = cfg.n_name, cfg.name_base, cfg.name_len
    out = {}

    def add(seq, p):
        key = tuple(seq[:cfg.doc_len])
        out[key] = out.get(key, 0.0) + p

    def free(seq, p, f, recency, used):
        if len(seq) >= cfg.doc_len:
            return add(seq, p)
        m = len(recency)
        p_i = cfg.p_intro if m < cfg.max_entities else 0.0
        p_r = cfg.p_ref if m >= 1 else 0.0
        if p_i:
            unused = [t for t in range(E) if t not in used]
            for first in unused:
                for rest in np.ndindex(*([E] * (L - 1))):
                    name = [base + first] + [base + t for t in rest]
                    q = p * p_i / len(unused) / E ** (L - 1)
                    free(seq + [lr.INTRO] + name, q, f, [name] + recency, used | {first})
        if p_r:
            w = np.array([(r + 1.0) ** -cfg.recency_alpha for r in range(m)])
            w /= w.sum()
            for r in range(m):
                name = recency[r]
                free(seq + [lr.REF] + name, p * p_r * w[r], f, [name] + recency[:r] + recency[r + 1:], used)
        for g in range(cfg.n_filler):
            if T[f, g] > 0:
                free(seq + [lr.N_SPECIAL + g], p * (1 - p_i - p_r) * T[f, g], g, recency, used)

    free([lr.DOC], 1.0, cfg.n_filler, [], frozenset())
    return out


@pytest.fixture(scope="module")
def tiny_story():
    docs = story(TINY)
    assert abs(sum(docs.values()) - 1.0) < 1e-9
    return docs


def test_entropy_floor_matches_brute_force(tiny_story):
    prefix = defaultdict(float)
    for seq, p in tiny_story.items():
        for t in range(len(seq) + 1):
            prefix[seq[:t]] += p
    children = defaultdict(list)
    for s in prefix:
        if s:
            children[s[:-1]].append(prefix[s])
    checked = 0
    for seq, p in tiny_story.items():
        ann = lr.annotate_tokens(np.array(seq), TINY)
        for t in range(1, len(seq)):
            nxt = [q / prefix[seq[:t]] for q in children[seq[:t]]]
            h = -sum(q * math.log2(q) for q in nxt if q > 0)
            assert ann["entropy"][t] == pytest.approx(h, abs=1e-5)
            assert ann["surprisal"][t] == pytest.approx(-math.log2(prefix[seq[:t + 1]] / prefix[seq[:t]]), abs=1e-5)
            checked += 1
    assert checked > 100
    # summed floors = the joint entropy of a document
    joint = -sum(p * math.log2(p) for p in tiny_story.values())
    expected = sum(p * lr.annotate_tokens(np.array(s), TINY)["entropy"].sum() for s, p in tiny_story.items())
    assert expected == pytest.approx(joint, rel=1e-5)


def test_generator_samples_the_story(tiny_story):
    n = 20000
    docs = lr.generate(TINY, n, seed=3).reshape(n, TINY.doc_len)
    counts = defaultdict(int)
    for d in map(tuple, docs.tolist()):
        assert d in tiny_story, f"generator produced an impossible document {d}"
        counts[d] += 1
    for seq, p in tiny_story.items():
        if p > 0.005:
            sd = math.sqrt(p * (1 - p) / n)
            assert abs(counts[seq] / n - p) < 5 * sd + 1e-9, (seq, counts[seq] / n, p)
    # mean surprisal of the samples = the story's entropy (cross-entropy of the true model)
    joint = -sum(p * math.log2(p) for p in tiny_story.values())
    mean_sur = float(lr.annotate_tokens(docs.reshape(-1), TINY)["surprisal"].sum() / n)
    assert mean_sur == pytest.approx(joint, rel=0.03)


def test_deterministic_by_seed_and_multi_document_annotation():
    cfg = LongRangeConfig(doc_len=1024, train_docs=2, valid_docs=1, test_docs=1)
    a, b, c = lr.generate(cfg, 4, 7), lr.generate(cfg, 4, 7), lr.generate(cfg, 4, 8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    whole = lr.annotate_tokens(a, cfg)
    for d in range(4):
        part = lr.annotate_tokens(a[d * 1024:(d + 1) * 1024], cfg)
        for k in lr.ANNOTATIONS:
            assert np.array_equal(whole[k][d * 1024:(d + 1) * 1024], part[k])
    with pytest.raises(ValueError, match="<doc>"):
        lr.annotate_tokens(a[1:], cfg)


def test_distances_are_exact_and_cover_the_buckets():
    cfg = LongRangeConfig()
    tok = lr.generate(cfg, 24, seed=1)
    ann = lr.annotate_tokens(tok, cfg)
    dist = ann["distance"]
    pos = np.flatnonzero(dist >= 0)
    assert len(pos) > 1000
    markers = set(np.flatnonzero((tok == lr.INTRO) | (tok == lr.REF)).tolist())
    for t in pos[::7].tolist():
        d = int(dist[t])
        assert tok[t - d] == tok[t]                       # the same token at the previous mention
        s = max(p for p in markers if p < t)              # this mention's marker
        assert tok[s] == lr.REF and (s - d) in markers    # previous mention starts d tokens earlier
        between = [p for p in markers if s - d < p < s and tok[p + 1] == tok[s + 1]]
        assert not between                                # and it is the most recent one
    assert np.all(ann["entropy"][pos] == 0)               # certain given the past
    # a TransformerXL of memory 128-256 misses the upper buckets, a compressed memory reaches them
    hist = np.histogram(dist[pos], bins=list(lr.DEFAULT_BUCKETS))[0] / len(pos)
    assert np.all(hist > 0.05), hist


def test_prepared_dataset_and_bucket_report(tmp_path):
    cfg = LongRangeConfig(doc_len=2048, train_docs=4, valid_docs=2, test_docs=2)
    ds = prepare_dataset("longrange", tmp_path / "a", seed=5, longrange=cfg)
    ds2 = prepare_dataset("longrange", tmp_path / "b", seed=5, longrange=cfg)
    assert ds.unit == "token" and ds.vocab.size == cfg.vocab_size == 256 and not ds.partial
    for split in ("train", "valid", "test"):
        assert np.array_equal(ds.split(split), ds2.split(split))
    assert np.array_equal(ds.doc_starts("test"), [0, 2048])
    assert ds.word_count("test") is None
    ann = lr.annotate(ds, "test")
    assert np.array_equal(ann["distance"], lr.annotate(np.asarray(ds.split("test")), "test", cfg)["distance"])
    assert ds.manifest["splits"]["test"]["floor_entropy_bits"] == pytest.approx(float(ann["entropy"].mean()))

    positions = np.arange(1, len(ds.split("test")))
    perfect = ann["surprisal"][positions].astype(np.float64) * math.log(2)
    rep = lr.bucket_report(perfect, positions, ann)
    json.dumps(rep)
    assert rep["overall"]["bits"] == pytest.approx(rep["overall"]["floor_surprisal_bits"], rel=1e-6)
    assert sum(b["tokens"] for b in rep["buckets"]) == rep["remention"]["tokens"] > 0
    # a model that forgets names beyond 256 tokens pays log2(n_name) bits there and nothing below
    dist = ann["distance"][positions]
    forgetful = np.where(dist >= 256, math.log(cfg.n_name), perfect)
    rep = lr.bucket_report(forgetful, positions, ann)
    assert rep["forgotten_name_bits"] == pytest.approx(math.log2(cfg.n_name))
    by = {b["lo"]: b for b in rep["buckets"]}
    assert by[64]["bits"] == pytest.approx(0.0, abs=1e-6)
    assert by[512]["bits"] == pytest.approx(math.log2(cfg.n_name))
    assert by[4096]["tokens"] == 0 and by[4096]["bits"] is None
    assert lr.bucket_report(perfect, positions, {**ann, "config": None}, n_name=64)["forgotten_name_bits"] == 6.0


def test_concurrent_preparations_build_once(tmp_path, monkeypatch):
    import threading

    cfg = LongRangeConfig(doc_len=512, train_docs=2, valid_docs=1, test_docs=1)
    builds, real = [], lr.build
    monkeypatch.setattr(lr, "build", lambda b, c, s: (builds.append(1), real(b, c, s)))
    out = []
    threads = [threading.Thread(target=lambda: out.append(prepare_dataset("longrange", tmp_path, longrange=cfg)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 3 and len({d.path for d in out}) == 1 and len(builds) == 1
