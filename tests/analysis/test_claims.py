from analysis import claims, rules
from analysis.runs import load_runs
from analysis_fixtures import make_run

CFG = "[model]\nd_model = 32\n[train]\nseed = {seed}\nlr = 0.002\nmin_lr = 0.0\nupdate_every = {every}\n"


def test_claims_list_every_claim_with_not_run_and_its_command(tmp_path):
    rows = [{"split": "train", "step": i, "frames": 100 * i, "episode_return": 0.5, "lr": 1e-4} for i in range(5)]
    make_run(tmp_path, "rl", domain="rl", dataset="nonmatching", metric="return", metrics=rows)
    df = claims.claims(load_runs([tmp_path])).frame
    assert list(df.claim) == [
        "CT beats TXL of equal attention cost", "CT beats TXL of equal attention cost on raw speech",
        "CT beats WaveNet on raw speech",
        "compressed memory helps beyond the TXL's range", "the CT's gain is largest on rare words",
        "conv + attention-reconstruction loss is the best compressor",
        "attention rises from the oldest memory into the compressed memory", "the first layer is the most compressible",
        "a larger compressed memory at evaluation helps", "the CT uses its compressed memory",
        "c=4 learns the memory task, c=1 does not",
        "fewer parameter updates beat learning-rate decay"]
    assert set(df.verdict) == {"not run"} and all(c.startswith("ctbench ") for c in df.command)
    assert "train.update_every=4" in df.set_index("claim").loc["fewer parameter updates beat learning-rate decay",
                                                                "command"]


def test_section_551_claim_is_judged_by_the_rule_over_seeds(tmp_path):
    for seed in (0, 1, 2):
        make_run(tmp_path, f"every{seed}", value=1.20 + seed / 100, config=CFG.format(seed=seed, every=1))
        make_run(tmp_path, f"update4-{seed}", value=1.10 + seed / 100, config=CFG.format(seed=seed, every=4))
    df = claims.claims(load_runs([tmp_path])).frame.set_index("claim")
    row = df.loc["fewer parameter updates beat learning-rate decay (as run: both decay the lr)"]
    assert row["verdict"] == "reproduced" and row["seeds"] == "3 vs 3"
    assert "1.11 +- 0.01 (3 seeds)" in row["ours"] and "1.21 +- 0.01 (3 seeds)" in row["ours"]
    assert df.loc["fewer parameter updates (constant lr) beat learning-rate decay", "verdict"] == "not run"


def test_one_seed_claims_get_no_verdict(tmp_path):
    make_run(tmp_path, "ct", dataset="enwik8", value=1.0)
    make_run(tmp_path, "txl", model="transformerxl", dataset="enwik8", value=2.0, mem_len=24)
    df = claims.claims(load_runs([tmp_path])).frame
    row = df[df.claim == "CT beats TXL of equal attention cost (enwik8, test)"].iloc[0]
    assert row["verdict"] == rules.NO_VERDICT and row["seeds"] == "1 vs 1"


def test_speech_ct_is_judged_against_wavenet_over_seeds(tmp_path):
    speech = dict(domain="speech", dataset="fsdd", metric="nll_nats")
    for seed in (0, 1, 2):
        cfg = f"[train]\nseed = {seed}\n"
        make_run(tmp_path, f"ct{seed}", value=3.64 + seed / 100, config=cfg, **speech)
        make_run(tmp_path, f"txl{seed}", model="transformerxl", mem_len=24, value=3.65, config=cfg, **speech)
        make_run(tmp_path, f"wn{seed}", model="wavenet", mem_len=0, cmem_len=0, value=3.87 - seed / 100,
                 config=cfg + "[model]\nkind = 'wavenet'\n", **speech)
    df = claims.claims(load_runs([tmp_path])).frame.set_index("claim")
    row = df.loc["CT beats WaveNet on raw speech (fsdd, test)"]
    assert row["verdict"] == "reproduced" and row["seeds"] == "3 vs 3"
    assert "WaveNet 3.86 +- 0.01 (3 seeds)" in row["ours"] and "advantage +0.21" in row["ours"]


