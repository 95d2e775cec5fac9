"""The re-mention table (analysis/tables.py `remention`) and its claims row, on synthetic run directories
holding analysis/remention.json in the shape text/remention.py writes."""
import json
import math

import pytest

from analysis import claims, tables
from analysis.report import build_report
from analysis.runs import RunFormatError, load_runs
from analysis_fixtures import make_everything, make_run

EDGES = [8, 16, 24, 32, 40, 48, 56, 64, 128]


def remention_json(window, mem, cmem, rate, fill: dict, first=(50, 6.0), no_word=(40, 1.0)) -> dict:
    """fill: {bin upper edge (None: the open bin): (tokens, bits per token)}."""
    tokens, bits = [0] * (len(EDGES) + 1), [0.0] * (len(EDGES) + 1)
    for hi, (t, b) in fill.items():
        i = len(EDGES) if hi is None else EDGES.index(hi)
        tokens[i], bits[i] = t, t * b
    reach = [window] + ([window + mem] if mem else []) + ([window + mem + rate * cmem] if cmem else [])
    n = sum(tokens) + first[0] + no_word[0]
    total = sum(bits) + first[0] * first[1] + no_word[0] * no_word[1]
    return {"format": 1, "unit": "byte", "window": window, "mem_len": mem, "cmem_len": cmem, "compression_rate": rate,
            "reach_edges": reach, "edges": EDGES, "tokens": tokens, "bits_sum": bits,
            "first_mention": {"tokens": first[0], "bits_sum": first[0] * first[1]},
            "no_word": {"tokens": no_word[0], "bits_sum": no_word[0] * no_word[1]},
            "overall": {"tokens": n, "bits_sum": total}}


def make_pair(root, seeds=(0, 1, 2), prefix="", shift=0.0, **kw):
    """CT: window 16, memory 16, compressed 8 x c=3 (reach 16 / 32 / 56); TXL: memory 24 (reach 16 / 40).
    shift: added to the CT's bits beyond the TXL's reach; kw: more results.json keys and the config."""
    for s in seeds:
        jitter = [0.01, -0.01, 0.0][s]
        ct = {16: (100, 1.0 + jitter), 40: (80, 2.0),
              48: (30, 3.0 + 0.01 * s + shift), 56: (10, 3.0 + 0.01 * s + 0.4 + shift),  # (40, 56]: mean +0.1
              64: (5, 5.0 + 0.1 * s), None: (5, 5.0 + 0.1 * s)}
        txl = {16: (100, 1.0), 40: (80, 2.5 + 0.01 * s), 48: (40, 4.1 + 0.02 * s), 64: (10, 4.0)}
        make_run(root, f"{prefix}ct{s}", dataset="enwik8", seed=s, value=1.0,
                 analysis={"remention.json": remention_json(16, 16, 8, 3, ct)}, **kw)
        make_run(root, f"{prefix}txl{s}", dataset="enwik8", model="transformerxl", seed=s, mem_len=24, value=1.1,
                 analysis={"remention.json": remention_json(16, 24, 0, 3, txl, first=(50, 6.5))}, **kw)


def test_pair_table_buckets_means_and_verdicts(tmp_path):
    make_pair(tmp_path)
    [t] = tables.remention(load_runs([tmp_path]))
    assert t.name == "remention_enwik8"
    df = t.frame.set_index("bucket")
    assert list(df.index) == ["in the window", "in both memories", "beyond the TXL, within the CT's reach",
                              "beyond both reaches", "first mention", "no word", "all tokens"]
    assert list(df["distance"][:4]) == ["(0, 16]", "(16, 40]", "(40, 56]", "> 56"]
    assert list(df["tokens"]) == [100, 80, 40, 10, 50, 40, 320]
    # (40, 56]: CT per seed (30 x (3 + .01 s) + 10 x (3.4 + .01 s)) / 40 = 3.1 + .01 s; TXL 4.1 + .02 s
    row = df.loc["beyond the TXL, within the CT's reach"]
    assert row["CT - TXL"] == pytest.approx(-1.0 - 0.01) and row["verdict"] == "reproduced"
    assert row["CT bits"].startswith("3.11 +- 0.01 (3 seeds)") and row["TXL bits"].startswith("4.12 +- 0.02")
    assert df.loc["in the window", "verdict"] == "tie" and df.loc["in the window", "CT - TXL"] == pytest.approx(0)
    assert df.loc["in both memories", "verdict"] == "reproduced"
    assert df.loc["in both memories", "CT - TXL"] == pytest.approx(-0.51)
    assert df.loc["beyond both reaches", "verdict"] == "NOT reproduced"          # CT 5 + .1 s vs TXL 4
    assert df.loc["beyond both reaches", "CT - TXL"] == pytest.approx(1.1)
    assert df.loc["first mention", "CT - TXL"] == pytest.approx(-0.5) and df.loc["no word", "verdict"] == "tie"
    lo, hi = (float(x) for x in row["95% interval"].strip("[]").split(","))
    assert lo < -1.0 < hi < 0
    assert any("CT ct0, ct1, ct2 vs TXL txl0, txl1, txl2" in n and "TXL's reach 40" in n and "CT's reach 56" in n
               for n in t.notes)
    # the claims row: the bucket beyond the TXL, within the CT's reach
    [claim] = claims._remention(load_runs([tmp_path]))
    assert claim["verdict"] == "reproduced" and claim["seeds"] == "3 vs 3"
    assert "re-mentions beyond the TXL's reach (enwik8)" in claim["claim"] and "40-56 tokens back" in claim["ours"]


