import math

import numpy as np
import pandas as pd
import pytest

from analysis import paper, rules, tables
from analysis.runs import load_runs
from analysis.tables import MissingInput, bucket_edges, frequency_buckets
from analysis_fixtures import make_run

COUNTS = np.array([20_000, 5_000, 500, 10])     # one word per Table 7 bucket, at WikiText-103 scale


def token_losses(ppls, counts=COUNTS, reps=5):
    """Per-token losses whose bucket perplexities are exactly `ppls` (one value per count)."""
    loss = np.repeat(np.log(np.asarray(ppls, dtype=np.float64)), reps).astype(np.float32)
    return {"loss": loss, "token": np.arange(len(loss)), "position": np.arange(len(loss)),
            "train_count": np.repeat(counts, reps)}


def word_run(root, name, model, ppls, counts=COUNTS, **kw):
    return make_run(root, name, model=model, dataset="wikitext103", metric="ppl", value=float(np.mean(ppls)),
                    analysis={"token_losses.npz": token_losses(ppls, counts)}, **kw)


def test_headline_puts_paper_numbers_beside_ours_and_gives_one_seed_no_verdict(tmp_path):
    make_run(tmp_path, "ct", dataset="enwik8", value=1.30)
    make_run(tmp_path, "txl", model="transformerxl", dataset="enwik8", value=1.25, mem_len=24)
    pairs, every = tables.headline(load_runs([tmp_path]))
    row = every.frame.set_index("model").loc["compressive c=3"]
    assert row["value"] == 1.30 and row["paper"] == 0.97 and "Table 4" in row["paper_source"]
    assert every.frame.set_index("model").loc["transformerxl", "paper"] == 0.98
    [p] = pairs.frame.to_dict("records")
    assert (p["CT"], p["TXL"], p["verdict"]) == ("1.3 (1 seed)", "1.25 (1 seed)", "1 seed: no verdict")
    assert p["CT advantage"] == pytest.approx(-0.05) and p["95% interval"] == "–"
    assert p["paired on test tokens"] == "no per-token file: unpaired"
    assert (p["paper CT"], p["paper TXL"], p["unit"]) == (0.97, 0.98, "bits per character")
    md = pairs.markdown()
    assert "| 0.97 |" in md and "123,456" in md and "42 s" in md


def seeded(root, name, seed, **kw):
    return make_run(root, name, config=f"[model]\nd_model = 32\n[train]\nseed = {seed}\nlr = 0.001\n", **kw)


@pytest.mark.parametrize("ct, txl, verdict", [
    ((1.20, 1.22, 1.21), (1.30, 1.31, 1.29), "reproduced"),
    ((1.40, 1.41, 1.39), (1.30, 1.31, 1.29), "NOT reproduced"),
    ((1.20, 1.40, 1.30), (1.30, 1.31, 1.29), "tie"),
])
def test_headline_verdict_by_rule_over_seeds(tmp_path, ct, txl, verdict):
    for seed, (c, t) in enumerate(zip(ct, txl)):
        seeded(tmp_path, f"ct{seed}", seed, dataset="enwik8", value=c)
        seeded(tmp_path, f"txl{seed}", seed, model="transformerxl", dataset="enwik8", value=t, mem_len=24)
    [p] = tables.headline(load_runs([tmp_path]))[0].frame.to_dict("records")
    diffs = np.array(txl) - np.array(ct)                       # paired by seed, lower bpc is better
    half = 4.302652729749462 * diffs.std(ddof=1) / np.sqrt(3)   # t(0.975, 2 df)
    assert p["verdict"] == verdict and p["CT advantage"] == pytest.approx(diffs.mean())
    assert p["95% interval"] == f"[{diffs.mean() - half:+.3g}, {diffs.mean() + half:+.3g}]"
    assert p["CT"] == f"{np.mean(ct):.4g} +- {np.std(ct, ddof=1):.2g} (3 seeds)"


def test_one_seed_on_either_side_gets_no_verdict():
    assert rules.verdict({0: 1.0, 1: 1.1}, {0: 2.0}, lower_better=True).label == "1 seed: no verdict"
    assert rules.verdict({0: 1.0}, {0: 2.0}, lower_better=True).label == "1 seed: no verdict"
    w = rules.verdict({0: 1.0, 1: 1.1, 2: 1.05}, {3: 2.0, 4: 2.1}, lower_better=True)   # other seeds: Welch
    assert w.label == "reproduced" and w.how == "Welch" and w.advantage == pytest.approx(2.05 - 1.05)