def test_speech_ct_meets_only_the_wavenet_trained_as_long(tmp_path):
    """A preset and its longer-trained tier each have a CT/TXL pair and a WaveNet twin: each pair's CT is judged
    against its own tier's WaveNet (same samples seen), never the other tier's."""
    speech = dict(domain="speech", dataset="fsdd", metric="nll_nats")
    for preset, steps, base in (("short", 300, 3.6), ("long", 6000, 2.8)):
        for seed in (0, 1, 2):
            cfg = f"[train]\nseed = {seed}\nsteps = {steps}\n"
            budget = dict(steps=steps, tokens_seen=2048 * steps)
            make_run(tmp_path, f"{preset}-ct{seed}", value=base + seed / 100, config=cfg, preset=preset,
                     **budget, **speech)
            make_run(tmp_path, f"{preset}-txl{seed}", model="transformerxl", mem_len=24, value=base + 0.01,
                     config=cfg, preset=f"{preset}-txl", **budget, **speech)
            make_run(tmp_path, f"{preset}-wn{seed}", model="wavenet", mem_len=0, cmem_len=0, value=base + 0.2,
                     config=cfg + "[model]\nkind = 'wavenet'\n", preset=f"{preset}-wavenet", **budget, **speech)
    df = claims.claims(load_runs([tmp_path])).frame.set_index("claim")
    wavenet = df[df.index.str.startswith("CT beats WaveNet")]
    assert list(wavenet.index) == ["CT beats WaveNet on raw speech (fsdd, test, long)",
                                   "CT beats WaveNet on raw speech (fsdd, test, short)"]
    assert "WaveNet 3 +- 0 (3 seeds)" in wavenet.iloc[0]["ours"] and "advantage +0.19" in wavenet.iloc[0]["ours"]
    assert "WaveNet 3.8 +- 0 (3 seeds)" in wavenet.iloc[1]["ours"] and "advantage +0.19" in wavenet.iloc[1]["ours"]


def test_a_wavenet_context_key_written_later_is_one_arm_at_its_old_value(tmp_path):
    """WaveNet runs written before wavenet.context trained as "reread": with or without the key they are one
    arm; "carry" trains otherwise, so it is another."""
    speech = dict(domain="speech", dataset="fsdd", metric="nll_nats", model="wavenet", mem_len=0, cmem_len=0)
    wavenet = "[model]\nkind = 'wavenet'\n[model.wavenet]\nn_layers = 20\n{extra}[train]\nseed = {seed}\n"
    make_run(tmp_path, "old", value=3.8, config=wavenet.format(extra="", seed=0), **speech)
    make_run(tmp_path, "new", value=3.9, config=wavenet.format(extra="context = 'reread'\n", seed=1), **speech)
    make_run(tmp_path, "carry", value=3.7, config=wavenet.format(extra="context = 'carry'\n", seed=2), **speech)
    groups = [sorted(r.path.name for r in a.runs) for a in rules.arms(load_runs([tmp_path]))]
    assert sorted(groups) == [["carry"], ["new", "old"]]