def test_a_preset_and_its_longer_version_get_a_table_and_a_claim_each(tmp_path):
    """Two designated pairs on one dataset (trained differently): one table per pair, named by the CT's preset,
    and one claims row per pair; neither pair hides the other."""
    make_pair(tmp_path, preset="quick", config="[train]\nsteps = 100\n")
    make_pair(tmp_path, prefix="long-", shift=1.5, preset="quick-long", config="[train]\nsteps = 500\n")
    found = {t.name: t for t in tables.remention(load_runs([tmp_path]))}
    assert sorted(found) == ["remention_enwik8_quick", "remention_enwik8_quick-long"]
    gap = "beyond the TXL, within the CT's reach"
    assert found["remention_enwik8_quick"].frame.set_index("bucket").loc[gap, "verdict"] == "reproduced"
    long = found["remention_enwik8_quick-long"]
    assert long.frame.set_index("bucket").loc[gap, "CT - TXL"] == pytest.approx(-1.01 + 1.5)
    assert long.frame.set_index("bucket").loc[gap, "verdict"] == "NOT reproduced"
    assert any("CT long-ct0, long-ct1, long-ct2 vs TXL long-txl0" in n for n in long.notes)
    rows = {r["claim"]: r for r in claims._remention(load_runs([tmp_path]))}
    assert sorted(rows) == [f"compressed memory helps on real-text re-mentions beyond the TXL's reach (enwik8, {p})"
                            for p in ("quick", "quick-long")]
    assert [r["verdict"] for r in rows.values()] == ["reproduced", "NOT reproduced"]


def test_one_seed_each_gives_no_verdict(tmp_path):
    make_pair(tmp_path, seeds=(0,))
    [t] = tables.remention(load_runs([tmp_path]))
    assert set(t.frame["verdict"]) == {"1 seed: no verdict"} and set(t.frame["95% interval"]) == {"–"}


def test_no_file_no_table_and_no_index_line(tmp_path):
    make_everything(tmp_path / "runs")
    runs = load_runs([tmp_path / "runs"])
    assert tables.remention(runs) == [] and claims._remention(runs) == []
    rep = build_report(runs, tmp_path / "out")
    assert not any("remention" in what for what, _ in rep.skipped)
    assert "remention" not in (tmp_path / "out" / "index.md").read_text().lower()
    assert "re-mentions beyond the TXL's reach" not in (tmp_path / "out" / "tables" / "claims.md").read_text()


def test_report_writes_the_table_when_files_exist(tmp_path):
    make_pair(tmp_path / "runs")
    rep = build_report(load_runs([tmp_path / "runs"]), tmp_path / "out")
    assert not rep.failed
    assert (tmp_path / "out" / "tables" / "remention_enwik8.md").exists()
    assert "tables/remention_enwik8.md" in (tmp_path / "out" / "index.md").read_text()
    assert "real-text re-mentions beyond the TXL's reach (enwik8)" in (tmp_path / "out" / "tables" / "claims.md").read_text()


def test_without_a_pair_each_setting_is_shown(tmp_path):
    make_run(tmp_path, "ct", dataset="books:/x/gutenberg", analysis={"remention.json": remention_json(
        16, 16, 8, 3, {16: (10, 1.0), 32: (10, 2.0), 56: (4, 3.0), 64: (4, 5.0)})})
    [t] = tables.remention(load_runs([tmp_path]))
    assert t.name == "remention_books"
    df = t.frame.set_index("bucket")
    assert list(df.index[:4]) == ["(0, 16]", "(16, 32]", "(32, 56]", "> 56"]
    assert df["compressive c=3"]["(32, 56]"] == "3 (1 seed)" and df["tokens"]["> 56"] == 4
    assert any("no designated CT / TXL pair" in n for n in t.notes)


def test_an_edge_off_the_bin_grid_is_moved_down_with_a_note(tmp_path):
    make_pair(tmp_path)
    for s in range(3):     # the TXL now reaches 44, not a bin edge of any file: (40, 56] is read as (40, 56]
        f = tmp_path / f"txl{s}" / "analysis" / "remention.json"
        d = json.loads(f.read_text())
        d["reach_edges"] = [16, 44]
        f.write_text(json.dumps(d))
    [t] = tables.remention(load_runs([tmp_path]))
    assert list(t.frame["distance"][:4]) == ["(0, 16]", "(16, 44]", "(44, 56]", "> 56"]
    assert any("not a bin edge" in n and "ct0" in n for n in t.notes)
    assert t.frame.set_index("bucket").loc["beyond the TXL, within the CT's reach", "tokens"] == 40


def test_a_malformed_file_is_named(tmp_path):
    make_run(tmp_path, "ct", dataset="enwik8", analysis={"remention.json": {"edges": [1, 2]}})
    with pytest.raises(RunFormatError, match=r"ct/analysis/remention.json: expected an object with edges"):
        tables.remention(load_runs([tmp_path]))
    d = remention_json(16, 16, 8, 3, {16: (1, 1.0)})
    d["tokens"] = d["tokens"][:-1]
    make_run(tmp_path, "ct", dataset="enwik8", analysis={"remention.json": d})
    with pytest.raises(RunFormatError, match="9 edges need 10 bins"):
        tables.remention(load_runs([tmp_path]))
    assert not math.isnan(tables.remention_bits(remention_json(16, 0, 0, 1, {8: (2, 1.5)}), 0, 16)[1])
