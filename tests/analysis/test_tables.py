import math

import numpy as np
import pandas as pd
import pytest

from analysis import paper, tables
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


def test_headline_puts_paper_numbers_beside_ours_and_judges_the_ordering(tmp_path):
    make_run(tmp_path, "ct", dataset="enwik8", value=1.30)
    make_run(tmp_path, "txl", model="transformerxl", dataset="enwik8", value=1.25)
    t = tables.headline(load_runs([tmp_path]))
    row = t.frame.set_index("model").loc["compressive c=3"]
    assert row["value"] == 1.30 and row["paper"] == 0.97 and "Table 4" in row["paper_source"]
    assert t.frame.set_index("model").loc["transformerxl", "paper"] == 0.98
    assert any("NOT reproduced" in n and "1.3 vs" in n for n in t.notes)
    md = t.markdown()
    assert "| 0.97 |" in md and "123,456" in md and "42 s" in md


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
    assert any("reproduced" in n and "<100 +10.0%" in n for n in t.notes)
    assert not any("scaled" in n for n in t.notes)


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
    make_run(tmp_path, "txl", model="transformerxl", analysis={"longrange.json": txl})
    t = tables.longrange(load_runs([tmp_path]))
    f = t.frame.set_index("bucket")
    assert f.loc["1024-4096", "compressive c=3"] == 6.0 and f.loc["1024-4096", "transformerxl"] == 6.5
    assert f.loc["0-64", "entropy floor"] == 1.0 and f.loc["all tokens", "entropy floor"] == 1.2
    assert f.loc["all tokens", "transformerxl"] == 2.0
    assert any("in 1 of 3 distance buckets" in n for n in t.notes)


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
    make_run(tmp_path, "txl", model="transformerxl", analysis={"longrange.json": _text_longrange([0.5, 1.2, 6.0])})
    t = tables.longrange(load_runs([tmp_path]))
    f = t.frame.set_index("bucket")
    assert list(f.index) == ["0-64", "64-512", ">=512", "all re-mentions", "all tokens"]
    assert f.loc[">=512", "compressive c=3"] == 2.0 and f.loc[">=512", "transformerxl"] == 6.0
    assert f.loc["all tokens", "entropy floor"] == 1.5 and f.loc["all tokens", "n"] == 1000
    assert f.loc["all re-mentions", "transformerxl"] == pytest.approx(7.7 / 3)
    assert any("beats transformerxl in 2 of 3 distance buckets" in n for n in t.notes)
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


def test_headline_calls_a_near_tie_no_evidence(tmp_path):
    make_run(tmp_path, "ct", dataset="longrange", value=1.618)
    make_run(tmp_path, "txl", model="transformerxl", dataset="longrange", value=1.6185)
    make_run(tmp_path, "ct2", dataset="enwik8", value=1.20)
    make_run(tmp_path, "txl2", model="transformerxl", dataset="enwik8", value=1.25)
    notes = tables.headline(load_runs([tmp_path])).notes
    assert any(n.startswith("longrange") and "NOT reproduced (a tie" in n for n in notes)
    assert any(n.startswith("enwik8") and n.endswith("is reproduced at our scale") for n in notes)


def test_longrange_makes_one_table_per_corpus(tmp_path):
    make_run(tmp_path, "ct", analysis={"longrange.json": _text_longrange([0.5, 1.0, 2.0])})
    make_run(tmp_path, "txl", model="transformerxl", analysis={"longrange.json": _text_longrange([0.5, 1.2, 6.0])})
    make_run(tmp_path, "topic-ct", dataset="longrange-topic",
             analysis={"longrange.json": _text_longrange([3.0, 5.0, 6.6])})
    made = tables.longrange(load_runs([tmp_path]))
    assert [t.name for t in made] == ["longrange", "longrange_longrange-topic"]
    topic = made[1].frame.set_index("bucket")
    assert list(topic.columns) == ["n", "compressive c=3", "entropy floor"]
    assert topic.loc[">=512", "compressive c=3"] == 6.6
    assert any("2 of 3 distance buckets (by more than 0.05 bits)" in n for n in made[0].notes)