def test_a_preset_and_its_longer_version_are_two_pairs_named_by_preset(tmp_path):
    """Two trained settings of one dataset, each with its own TXL twin: two claims rows (not 'no pair'),
    the better-seeded pair first (figures and Table 7 take a dataset's first pair)."""
    for seed in (0, 1, 2):
        cfg = f"[model]\nd_model = 32\n[train]\nsteps = 100\nseed = {seed}\n"
        make_run(tmp_path, f"ct{seed}", dataset="enwik8", value=2.0 - seed / 100, preset="short", config=cfg)
        make_run(tmp_path, f"txl{seed}", model="transformerxl", dataset="enwik8", value=2.1, mem_len=24,
                 preset="short-txl", config=cfg)
    cfg = "[model]\nd_model = 32\n[train]\nsteps = 900\nseed = 0\n"
    make_run(tmp_path, "ct-long", dataset="enwik8", value=1.5, preset="long", config=cfg)
    make_run(tmp_path, "txl-long", model="transformerxl", dataset="enwik8", value=1.6, mem_len=24,
             preset="long-txl", config=cfg)
    runs = load_runs([tmp_path])
    pairs, notes = rules.designated_pairs(runs)
    assert [p.ct.first.path.name for p in pairs] == ["ct0", "ct-long"] and not notes
    rows = claims.claims(runs).frame.set_index("claim")
    assert rows.loc["CT beats TXL of equal attention cost (enwik8, test, short)", "verdict"] == "reproduced"
    assert rows.loc["CT beats TXL of equal attention cost (enwik8, test, long)", "verdict"] == rules.NO_VERDICT


def test_rl_seeds_stopped_by_minutes_or_by_frames_are_one_arm(tmp_path):
    """An RL run's budget (8 minutes, or 300K frames) only says when it stopped: seeds made either way are
    one arm, a rerun of a seed is not another seed, and the row shows the frames each seed reached."""
    def rl(name, c, seed, ret, frames, minutes=True):
        budget = "total_frames = 1000000\nlr_anneal = false\n[run]\nmax_time_s = 480.0\n" if minutes else \
            ('total_frames = 300000\nlr_anneal = false\nloss_reduction = "mean"\n'    # keys added later, at the
             '[run]\nmax_time_s = 0.0\nprecision = "auto"\n')                        # old runs' behaviour
        make_run(tmp_path, name, domain="rl", model="compressive", dataset="nonmatching", metric="return",
                 value=ret, compression_rate=c, delay=8, frames=frames, mem_len=2, cmem_len=2,
                 config=f"[agent]\ncompression_rate = {c}\n[impala]\n{budget}seed = {seed}\n")
    rl("c4", 4, 0, 0.95, 300_032)
    rl("c4-15min", 4, 0, 0.99, 319_360)                       # a longer rerun of seed 0: not a seed
    rl("c4-seed1", 4, 1, 0.90, 266_624)
    rl("c4-seed2", 4, 2, 0.93, 300_000, minutes=False)
    for seed, ret in enumerate((0.50, 0.49, 0.52)):
        rl(f"c1-seed{seed}", 1, seed, ret, 295_424 if seed == 0 else 300_000, minutes=seed == 0)
    rows = claims.claims(load_runs([tmp_path])).frame.set_index("claim")
    row = rows.loc["c=4 learns the memory task, c=1 does not (delay 8)"]
    assert row["seeds"] == "3 vs 3" and row["verdict"] == "reproduced"
    assert row["ours"].startswith("return, last 100 episodes: c=4 0.9267 +- 0.025 (3 seeds), c=1 0.5033")
    assert row["ours"].endswith("frames per seed 267K-300K")


def test_seeds_trained_in_different_precisions_are_one_arm(tmp_path):
    """precision "auto" resolves per machine (bf16 here, fp32 there), and a seed rerun with fp32 set explicitly
    trains the same model: every spelling of the precision is one setting, so seeds 0-2 give a 3-seed verdict."""
    for seed, precision in enumerate(("auto", "fp32", "bf16")):
        cfg = f'[model]\nd_model = 32\n[train]\nsteps = 100\nseed = {seed}\nprecision = "{precision}"\n'
        make_run(tmp_path, f"ct{seed}", dataset="enwik8", value=2.0 - seed / 100, preset="short", config=cfg)
        make_run(tmp_path, f"txl{seed}", model="transformerxl", dataset="enwik8", value=2.1, mem_len=24,
                 preset="short-txl", config=cfg)
    rows = claims.claims(load_runs([tmp_path])).frame.set_index("claim")
    row = rows.loc["CT beats TXL of equal attention cost (enwik8, test)"]
    assert row["seeds"] == "3 vs 3" and row["verdict"] == "reproduced"


