import numpy as np
import pytest
from matplotlib.image import imread

from analysis import figures
from analysis.runs import RunFormatError, load_runs
from analysis.tables import MissingInput
from analysis_fixtures import attention_stats, make_run


def assert_real_png(path):
    img = imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100
    colours = np.unique(img.reshape(-1, img.shape[-1]), axis=0)
    assert len(colours) > 10, "an image of one or two colours has nothing drawn on it"


def test_attention_buckets_equal_width_bins_per_region():
    # every slot's weight is the same for the queries that see it: the bars must be equal whatever the bucket
    # widths (a sum would scale them by the slots per bucket) and whatever the causal mask hides
    cmem, mem, window = 6, 12, 3
    seen_by = figures.visible_queries(cmem, mem, window)
    assert list(seen_by) == [3] * 18 + [3, 2, 1]           # window slot j: queries j..2
    per_slot = 0.05 * seen_by / window                      # the file's mean over all 3 queries, masked ones as 0
    stats = {"cmem_len": cmem, "mem_len": mem, "window": window, "n_layers": 2, "per_layer": [list(per_slot)] * 2}
    df = figures.attention_buckets(stats, n_buckets=6)
    assert list(df.region.value_counts()[list(figures.REGIONS)]) == [6, 6, 3]   # window has only 3 slots
    assert list(df.slots) == [1] * 6 + [2] * 6 + [1] * 3
    assert df.weight.to_numpy() == pytest.approx(np.full(15, 0.05))


def test_attention_buckets_average_slots_and_layers():
    stats = {"cmem_len": 6, "mem_len": 12, "window": 3, "n_layers": 2,
             "per_layer": [list(np.arange(21) / 210.0), list(np.arange(21) / 105.0)]}
    df = figures.attention_buckets(stats, n_buckets=6)
    mem_first = df[(df.region == "memory") & (df.part == 1)].weight.item()
    assert mem_first == pytest.approx(((6 + 7) / 2 / 210.0 + (6 + 7) / 2 / 105.0) / 2)   # mean of 2 slots, 2 layers
    newest = df[df.region == "window"].weight.iloc[-1]
    assert newest == pytest.approx((20 / 210.0 + 20 / 105.0) / 2 * 3)   # seen by 1 of 3 queries


def test_same_length_hides_the_oldest_slots_from_late_queries():
    v = figures.visible_queries(2, 0, 3, same_length=True)
    # key j is seen by queries i with j - 2 <= i and i < j
    assert list(v) == [0, 1, 2, 2, 1]


def test_attention_buckets_rejects_wrong_width():
    with pytest.raises(RunFormatError, match=r"expected \[n_layers, 30\]"):
        figures.attention_buckets({"cmem_len": 6, "mem_len": 12, "window": 12, "per_layer": [[0.1] * 29]})


def test_figure2_png(tmp_path):
    make_run(tmp_path, "ct", dataset="books:../data/gutenberg", analysis={"attention_stats.json": attention_stats()})
    plot = figures.figure2(load_runs([tmp_path]))
    ax = plot.figure.axes[0]
    assert ax.get_ylabel() == "mean attention per slot" and "compressed memory" in ax.get_xlabel()
    assert ax.get_title() == "books (1 seed: ct)"
    assert len(ax.patches) == 18                  # 6 buckets x 3 regions
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == sorted(figures.REGIONS)
    assert_real_png(plot.write(tmp_path / "out"))


def test_layer_compressibility(tmp_path):
    make_run(tmp_path, "ct", analysis={"compression_losses.json": {"per_layer": [0.01, 0.2, 0.3, 0.25]}})
    runs = load_runs([tmp_path])
    df = figures.compressibility_frame(runs)
    assert list(df.loss) == [0.01, 0.2, 0.3, 0.25] and list(df.layer) == [1, 2, 3, 4]
    plot = figures.layer_compressibility(runs)
    ax = plot.figure.axes[0]
    assert ax.get_xlabel() == "layer" and ax.get_ylabel() == "attention-reconstruction loss"
    assert ax.get_yscale() == "log"
    assert_real_png(plot.write(tmp_path / "out"))


