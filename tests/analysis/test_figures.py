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
    stats = {"cmem_len": 6, "mem_len": 12, "window": 3, "n_layers": 2,
             "per_layer": [list(np.arange(21) / 210.0), list(np.arange(21) / 210.0)]}
    df = figures.attention_buckets(stats, n_buckets=6)
    assert list(df.region.value_counts()[list(figures.REGIONS)]) == [6, 6, 3]   # window has only 3 slots
    assert list(df.slots) == [1] * 6 + [2] * 6 + [1] * 3
    assert df.weight.sum() == pytest.approx(1.0)
    mem_first = df[(df.region == "memory") & (df.part == 1)].weight.item()
    assert mem_first == pytest.approx((6 + 7) / 210.0)
    assert (df.stderr == 0).all()                    # identical layers: no spread


def test_attention_buckets_rejects_wrong_width():
    with pytest.raises(RunFormatError, match=r"expected \[n_layers, 30\]"):
        figures.attention_buckets({"cmem_len": 6, "mem_len": 12, "window": 12, "per_layer": [[0.1] * 29]})


def test_figure2_png(tmp_path):
    make_run(tmp_path, "ct", analysis={"attention_stats.json": attention_stats()})
    plot = figures.figure2(load_runs([tmp_path]))
    ax = plot.figure.axes[0]
    assert ax.get_ylabel() == "average attention weight" and "compressed memory" in ax.get_xlabel()
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
            make_run(tmp_path, f"c{c}s{seed}", domain="rl", metric="return", compression_rate=c, metrics=rows)
    rows = [{"split": "train", "step": i, "frames": 1000 * i, "episode_return": 0.1, "lr": 1e-4} for i in range(20)]
    make_run(tmp_path, "lstm", domain="rl", model="lstm", metric="return", metrics=rows)
    runs = load_runs([tmp_path])
    df, y = figures.rl_frame(runs, window=1)
    assert y == "episode_return" and set(df.group) == {"c=1", "c=2", "c=4", "LSTM"}
    assert df[(df.run == "c4s1")].y.iloc[-1] == pytest.approx(4 * 19 / 10 + 1)
    plot = figures.figure5(runs)
    ax = plot.figure.axes[0]
    assert ax.get_xlabel() == "environment frames" and ax.get_ylabel() == "episode return"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["LSTM (1 run)", "c=1 (2 runs)", "c=2 (2 runs)", "c=4 (2 runs)"]
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
    assert [[t.get_text() for t in ax.get_legend().get_texts()] for ax in axes] == [["c=4 (1 run)"]] * 2
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


def test_figure2_legend_of_a_transformerxl_lists_only_its_regions(tmp_path):
    make_run(tmp_path, "txl", model="transformerxl", analysis={"attention_stats.json": attention_stats(cmem=0)})
    ax = figures.figure2(load_runs([tmp_path])).figure.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["memory", "window"]


def test_figure3_compares_schedules_of_one_model(tmp_path):
    make_run(tmp_path, "plain", config="[train]\nupdate_every = 1\n")
    make_run(tmp_path, "every4", config="[train]\nupdate_every = 4\nupdate_every_after = 30\n")
    make_run(tmp_path, "txl", model="transformerxl", config="[train]\nupdate_every = 1\n")
    plot = figures.figure3(load_runs([tmp_path]))
    assert "every4" in plot.figure.axes[0].get_title()          # the run with a schedule is the one shown
    labels = [t.get_text() for t in plot.figure.axes[-1].get_legend().get_texts()]
    assert labels == ["every 4 windows from step 30 (every4)", "1 window per update (plain)"]