def test_rl_row_shows_the_return_over_the_last_tenth_of_frames_weighted_by_episodes(tmp_path):
    """Beside the last-100-episode return, the row gives each seed's return over its last 10% of frames
    (episode-weighted; a point at exactly 90% is outside) with its own interval, which does not decide."""
    def rl(name, c, seed, last100, late):
        # 2000 frames: 1800 (= 90%) is outside the window; 1900 (3 episodes) and 2000 (1 episode) inside
        rows = [{"split": "train", "step": f // 100, "frames": f, "episode_return": 0.5, "episodes": 10}
                for f in range(100, 1800, 100)]
        rows += [{"split": "train", "step": 18, "frames": 1800, "episode_return": 0.2, "episodes": 10},
                 {"split": "train", "step": 19, "frames": 1900, "episode_return": late[0], "episodes": 3},
                 {"split": "train", "step": 20, "frames": 2000, "episode_return": late[1], "episodes": 1}]
        make_run(tmp_path, name, domain="rl", model="compressive", dataset="nonmatching", metric="return",
                 value=last100, compression_rate=c, delay=8, frames=2000, mem_len=2, cmem_len=2, metrics=rows,
                 config=f"[agent]\ncompression_rate = {c}\n[run]\nseed = {seed}\n")
    rl("c4", 4, 0, 0.60, (1.0, 0.0))      # a late dip: 0.75 over the window
    rl("c4-seed1", 4, 1, 0.90, (1.0, 0.8))   # 0.95
    rl("c1", 1, 0, 0.50, (0.5, 0.5))
    rl("c1-seed1", 1, 1, 0.50, (0.5, 0.5))
    row = claims.claims(load_runs([tmp_path])).frame.set_index("claim").loc[
        "c=4 learns the memory task, c=1 does not (delay 8)"]
    # paired differences 0.25 and 0.45: mean 0.35, t(0.975, 1) 12.706 x 0.1414 / sqrt 2 = 1.27
    assert row["ours"].endswith("; last 10% of frames: c=4 0.85 +- 0.14 (2 seeds), c=1 0.5 +- 0 (2 seeds), "
                                "+0.35 [-0.921, +1.62] (tie)")
    assert row["ours"].startswith("return, last 100 episodes: c=4 0.75 +- 0.21 (2 seeds)")
    assert row["verdict"] == "tie"


def test_the_designated_ct_is_the_one_trained_as_its_preset_stands(tmp_path):
    """cpu-topic's CT compresses by mean pooling; Table 5's conv + attention run on the same preset (the
    paper's main compressor, set on the command line) must not take its place in the CT-vs-TXL pair."""
    for seed in (0, 1, 2):
        for name, comp, value in (("topic-ct", "mean_pool", 1.60), ("topic-t5-conv", "conv", 1.70)):
            make_run(tmp_path, f"{name}{seed}", dataset="longrange-topic", value=value, preset="cpu-topic",
                     compression=comp, mem_len=64, cmem_len=128,
                     config=f'[model]\ncompression = "{comp}"\ncompression_loss = "attention"\n[train]\nseed = {seed}\n')
        make_run(tmp_path, f"topic-txl{seed}", model="transformerxl", dataset="longrange-topic", value=1.65,
                 preset="cpu-topic-txl", mem_len=192, cmem_len=0,
                 config=f'[model]\ncompression = "conv"\ncompression_loss = "attention"\n[train]\nseed = {seed}\n')
    [p], _ = rules.designated_pairs(load_runs([tmp_path]))
    assert [r.path.name for r in p.ct.runs] == ["topic-ct0", "topic-ct1", "topic-ct2"]


def test_two_trainings_of_the_main_compressor_are_no_table5_row(tmp_path):
    """A preset and its longer version, both conv + attention and nothing else on the dataset: no compressor
    comparison exists, so the claims table says nothing about Table 5 there (no 'not comparable' row)."""
    for steps in (100, 900):
        make_run(tmp_path, f"ct{steps}", dataset="enwik8", value=2.0, config=f"[train]\nsteps = {steps}\n")
    rows = claims.claims(load_runs([tmp_path])).frame
    t5 = rows[rows.claim.str.startswith("conv + attention-reconstruction loss is the best compressor")]
    assert list(t5.verdict) == ["not run"] and "not comparable" not in " ".join(t5.ours)


def test_each_table5_row_names_the_suite_steps_of_its_own_sweep(tmp_path):
    """Two corpora, each with a compressor sweep: each claims row's command runs that corpus's steps (the
    sweep's shared prefix and the main arm), not another corpus's."""
    def ct(name, ds, comp, loss, seed, value):
        make_run(tmp_path, name, dataset=ds, value=value, compression=comp, compression_loss=loss,
                 config=f'[model]\ncompression = "{comp}"\ncompression_loss = "{loss}"\n[train]\nseed = {seed}\n')
    for seed, suffix in ((0, ""), (1, "-seed1")):
        ct(f"text-books-long-ct{suffix}", "books:x", "conv", "attention", seed, 6.1)
        ct(f"text-books-t5-max-pool{suffix}", "books:x", "max_pool", "none", seed, 6.2)
        ct(f"text-books-t5-conv-bptt{suffix}", "books:x", "conv", "bptt", seed, 6.3)
        ct(f"text-lr-ct{suffix}", "longrange", "conv", "attention", seed, 3.8)
        ct(f"text-t5-mean-pool{suffix}", "longrange", "mean_pool", "none", seed, 3.9)
    rows = claims.claims(load_runs([tmp_path])).frame.set_index("claim")
    best = "conv + attention-reconstruction loss is the best compressor"
    assert rows.loc[f"{best} (books)", "command"] == \
        "ctbench suite --preset cpu --only 'text-books-t5-*' --only 'text-books-long-ct*'"
    assert rows.loc[f"{best} (longrange)", "command"] == \
        "ctbench suite --preset cpu --only 'text-t5-mean-pool*' --only 'text-lr-ct*'"   # one other arm: its name


def test_one_compressor_that_beats_conv_attention_over_seeds_refutes_the_claim(tmp_path):
    """Max pooling below conv + attention in every one of 3 seeds refutes 'conv + attention is the best', even
    while another setting has only one seed; that setting alone would leave the row without a verdict."""
    def ct(name, comp, loss, seed, value):
        make_run(tmp_path, name, dataset="books:x", value=value, compression=comp, compression_loss=loss,
                 config=f'[model]\ncompression = "{comp}"\ncompression_loss = "{loss}"\n[train]\nseed = {seed}\n')
    for seed, suffix in ((0, ""), (1, "-seed1"), (2, "-seed2")):
        ct(f"ct{suffix}", "conv", "attention", seed, 6.12 + seed / 100)
        ct(f"max-pool{suffix}", "max_pool", "none", seed, 6.11 + seed / 100 - seed / 1000)
    best = "conv + attention-reconstruction loss is the best compressor (books)"
    ct("conv-bptt", "conv", "bptt", 0, 6.13)
    row = claims.claims(load_runs([tmp_path])).frame.set_index("claim").loc[best]
    assert row["verdict"] == "NOT reproduced" and row["seeds"] == "3 vs 3"   # the verdict of the refuting arm
    for seed, suffix in ((1, "-seed1"), (2, "-seed2")):
        ct(f"conv-bptt{suffix}", "conv", "bptt", seed, 6.13 + seed / 100)
    row = claims.claims(load_runs([tmp_path])).frame.set_index("claim").loc[best]
    assert row["verdict"] == "NOT reproduced" and "-0.01" in row["ours"]