def test_figure3_schedule_from_config_when_metrics_lack_it(tmp_path):
    make_run(tmp_path, "ct", config="[optim]\nupdate_every = 4\nupdate_every_after = 30\n")
    run = load_runs([tmp_path])[0]
    df, source = figures.schedule_frame(run)
    assert list(df.update_every) == [1, 1, 1, 4, 4, 4] and "config.toml" in source
    assert df.lr.iloc[-1] == pytest.approx(3e-4)
    plot = figures.figure3([run])
    assert plot.figure.axes[0].get_ylabel() == "learning rate"
    assert plot.figure.axes[1].get_ylabel() == "windows per parameter update"
    assert_real_png(plot.write(tmp_path / "out"))


def test_figure3_schedule_from_metrics_field(tmp_path):
    rows = [{"split": "train", "step": s, "loss": 1.0, "lr": 1e-4, "update_every": 1 if s < 20 else 2}
            for s in range(0, 40, 10)]
    make_run(tmp_path, "ct", metrics=rows)
    df, source = figures.schedule_frame(load_runs([tmp_path])[0])
    assert list(df.update_every) == [1, 1, 2, 2] and "update_every" in source


def test_figure4_speech_curves(tmp_path):
    for model, offset in (("compressive", 0.0), ("transformerxl", 0.1), ("wavenet", 0.05)):
        rows = [{"split": sp, "step": s, "loss": 3.0 - s / 100 + offset, "lr": 1e-4}
                for s in range(0, 50, 10) for sp in ("train", "valid")]
        make_run(tmp_path, model, domain="speech", model=model, metrics=rows, metric="nll_nats")
    runs = load_runs([tmp_path])
    df = figures.curves_frame(runs, "loss", "step")
    assert set(df.split) == {"valid"} and len(df) == 15
    assert df[df.label == "transformerxl"].y.iloc[-1] == pytest.approx(3.0 - 0.4 + 0.1)
    plot = figures.figure4(runs)
    ax = plot.figure.axes[0]
    assert ax.get_xlabel() == "training step" and ax.get_ylabel() == "NLL (nats per sample)"
    assert len(ax.get_lines()) == 3
    assert_real_png(plot.write(tmp_path / "out"))


def test_figure5_rl_groups_seeds_by_compression_rate(tmp_path):
    for c in (1, 2, 4):
        for seed in (0, 1):
            rows = [{"split": "train", "step": i, "frames": 1000 * i, "episode_return": c * i / 10 + seed, "lr": 1e-4}
                    for i in range(20)]
            make_run(tmp_path, f"c{c}s{seed}", domain="rl", metric="return", compression_rate=c, metrics=rows,
                     config=f"[run]\nseed = {seed}\n", chance_return=0.5, dataset="nonmatching")
    rows = [{"split": "train", "step": i, "frames": 1000 * i, "episode_return": 0.1, "lr": 1e-4} for i in range(20)]
    make_run(tmp_path, "lstm", domain="rl", model="lstm", metric="return", metrics=rows, dataset="nonmatching",
             chance_return=0.5)
    runs = load_runs([tmp_path])
    df, y = figures.rl_frame(runs, window=1)
    assert y == "episode_return" and set(df.group) == {"c=1", "c=2", "c=4", "LSTM"}
    assert df[(df.run == "c4s1")].y.iloc[-1] == pytest.approx(4 * 19 / 10 + 1)
    plot = figures.figure5(runs)
    ax = plot.figure.axes[0]
    assert ax.get_xlabel() == "environment frames" and ax.get_ylabel() == "episode return"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["LSTM, 1 seed", "c=1, 2 seeds", "c=2, 2 seeds", "c=4, 2 seeds", "chance", "solved"]
    assert [ln.get_ydata()[0] for ln in ax.get_lines()[4:]] == [0.5, 1.0]
    assert ax.get_lines()[3].get_ydata()[-1] == pytest.approx(4 * 17 / 10 + 0.5)   # 5-point smoothing, mean of 2 seeds
    assert_real_png(plot.write(tmp_path / "out"))