def test_t_quantile_matches_tables():
    assert rules.t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert rules.t_quantile(0.975, 4) == pytest.approx(2.7764, abs=1e-4)
    assert rules.t_quantile(0.975, 30) == pytest.approx(2.0423, abs=1e-4)


def test_headline_pairs_the_designated_ct_not_the_best_of_many(tmp_path):
    make_run(tmp_path, "ct-main", dataset="enwik8", value=1.30)
    make_run(tmp_path, "ct-maxpool", dataset="enwik8", value=1.10, compression="max_pool", compression_loss="none")
    make_run(tmp_path, "ct-other-mem", dataset="enwik8", value=1.00, mem_len=8)       # TXL memory != 8 + 8
    make_run(tmp_path, "txl", model="transformerxl", dataset="enwik8", value=1.25, mem_len=24)
    [p] = tables.headline(load_runs([tmp_path]))[0].frame.to_dict("records")
    assert p["CT runs"] == "ct-main" and p["TXL runs"] == "txl"


def test_headline_decides_on_log_loss_not_perplexity(tmp_path):
    make_run(tmp_path, "ct", dataset="wikitext2", metric="ppl", value=100.0, loss_nats=math.log(100.0))
    make_run(tmp_path, "txl", model="transformerxl", dataset="wikitext2", metric="ppl", value=110.0, mem_len=24)
    [p] = tables.headline(load_runs([tmp_path]))[0].frame.to_dict("records")
    assert p["unit"] == "bits per token" and p["CT advantage"] == pytest.approx(math.log2(110) - math.log2(100))


