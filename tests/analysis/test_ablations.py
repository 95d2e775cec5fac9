"""The paired memory ablations (analysis/tables.py `ablations`) and the claims row "the CT uses its compressed
memory", on synthetic run directories: trained runs and their evaluation copies at other memory sizes."""
import numpy as np

from analysis import claims, tables
from analysis.runs import load_runs
from analysis_fixtures import make_run

TRAINED = {0: 2.30, 1: 2.32, 2: 2.28}
NO_CMEM = {0: 2.40, 1: 2.43, 2: 2.37}        # removing the compressed memory costs 0.10, 0.11, 0.09
BIGGER = {0: 2.301, 1: 2.318, 2: 2.282}      # +0.001, -0.002, +0.002: noise


def arm(root, name, seed, value, mem=128, cmem=128, model="compressive", trained=(128, 128), steps=100,
        preset="p"):
    config = (f'[model]\nd_model = 32\nmem_len = {trained[0]}\ncmem_len = {trained[1]}\n'
              f'[train]\nseed = {seed}\nsteps = {steps}\n')
    make_run(root, name, config=config, model=model, dataset="enwik8", value=value, mem_len=mem, cmem_len=cmem,
             train_mem_len=trained[0], train_cmem_len=trained[1], preset=preset)


def make_ablations(root, seeds=(0, 1, 2), prefix="", shift=0.0, **kw):
    """shift: added to every score of the evaluation copies without the compressed memory."""
    for s in seeds:
        sfx = "" if s == 0 else f"-seed{s}"
        arm(root, f"{prefix}ct{sfx}", s, TRAINED[s], **kw)
        arm(root, f"{prefix}ct-cmem0{sfx}", s, NO_CMEM[s] + shift, cmem=0, **kw)
        arm(root, f"{prefix}ct-cmem256{sfx}", s, BIGGER[s], cmem=256, **kw)
        arm(root, f"{prefix}txl{sfx}", s, 2.35, mem=256, cmem=0, model="transformerxl", trained=(256, 0), **kw)


def test_rows_pair_each_seed_with_its_own_trained_weights(tmp_path):
    make_ablations(tmp_path)
    [t] = tables.ablations(load_runs([tmp_path]))
    df = t.frame.set_index("evaluated mem / cmem")
    assert list(df.index) == ["128 / 0", "128 / 256"]          # the TXL has no evaluation copy: no row
    row = df.loc["128 / 0"]
    assert row["trained mem / cmem"] == "128 / 128" and row["seeds"] == 3
    diffs = np.array([NO_CMEM[s] - TRAINED[s] for s in (0, 1, 2)])
    assert row["evaluated - trained"] == f"{diffs.mean():+.4f}"
    lo, hi = (float(x) for x in row["95% interval"].strip("[]").split(", "))
    assert lo < diffs.mean() < hi and lo > 0                   # paired: 0.09-0.11 apart in every seed
    assert row["reading"] == "the evaluated size scores worse"
    assert df.loc["128 / 256", "reading"] == "no difference beyond seed noise"


def test_an_unpaired_seed_does_not_enter_the_difference(tmp_path):
    make_ablations(tmp_path, seeds=(0, 1))
    arm(tmp_path, "ct-seed2", 2, 9.0)                           # trained, but never evaluated without cmem
    row = tables.ablations(load_runs([tmp_path]))[0].frame.set_index("evaluated mem / cmem").loc["128 / 0"]
    assert row["seeds"] == 2 and row["trained size"].endswith("(2 seeds)")   # only the seeds scored both ways
    assert row["evaluated - trained"] == f"{np.mean([NO_CMEM[s] - TRAINED[s] for s in (0, 1)]):+.4f}"
    assert row["reading"] == "the evaluated size scores worse"   # paired over seeds 0, 1: not Welch with seed 2