def test_figure5_keeps_tasks_with_different_delays_apart(tmp_path):
    for delay, ret in ((1, 0.9), (8, 0.6)):
        rows = [{"split": "train", "step": i, "frames": 100 * i, "episode_return": ret, "lr": 1e-4} for i in range(5)]
        make_run(tmp_path, f"c4-d{delay}", domain="rl", metric="return", compression_rate=4, delay=delay,
                 dataset="nonmatching", metrics=rows)
    runs = load_runs([tmp_path])
    df, _ = figures.rl_frame(runs, window=1)
    assert sorted(df.task.unique()) == ["nonmatching, delay 1", "nonmatching, delay 8"]
    plot = figures.figure5(runs)
    axes = plot.figure.axes
    assert [ax.get_title() for ax in axes] == ["nonmatching, delay 1", "nonmatching, delay 8"]
    assert [[t.get_text() for t in ax.get_legend().get_texts()] for ax in axes] == [["c=4, 1 seed", "solved"]] * 2
    assert axes[0].get_lines()[0].get_ydata()[-1] == pytest.approx(0.9)
    assert axes[1].get_lines()[0].get_ydata()[-1] == pytest.approx(0.6)
    assert_real_png(plot.write(tmp_path / "out"))


def test_figures_without_inputs_raise_missing_input(tmp_path):
    make_run(tmp_path, "plain", metrics=[])
    runs = load_runs([tmp_path])
    for build in (figures.figure2, figures.layer_compressibility, figures.figure3, figures.figure4, figures.figure5):
        with pytest.raises(MissingInput):
            build(runs)


def test_figure3_measures_update_frequency_from_windows(tmp_path):
    rows = [{"split": "train", "step": s, "loss": 1.0, "bits": 1.4, "lr": 1e-4, "windows": s if s <= 20 else 20 + 2 * (s - 20)}
            for s in range(0, 50, 10)]
    make_run(tmp_path, "ct", metrics=rows, config="[train]\nsteps = 40\n")
    run = load_runs([tmp_path])[0]
    df, source = figures.schedule_frame(run)
    assert list(df.update_every) == [1, 1, 1, 2, 2] and "windows" in source
    plot = figures.figure3([run])
    assert [a.get_ylabel() for a in plot.figure.axes][-1] == "training bits per token"


def test_curves_fall_back_to_train_when_validation_has_one_point(tmp_path):
    rows = [{"split": "train", "step": s, "loss": 3.0 - s / 100} for s in range(0, 30, 10)]
    rows.append({"split": "valid", "step": 20, "loss": 2.9})
    make_run(tmp_path, "ct", domain="speech", metrics=rows)
    df = figures.curves_frame(load_runs([tmp_path]), "loss", "step")
    assert set(df.split) == {"train"} and list(df.y) == [3.0, 2.9, 2.8]


def test_attention_buckets_of_a_transformerxl_have_no_compressed_region():
    stats = attention_stats(cmem=0, mem=12, window=12, layers=2)
    df = figures.attention_buckets(stats)
    assert list(df.region.unique()) == ["memory", "window"] and len(df) == 12


