from analysis.cli import main
from analysis_fixtures import make_everything, make_run


def test_report_writes_every_figure_and_table(tmp_path, capsys):
    make_everything(tmp_path / "runs")
    out = tmp_path / "results"
    assert main([str(tmp_path / "runs"), "--out", str(out)]) == 0
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figs == ["figure2_attention.png", "figure3_schedule.png", "figure4_speech.png", "figure5_rl.png",
                    "figure6_compressibility.png"]
    assert sorted(p.name for p in (out / "figures").glob("*.md")) == [f.replace(".png", ".md") for f in figs]
    tabs = sorted(p.name for p in (out / "tables").glob("*.md"))
    assert tabs == ["all_runs.md", "claims.md", "headline.md", "longrange.md", "table5_compression.md",
                    "table7_frequency_longrange.md", "table8_9_sweep_longrange_cpu-longrange.md"]
    assert all((out / "tables" / t.replace(".md", ".csv")).is_file() for t in tabs)
    index = (out / "index.md").read_text()
    assert "![Figure 2: mean attention weight per slot by position](figures/figure2_attention.png)" in index
    assert "[Table 7: perplexity by training frequency (longrange)](tables/table7_frequency_longrange.md)" in index
    assert "Not made" not in index and "6 run directories" in index
    assert f"Made by `ctbench report {tmp_path / 'runs'} --out DIR`" in index
    assert "| 1.38 |" in (out / "tables" / "table8_9_sweep_longrange_cpu-longrange.md").read_text()
    assert (out / "runs.csv").read_text().count("\n") == 7
    assert "read 6 runs; wrote 12 figures/tables" in capsys.readouterr().out


def test_report_with_partial_inputs_notes_what_is_missing(tmp_path, capsys):
    make_run(tmp_path / "runs", "only", dataset="enwik8", value=1.2, metrics=[])
    out = tmp_path / "results"
    assert main([str(tmp_path / "runs"), "--out", str(out)]) == 0
    index = (out / "index.md").read_text()
    assert "## Not made (missing inputs)" in index
    assert "- figure2: Figure 2 needs analysis/attention_stats.json" in index
    assert "| 0.97 |" in index                      # the headline table still shows the paper's enwik8 number
    printed = capsys.readouterr().out
    assert printed.count("not made:") == 8


def test_report_on_an_empty_folder_says_so(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "no run directories (folders with results.json)" in err and "ctbench suite --preset smoke" in err
    assert not (tmp_path / "out").exists()


def test_report_on_a_missing_path_and_bad_file(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "nope: no such file or folder" in capsys.readouterr().err
    d = make_run(tmp_path, "bad")
    (d / "results.json").write_text("[1, 2]")
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "bad/results.json: expected a JSON object" in capsys.readouterr().err


def test_a_crashing_builder_costs_only_its_own_output(tmp_path, capsys, monkeypatch):
    from analysis import report

    def boom(runs):
        raise ZeroDivisionError("bug")
    monkeypatch.setattr(report, "BUILDERS", [("tables", report.tables.headline), ("figures", boom)])
    make_run(tmp_path / "runs", "r")
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 1
    assert "boom: FAILED: ZeroDivisionError: bug" in capsys.readouterr().err
    assert (tmp_path / "out" / "tables" / "headline.md").exists()


def test_report_is_byte_identical_across_runs_and_output_folders(tmp_path):
    make_everything(tmp_path / "runs")
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "a")]) == 0
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "b")]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 26 and files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*")
                                                if p.is_file())
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    published = [(tmp_path / "a" / f).read_bytes() for f in files]
    assert not any(str(tmp_path).encode() in b for b, f in zip(published, files) if f.name != "index.md")


def test_published_results_are_rebuilt_exactly_from_results_cpu_runs(tmp_path):
    """results/ holds what `ctbench report results/cpu-runs --out results` writes, byte for byte."""
    from pathlib import Path
    results = Path(__file__).resolve().parents[2] / "results"
    assert main([str(results / "cpu-runs"), "--out", str(tmp_path)]) == 0
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    published = sorted(p.relative_to(results) for d in ("figures", "tables") for p in (results / d).rglob("*")
                       if p.is_file()) + [Path("index.md"), Path("runs.csv")]
    assert made == sorted(published)
    for f in made:
        if f.name != "index.md":   # the index names the runs folder as given on the command line
            assert (tmp_path / f).read_bytes() == (results / f).read_bytes(), f
    index = (results / "index.md").read_text()
    assert index.startswith("# ctbench results\n\nMade by `ctbench report results/cpu-runs --out DIR`")
    assert (tmp_path / "index.md").read_text().replace(str(results / "cpu-runs"), "results/cpu-runs") == index