def test_claims_row_says_the_compressed_memory_is_used(tmp_path):
    make_ablations(tmp_path)
    df = claims.claims(load_runs([tmp_path])).frame
    row = df[df.claim.str.startswith("the CT uses its compressed memory")].iloc[0]
    assert row["verdict"] == "reproduced" and row["seeds"] == "3 vs 3"
    assert "+0.1" in row["ours"]


def test_a_preset_and_its_longer_version_are_named_apart(tmp_path):
    """Ablations of two trainings of one dataset: a row each in the table (its preset shown) and claims rows
    named by preset, each judged on its own seeds."""
    make_ablations(tmp_path, preset="p")
    make_ablations(tmp_path, prefix="long-", shift=-0.2, steps=500, preset="p-long")   # without it: better
    [t] = tables.ablations(load_runs([tmp_path]))
    assert sorted(t.frame[t.frame["evaluated mem / cmem"] == "128 / 0"]["preset"]) == ["p", "p-long"]
    rows = claims.claims(load_runs([tmp_path])).frame.set_index("claim")
    assert rows.loc["the CT uses its compressed memory (enwik8, test, p)", "verdict"] == "reproduced"
    assert rows.loc["the CT uses its compressed memory (enwik8, test, p-long)", "verdict"] == "NOT reproduced"
    assert {"a larger compressed memory at evaluation helps (enwik8, p)",
            "a larger compressed memory at evaluation helps (enwik8, p-long)"} <= set(rows.index)
    # each row's command reruns its own preset's trainings and evaluation copies, not the other's
    assert rows.loc["the CT uses its compressed memory (enwik8, test, p-long)", "command"] == (
        f"{claims.SUITE} 'long-ct*' (the -cmem0 evaluation copies)")
    assert rows.loc["a larger compressed memory at evaluation helps (enwik8, p)", "command"] == f"{claims.SUITE} 'ct*'"
    # a trained run serves two ablations: listed once under the table
    assert sorted(t.scale.run) == sorted(set(t.scale.run)) and "long-ct-seed1" in set(t.scale.run)


def test_without_evaluation_copies_there_is_no_table(tmp_path):
    arm(tmp_path, "ct", 0, 2.3)
    assert tables.ablations(load_runs([tmp_path])) == []


def test_tables_8_9_claim_is_one_row_judged_over_the_seeds(tmp_path):
    make_ablations(tmp_path)
    rows = claims.claims(load_runs([tmp_path])).frame
    [row] = rows[rows.claim == "a larger compressed memory at evaluation helps (enwik8)"].to_dict("records")
    assert row["verdict"] == "tie" and row["seeds"] == "3 vs 3"            # +0.001, -0.002, +0.002: noise
    adv = np.mean([TRAINED[s] - BIGGER[s] for s in (0, 1, 2)])
    assert row["ours"] == ("trained cmem 128: 2.3 +- 0.02 (3 seeds); larger: 256: 2.3 +- 0.018 (3 seeds); "
                           f"advantage of 256 {adv:+.2g} bits per character")


def test_figure6_claim_is_one_row_per_arm_judged_over_the_seeds(tmp_path):
    for s, layers in enumerate(([0.010, 0.20, 0.30], [0.012, 0.22, 0.31], [0.011, 0.19, 0.29])):
        make_run(tmp_path, f"ct-seed{s}", config=f"[model]\nd_model = 32\n[train]\nseed = {s}\n", dataset="enwik8",
                 analysis={"compression_losses.json": {"per_layer": layers}})
    rows = claims.claims(load_runs([tmp_path])).frame
    [row] = rows[rows.claim.str.startswith("the first layer is the most compressible")].to_dict("records")
    assert row["claim"] == "the first layer is the most compressible (compressive c=3, enwik8)"
    assert row["verdict"] == "reproduced" and row["seeds"] == "3 vs 3"
    assert row["ours"].startswith("attention-reconstruction loss: layer 1 0.011 +- 0.001 (3 seeds)")