def test_figure2_shows_the_designated_ct_with_seed_error_bars_and_no_txl(tmp_path):
    for seed in (0, 1):
        make_run(tmp_path, f"ct{seed}", config=f"[train]\nseed = {seed}\n", mem_len=12, cmem_len=6,
                 analysis={"attention_stats.json": attention_stats(seed=seed)})
    make_run(tmp_path, "txl", model="transformerxl", mem_len=18, analysis={"attention_stats.json": attention_stats(cmem=0)})
    runs = load_runs([tmp_path])
    df = figures.figure2_frame(runs)
    one = [figures.attention_buckets(attention_stats(seed=s)).weight.to_numpy() for s in (0, 1)]
    assert df.weight.to_numpy() == pytest.approx((one[0] + one[1]) / 2)
    assert df["std"].to_numpy() == pytest.approx(np.std(one, axis=0, ddof=1))
    assert set(df.seeds) == {2} and set(df.runs) == {"ct0, ct1"}
    ax = figures.figure2(runs).figure.axes[0]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == sorted(figures.REGIONS)
    with pytest.raises(MissingInput):
        figures.figure2([r for r in runs if r.model == "transformerxl"])


def test_figure2_error_bars_span_windows_and_seeds_where_the_runs_recorded_them(tmp_path):
    """With analysis/attention_windows.npz, a bucket's error bar is the standard deviation of its weight
    over every window of every seed (windows where a slot of the bucket did not exist yet left out), each
    window's slots corrected for the queries that see them like the mean; one seed then has error bars too."""
    cmem, mem, window = 6, 12, 12
    rng = np.random.default_rng(3)
    records = {}
    for seed in (0, 1):
        w = rng.uniform(0.0, 0.1, (5, cmem + mem + window))
        w[0, :cmem + 4] = np.nan                                   # the memories still filling
        records[seed] = w
        make_run(tmp_path, f"ct{seed}", config=f"[train]\nseed = {seed}\n", mem_len=mem, cmem_len=cmem,
                 analysis={"attention_stats.json": attention_stats(cmem, mem, window, seed=seed),
                           "attention_windows.npz": {"weight": w}})
    df = figures.figure2_frame(load_runs([tmp_path]))
    share = window / np.maximum(figures.visible_queries(cmem, mem, window), 1)
    bounds = [(0, cmem), (cmem, cmem + mem), (cmem + mem, cmem + mem + window)]
    slots = [lo + c for lo, hi in bounds for c in np.array_split(np.arange(hi - lo), 6)]
    for b, idx in enumerate(slots):
        pooled = np.concatenate([(w[:, idx] * share[idx]).mean(axis=1) for w in records.values()])
        pooled = pooled[~np.isnan(pooled)]
        assert df.window_std.iloc[b] == pytest.approx(pooled.std(ddof=1)) and df.windows.iloc[b] == len(pooled)
    assert list(df.windows[:2]) == [8, 8] and df.windows.iloc[-1] == 10      # filling windows left out
    only_one = load_runs([tmp_path / "ct0"])
    bars = [c for c in figures.figure2(only_one).figure.axes[0].containers if getattr(c, "errorbar", None)]
    assert bars and all(c.errorbar is not None for c in bars)


def test_figure_notes_are_written_beside_the_figure(tmp_path):
    make_run(tmp_path, "ct", analysis={"attention_stats.json": attention_stats()})
    plot = figures.figure2(load_runs([tmp_path]))
    plot.write(tmp_path / "out")
    md = (tmp_path / "out" / "figure2_attention.md").read_text()
    assert "![Figure 2: mean attention weight per slot by position](figure2_attention.png)" in md
    assert "- " + figures.paper.FIGURE2_NOTE in md


def test_figure3_compares_schedules_of_one_model(tmp_path):
    make_run(tmp_path, "plain", config="[train]\nupdate_every = 1\n")
    make_run(tmp_path, "every4", config="[train]\nupdate_every = 4\nupdate_every_after = 30\n")
    make_run(tmp_path, "txl", model="transformerxl", config="[train]\nupdate_every = 1\n")
    plot = figures.figure3(load_runs([tmp_path]))
    assert "every4" in plot.figure.axes[0].get_title()          # the run with a schedule is the one shown
    labels = [t.get_text() for t in plot.figure.axes[-1].get_legend().get_texts()]
    assert labels == ["every 4 windows from step 30 (every4)", "1 window per update (plain)"]