def test_paired_comparison_on_the_same_test_tokens(tmp_path):
    n = 64
    loss = np.linspace(1.0, 2.0, n).astype(np.float32)
    shift = np.where(np.arange(n) % 2 == 0, 0.2, 0.4).astype(np.float32)
    tl = lambda l: {"loss": l, "token": np.arange(n), "position": np.arange(n),   # noqa: E731
                    "doc": np.repeat(np.arange(4), n // 4)}
    make_run(tmp_path, "ct", value=1.0, analysis={"token_losses.npz": tl(loss)})
    make_run(tmp_path, "txl", model="transformerxl", value=1.2, mem_len=24, analysis={"token_losses.npz": tl(loss + shift)})
    [p] = tables.headline(load_runs([tmp_path]))[0].frame.to_dict("records")
    per_doc = (shift.astype(np.float64) / np.log(2)).reshape(4, -1).mean(axis=1)   # every doc: mean 0.3 nats
    m, lo, hi = rules.t_interval(per_doc)
    assert p["paired on test tokens"] == (f"paired on 64 tokens: {m:+.4g} bits per token, 95% interval "
                                          f"[{lo:+.4g}, {hi:+.4g}] over 4 documents")
    assert m == pytest.approx(0.3 / np.log(2), rel=1e-5)


def test_table7_buckets_ppl_and_relative_gain(tmp_path):
    word_run(tmp_path, "txl", "transformerxl", [8, 60, 200, 1000], train_tokens=paper.WIKITEXT103_TRAIN_TOKENS)
    word_run(tmp_path, "ct", "compressive", [7.6, 55, 150, 900], train_tokens=paper.WIKITEXT103_TRAIN_TOKENS)
    word_run(tmp_path, "lstm", "lstm", [12, 200, 1200, 9000], train_tokens=paper.WIKITEXT103_TRAIN_TOKENS)
    [t] = tables.table7(load_runs([tmp_path]))
    f = t.frame.set_index("row")
    assert f.loc["transformerxl (ours)", ">10K"] == pytest.approx(8, rel=1e-5)
    assert f.loc["compressive (ours)", "<100"] == pytest.approx(900, rel=1e-5)
    assert f.loc["lstm (ours)", "100-1K"] == pytest.approx(1200, rel=1e-5)
    assert f.loc["relative gain over TXL (ours)", "<100"] == pytest.approx(0.1, rel=1e-4)
    assert f.loc["relative gain over TXL (ours)", "100-1K"] == pytest.approx(0.25, rel=1e-4)
    # "All" is exp of the mean loss over every token, i.e. the geometric mean here
    assert f.loc["compressive (ours)", "All"] == pytest.approx(math.prod([7.6, 55, 150, 900]) ** 0.25, rel=1e-5)
    assert f.loc["tokens in bucket", ">10K"] == 5
    assert f.loc["compressive (paper)", "<100"] == 937 and f.loc["relative gain over TXL (paper)", "100-1K"] == 0.21
    assert list(f.index[:3]) == ["lstm (ours)", "transformerxl (ours)", "compressive (ours)"]
    assert any("rare words" in n and "1 seed: no verdict" in n and "<100 +10.0%" in n for n in t.notes)
    assert not any("scaled" in n for n in t.notes)


def test_table7_from_the_compact_per_bucket_file_equals_the_per_token_one(tmp_path):
    ppls = {"transformerxl": [8, 60, 200, 1000], "compressive": [7.6, 55, 150, 900]}
    for model, p in ppls.items():
        word_run(tmp_path / "npz", model, model, p, train_tokens=paper.WIKITEXT103_TRAIN_TOKENS,
                 mem_len=24 if model == "transformerxl" else 16)
        b = {k: {"tokens": 5, "nats": 5 * math.log(v)} for k, v in zip(paper.TABLE7_BUCKETS, p)}
        b["All"] = {"tokens": 20, "nats": sum(x["nats"] for x in b.values())}
        make_run(tmp_path / "json", model, model=model, dataset="wikitext103", metric="ppl", value=1.0,
                 mem_len=24 if model == "transformerxl" else 16, analysis={tables.FREQUENCY_FILE: {
                     "train_tokens": paper.WIKITEXT103_TRAIN_TOKENS, "buckets": b}})
    [a] = tables.table7(load_runs([tmp_path / "npz"]))
    [b] = tables.table7(load_runs([tmp_path / "json"]))
    pd.testing.assert_frame_equal(a.frame, b.frame, rtol=1e-5)   # the npz holds float32 losses
    assert any("no per-token file): unpaired" in n for n in b.notes)
    assert not any("unpaired" in n for n in a.notes)


def test_table7_scales_edges_with_corpus_size_and_says_so(tmp_path):
    small = paper.WIKITEXT103_TRAIN_TOKENS // 100           # edges become 100, 10, 1
    counts = np.array([200, 50, 5, 0])
    word_run(tmp_path, "txl", "transformerxl", [8, 60, 200, 1000], counts, train_tokens=small)
    [t] = tables.table7(load_runs([tmp_path]))
    f = t.frame.set_index("row")
    assert [f.loc["tokens in bucket", c] for c in (">10K", "1K-10K", "100-1K", "<100")] == [5, 5, 5, 5]
    assert f.loc["transformerxl (ours)", "1K-10K"] == pytest.approx(60, rel=1e-5)
    assert any("scaled by" in n and "0.01" in n for n in t.notes)
    assert "scaled by" in t.markdown()


def test_table7_without_train_tokens_estimates_the_corpus_size_and_says_so(tmp_path):
    d = word_run(tmp_path, "txl", "transformerxl", [8, 60, 200, 1000], counts=np.array([2000, 500, 50, 1]))
    [t] = tables.table7(load_runs([tmp_path]))
    # 4 distinct words (token ids 0..19 here are all distinct, 5 per count): 5 * (2000 + 500 + 50 + 1)
    assert any("estimated from the training counts" in n and "12,755 training tokens" in n for n in t.notes)
    np.savez(d / "analysis" / "token_losses.npz", loss=np.ones(3, np.float32), train_count=np.array([5, 5, 5]))
    [t] = tables.table7(load_runs([tmp_path]))          # no token ids: nothing to estimate from
    assert any("training-set size unknown" in n for n in t.notes)


def test_bucket_edges_and_boundaries():
    edges, scale = bucket_edges(paper.WIKITEXT103_TRAIN_TOKENS * 2)
    assert scale == 2 and edges == (20_000, 2_000, 200)
    b = frequency_buckets(np.zeros(4), np.array([10_000, 9_999, 100, 99]), (10_000, 1_000, 100))
    assert [b[k]["tokens"] for k in (">10K", "1K-10K", "100-1K", "<100", "All")] == [1, 1, 1, 1, 4]


def test_table5_lists_compressors_with_paper_bpc(tmp_path):
    make_run(tmp_path, "conv", dataset="enwik8", value=1.10)
    make_run(tmp_path, "maxp", dataset="enwik8", value=1.20, compression="max_pool", compression_loss="none")
    make_run(tmp_path, "ae", dataset="enwik8", value=1.15, compression_loss="auto-encoding")
    make_run(tmp_path, "txl", model="transformerxl", dataset="enwik8", value=1.0)    # not part of Table 5
    make_run(tmp_path, "books", dataset="books:x", metric="word_ppl", value=300.0)   # one setting: not a sweep
    t = tables.table5(load_runs([tmp_path]))
    f = t.frame.set_index("run")
    assert len(f) == 3
    assert f.loc["conv", "paper_bpc"] == 0.973 and f.loc["maxp", "paper_bpc"] == 0.986
    assert f.loc["ae", "compression_loss"] == "autoencoding" and f.loc["ae", "paper_bpc"] == 0.984
    assert list(f.index) == ["maxp", "ae", "conv"]        # worst to best, as the paper orders it
    assert "0.996" in t.markdown() and "params" in t.markdown()


def test_table5_rows_are_settings_averaged_over_seeds_without_schedule_variants(tmp_path):
    for seed, (conv, maxp) in enumerate([(1.10, 1.20), (1.12, 1.24)]):
        seeded = f"[train]\nseed = {seed}\n"
        make_run(tmp_path, f"conv{seed}", dataset="enwik8", value=conv, config=seeded)
        make_run(tmp_path, f"maxp{seed}", dataset="enwik8", value=maxp, compression="max_pool",
                 compression_loss="none", config=seeded)
    make_run(tmp_path, "conv-update4", dataset="enwik8", value=0.5, config="[train]\nupdate_every = 4\n")
    t = tables.table5(load_runs([tmp_path]))
    f = t.frame.set_index("compression")
    assert list(f.index) == ["max_pool", "conv"] and list(f.seeds) == [2, 2]
    assert f.loc["conv", "ours"] == pytest.approx(1.11) and f.loc["max_pool", "ours"] == pytest.approx(1.22)
    assert f.loc["conv", "std over seeds"] == pytest.approx(np.std([1.10, 1.12], ddof=1))
    assert f.loc["conv", "run"] == "conv0, conv1"
    assert any("left out" in n and "conv-update4" in n for n in t.notes)


def test_sweeps_need_two_sizes_and_show_paper_values(tmp_path):
    make_run(tmp_path, "e1", dataset="enwik8", cmem_len=1024, value=1.05)
    with pytest.raises(MissingInput, match="2\\+ memory sizes"):
        tables.sweeps(load_runs([tmp_path]))
    make_run(tmp_path, "e2", dataset="enwik8", cmem_len=3072, value=1.02)
    make_run(tmp_path, "e3", dataset="enwik8", cmem_len=500, value=1.07)
    [t] = tables.sweeps(load_runs([tmp_path]))
    f = t.frame.set_index("cmem_len")
    assert list(f.index) == [500, 1024, 3072]
    assert f.loc[3072, "paper"] == 0.97 and f.loc[1024, "paper"] == 0.99 and pd.isna(f.loc[500, "paper"])
    assert any("best ours: mem 16, cmem 3,072 -> 1.02" in n for n in t.notes)


LONGRANGE = {"buckets": [{"lo": 0, "hi": 64, "n": 100, "bits": 2.5, "floor_bits": 1.0},
                         {"lo": 64, "hi": 1024, "n": 80, "bits": 4.0, "floor_bits": 1.0},
                         {"lo": 1024, "hi": 4096, "n": 40, "bits": 6.0, "floor_bits": 1.0}],
             "overall_bits": 1.9, "entropy_floor": 1.2}


def test_longrange_table_compares_models_per_distance(tmp_path):
    make_run(tmp_path, "ct", analysis={"longrange.json": LONGRANGE})
    txl = {**LONGRANGE, "buckets": [{**b, "bits": b["bits"] + (0.5 if b["lo"] >= 1024 else -0.1)}
                                    for b in LONGRANGE["buckets"]], "overall_bits": 2.0}
    make_run(tmp_path, "txl", model="transformerxl", mem_len=24, window=64, analysis={"longrange.json": txl})
    t = tables.longrange(load_runs([tmp_path]))
    f = t.frame.set_index("bucket")
    assert f.loc["1024-4096", "compressive c=3"] == 6.0 and f.loc["1024-4096", "transformerxl"] == 6.5
    assert f.loc["0-64", "entropy floor"] == 1.0 and f.loc["all tokens", "entropy floor"] == 1.2
    assert f.loc["all tokens", "transformerxl"] == 2.0
    assert any(n.startswith("ct vs txl on re-mentions at distances >= 88") and "1 seed: no verdict (advantage +0.5 "
               in n for n in t.notes)     # buckets from 88 = 24 + 64 on: only 1024-4096


def test_longrange_bad_shape_names_file(tmp_path):
    make_run(tmp_path, "ct", analysis={"longrange.json": {"foo": 1}})
    with pytest.raises(ValueError, match=r"ct/analysis/longrange.json: no distance buckets"):
        tables.longrange(load_runs([tmp_path]))


def test_missing_inputs_raise_one_line_reasons(tmp_path):
    make_run(tmp_path, "speech", domain="speech", model="wavenet")
    runs = load_runs([tmp_path])
    for builder in (tables.table5, tables.table7, tables.sweeps, tables.longrange):
        with pytest.raises(MissingInput) as err:
            builder(runs)
        assert "\n" not in str(err.value) and len(str(err.value)) > 20


def _text_longrange(bits):
    """The shape text/data/longrange.py's bucket_report writes (open last bucket, floors, re-mentions)."""
    edges = [(0, 64), (64, 512), (512, None)]
    return {"overall": {"tokens": 1000, "bits": 2.0 + bits[0] / 10, "floor_entropy_bits": 1.5,
                        "floor_surprisal_bits": 1.49},
            "remention": {"tokens": 90, "bits": sum(bits) / 3, "floor_entropy_bits": 0.1, "floor_surprisal_bits": 0.1},
            "other": {"tokens": 910, "bits": 2.0, "floor_entropy_bits": 1.6, "floor_surprisal_bits": 1.6},
            "buckets": [{"lo": lo, "hi": hi, "tokens": 30, "bits": b, "floor_entropy_bits": 0.1,
                         "floor_surprisal_bits": 0.1} for (lo, hi), b in zip(edges, bits)],
            "forgotten_name_bits": 6.0, "note": "..."}


def test_longrange_reads_the_text_domain_format(tmp_path):
    make_run(tmp_path, "ct", analysis={"longrange.json": _text_longrange([0.5, 1.0, 2.0])})
    make_run(tmp_path, "txl", model="transformerxl", mem_len=24, analysis={"longrange.json": _text_longrange([0.5, 1.2, 6.0])})
    t = tables.longrange(load_runs([tmp_path]))
    f = t.frame.set_index("bucket")
    assert list(f.index) == ["0-64", "64-512", ">=512", "all re-mentions", "all tokens"]
    assert f.loc[">=512", "compressive c=3"] == 2.0 and f.loc[">=512", "transformerxl"] == 6.0
    assert f.loc["all tokens", "entropy floor"] == 1.5 and f.loc["all tokens", "n"] == 1000
    assert f.loc["all re-mentions", "transformerxl"] == pytest.approx(7.7 / 3)
    assert any("distances >= 24" in n and "advantage +2.1 bits" in n for n in t.notes)   # (0.2 + 4) / 2
    assert any("about 6 bits per name token" in n for n in t.notes)


def test_table5_leaves_out_evaluations_at_other_memory_sizes(tmp_path):
    make_run(tmp_path, "ct", value=1.1, train_mem_len=16, train_cmem_len=8)
    make_run(tmp_path, "ct_cmem32", value=1.0, cmem_len=32, train_mem_len=16, train_cmem_len=8)
    make_run(tmp_path, "bptt", value=1.3, compression_loss="bptt", split="valid")
    t = tables.table5(load_runs([tmp_path]))
    assert sorted(t.frame.run) == ["bptt", "ct"]
    assert any("different splits" in n for n in t.notes)
    [sweep] = tables.sweeps(load_runs([tmp_path]))        # the bptt model is another model: not in the sweep
    assert sorted(sweep.frame.run) == ["ct", "ct_cmem32"]


def test_scale_shows_hardware_and_wall_time(tmp_path):
    make_run(tmp_path, "big", device="NVIDIA H100", world_size=8, wall_time_s=7200 * 3, tokens_seen=10**9)
    s = tables.scale_frame(load_runs([tmp_path])).iloc[0]
    assert s["device"] == "8 x NVIDIA H100" and s["wall_time"] == "6.0 h" and s["tokens_seen"] == 10**9


def test_sweeps_keep_differently_trained_models_apart(tmp_path):
    cfg = "[model]\nd_model = 32\n[train]\nupdate_every = 1\n"
    make_run(tmp_path, "ct", config=cfg, value=1.1)
    make_run(tmp_path, "ct_cmem32", config=cfg, value=1.0, cmem_len=32)
    make_run(tmp_path, "ct_every4", config=cfg.replace("= 1", "= 4"), value=1.05, cmem_len=32)
    [sweep] = tables.sweeps(load_runs([tmp_path]))
    assert sorted(sweep.frame.run) == ["ct", "ct_cmem32"]


def test_longrange_makes_one_table_per_corpus(tmp_path):
    make_run(tmp_path, "ct", analysis={"longrange.json": _text_longrange([0.5, 1.0, 2.0])})
    make_run(tmp_path, "txl", model="transformerxl", mem_len=24, analysis={"longrange.json": _text_longrange([0.5, 1.2, 6.0])})
    make_run(tmp_path, "topic-ct", dataset="longrange-topic",
             analysis={"longrange.json": _text_longrange([3.0, 5.0, 6.6])})
    made = tables.longrange(load_runs([tmp_path]))
    assert [t.name for t in made] == ["longrange", "longrange_longrange-topic"]
    topic = made[1].frame.set_index("bucket")
    assert list(topic.columns) == ["n", "compressive c=3", "entropy floor"]
    assert topic.loc[">=512", "compressive c=3"] == 6.6
    assert any("1 seed: no verdict" in n for n in made[0].notes)
    assert not any("no verdict" in n for n in made[1].notes)      # no TXL on the topic corpus: no comparison


def test_paper_citation_has_every_author():
    assert paper.CITATION.startswith("Rae, Potapenko, Jayakumar, Hillier, Lillicrap.")


def test_rare_word_claim_is_judged_in_bits_over_seeds(tmp_path):
    for seed, (ct_rare, ct_freq) in enumerate(((800, 7.9), (820, 7.95), (790, 7.9))):
        cfg = f"[model]\nd_model = 32\n[train]\nseed = {seed}\n"
        tt = paper.WIKITEXT103_TRAIN_TOKENS
        word_run(tmp_path, f"txl{seed}", "transformerxl", [8, 60, 200, 1000], mem_len=24, config=cfg, train_tokens=tt)
        word_run(tmp_path, f"ct{seed}", "compressive", [ct_freq, 60, 200, ct_rare], config=cfg, train_tokens=tt)
    [t] = tables.table7(load_runs([tmp_path]))
    note = next(n for n in t.notes if "rare words" in n)
    adv_rare = np.log2(1000 / np.array([800, 820, 790]))
    adv_freq = np.log2(8 / np.array([7.9, 7.95, 7.9]))
    v = rules.verdict(dict(enumerate(adv_rare)), dict(enumerate(adv_freq)), lower_better=False)
    assert v.label == "reproduced" and note.startswith("paper's claim (larger gain on rare words than on frequent "
                                                       "ones): reproduced")
    assert note.endswith("paired by seed)")
    # the rows pool the seeds: exp(total nats / total tokens), i.e. the geometric mean of equal-sized buckets
    f = t.frame.set_index("row")
    assert f.loc["compressive (ours, 3 seeds pooled)", "<100"] == pytest.approx((800 * 820 * 790) ** (1 / 3), rel=1e-5)
    assert f.loc["transformerxl (ours, 3 seeds pooled)", ">10K"] == pytest.approx(8, rel=1e-5)
    assert f.loc["tokens in bucket", "<100"] == 5                          # per seed, not summed over seeds


def test_sweeps_of_several_seeds_are_named_by_their_trained_run(tmp_path):
    for seed in (0, 1):
        cfg = f"[train]\nseed = {seed}\n"
        make_run(tmp_path, f"ct-s{seed}", dataset="enwik8", value=1.0, config=cfg, train_mem_len=16, train_cmem_len=8)
        make_run(tmp_path, f"ct-s{seed}-cmem0", dataset="enwik8", value=1.1, cmem_len=0, config=cfg,
                 train_mem_len=16, train_cmem_len=8)
    names = sorted(t.name for t in tables.sweeps(load_runs([tmp_path])))
    assert names == ["table8_9_sweep_enwik8_cpu-longrange_ct-s0", "table8_9_sweep_enwik8_cpu-longrange_ct-s1"]