def test_figure4_one_panel_per_dataset_with_one_legend_entry_per_model(tmp_path):
    for ds in ("fsdd", "synthetic-speech"):
        for name, model in ((f"{ds}-ct", "compressive"), (f"{ds}-ct-b", "compressive"), (f"{ds}-wn", "wavenet")):
            rows = [{"split": "valid", "step": s, "loss": 3.0 - s / 100, "lr": 1e-4} for s in range(0, 30, 10)]
            make_run(tmp_path, name, domain="speech", model=model, dataset=ds, metrics=rows, metric="nll_nats")
    axes = figures.figure4(load_runs([tmp_path])).figure.axes
    assert [ax.get_title() for ax in axes] == ["Figure 4: speech modelling, fsdd",
                                               "Figure 4: speech modelling, synthetic-speech"]
    for ax in axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "compressive c=3 (valid), 2 runs", "wavenet (valid), 1 run"]
        lines = ax.get_lines()
        assert len(lines) == 3 and lines[0].get_color() == lines[1].get_color() != lines[2].get_color()


def test_figure4_a_longer_trained_tier_gets_its_own_panel(tmp_path):
    """A preset and its longer-trained version are separate races: two panels of one dataset, named by steps."""
    for steps in (300, 6000):
        for model in ("compressive", "transformerxl"):
            rows = [{"split": "valid", "step": s, "loss": 3.0 - s / steps, "lr": 1e-4} for s in (steps // 2, steps)]
            make_run(tmp_path, f"{model}-{steps}", domain="speech", model=model, dataset="fsdd", metrics=rows,
                     metric="nll_nats", steps=steps)
    axes = figures.figure4(load_runs([tmp_path])).figure.axes
    assert [ax.get_title() for ax in axes] == ["Figure 4: speech modelling, fsdd, 300 steps",
                                               "Figure 4: speech modelling, fsdd, 6000 steps"]
    assert [max(x for line in ax.get_lines() for x in line.get_xdata()) for ax in axes] == [300, 6000]


def test_figure6_integer_layer_ticks_and_only_attention_loss_runs(tmp_path):
    make_run(tmp_path, "att", analysis={"compression_losses.json": {"per_layer": [0.1, 0.2, 0.3]}})
    make_run(tmp_path, "ae", compression_loss="autoencoding",
             analysis={"compression_losses.json": {"per_layer": [0.5, 0.6, 0.7]}})
    runs = load_runs([tmp_path])
    assert list(figures.compressibility_frame(runs).run.unique()) == ["att"]
    ax = figures.layer_compressibility(runs).figure.axes[0]
    assert list(ax.get_xticks()) == [1, 2, 3]
    with pytest.raises(MissingInput):
        figures.layer_compressibility([r for r in runs if r.path.name == "ae"])


def test_figure5_a_run_ends_where_its_data_ends_and_reruns_of_a_seed_are_left_out(tmp_path):
    """A longer rerun of seed 0 (another time budget: the budget is not part of the setting) is the same
    arm's seed 0 again: it neither widens the band nor counts as a seed."""
    for name, seed, n in (("long", 0, 20), ("short", 1, 10), ("rerun", 0, 20)):
        rows = [{"split": "train", "step": i, "frames": 100 * i, "episode_return": 0.5 + seed / 10, "lr": 1e-4}
                for i in range(n)]
        budget = 900 if name == "rerun" else 480
        make_run(tmp_path, name, domain="rl", metric="return", compression_rate=4, dataset="nonmatching",
                 metrics=rows, config=f"[run]\nseed = {seed}\nmax_time_s = {budget}\n")
    ax = figures.figure5(load_runs([tmp_path])).figure.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["c=4, 2 seeds", "solved"]
    band_line = ax.get_lines()[0]
    assert band_line.get_xdata()[-1] == 900.0          # the shorter seed's last frame: no flat continuation
    assert band_line.get_ydata() == pytest.approx(np.full(100, 0.55))
    assert len(ax.collections) == 1                    # one band: the two seeds, not the rerun
