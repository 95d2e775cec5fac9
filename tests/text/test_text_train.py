"""Train -> eval -> sample on a tiny longrange corpus, through the `ctbench text` CLI."""
import json
import math

import numpy as np
import pytest
import torch

from core.run import TrainConfig, Trainer, from_dict, load_checkpoint, read_jsonl
from core.run.config import load_toml
from text.cli import main
from text.config import TextConfig
from text.task import TextTask, load_dataset
from text_data_fixtures import no_download  # noqa: F401  (autouse: tests never download)
from text_run_helpers import TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, data_dir, sets  # noqa: F401


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("text") / "run"
    rc = main(["train", "--preset", "cpu-longrange", "--run-dir", str(run), "--data-dir", data_dir,
               *sets(TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, ["train.steps=60"])])
    assert rc == 0
    return run


def test_training_lowers_the_loss_and_writes_the_run_directory(trained):
    train = [l for l in read_jsonl(trained / "metrics.jsonl") if l["split"] == "train"]
    assert len(train) == 60
    assert np.mean([l["loss"] for l in train[-10:]]) < np.mean([l["loss"] for l in train[:5]]) - 0.7
    cfg = from_dict(TextConfig, load_toml(trained / "config.toml"))
    assert cfg.model.d_model == 32 and cfg.data.longrange.doc_len == 256 and cfg.preset == "cpu-longrange"
    res = json.loads((trained / "results.json").read_text())
    assert res["domain"] == "text" and res["model"] == "compressive" and res["metric"] == "bits_per_token"
    assert res["tokens_seen"] == 60 * 4 * 16 and res["steps"] == 60 and res["cmem_len"] == 8
    ckpt = load_checkpoint(trained / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 60
    # the tied byte embedding is the only embedding table: it is what separates the two counts
    assert res["params"] - res["params_non_embedding"] == ckpt["model"]["embed.weight"].numel() > 0
    assert res["params"] == sum(v.numel() for v in ckpt["model"].values())     # the model holds no buffers


def test_eval_with_larger_memory_writes_analysis(trained, capsys):
    rc = main(["eval", "--run", str(trained), "--split", "test", "--mem-len", "32", "--cmem-len", "16",
               "--save-analysis", "--batch-size", "1"])
    assert rc == 0
    res = json.loads((trained / "results.json").read_text())
    assert res["split"] == "test" and res["mem_len"] == 32 and res["cmem_len"] == 16
    assert res["train_mem_len"] == 16 and res["scored_fraction"] > 0.99
    a = trained / "analysis"
    z = np.load(a / "token_losses.npz")
    n = 2 * 256 - 1                                   # every target of the test split, once
    assert z["loss"].shape == z["token"].shape == z["position"].shape == (n,)
    assert np.array_equal(np.sort(z["position"]), np.arange(1, n + 1))
    ds_tokens = np.asarray(load_dataset(from_dict(TextConfig, load_toml(trained / "config.toml"))).split("test"))
    assert np.array_equal(z["token"], ds_tokens[z["position"]])
    assert res["value"] == pytest.approx(z["loss"].mean() / np.log(2), rel=1e-5)
    att = json.loads((a / "attention_stats.json").read_text())
    assert (att["cmem_len"], att["mem_len"], att["window"], att["n_layers"]) == (16, 32, 16, 2)
    assert np.array(att["per_layer"]).shape == (2, 16 + 32 + 16)
    # the per-window record (Figure 2's spread over windows): one row per window, its layers' mean per slot;
    # its mean over the windows where a slot existed is the mean over layers of attention_stats.json
    windows = np.load(a / "attention_windows.npz")["weight"]
    assert windows.shape == (math.ceil(n / 16), 16 + 32 + 16)
    np.testing.assert_allclose(np.nanmean(windows, axis=0), np.mean(att["per_layer"], axis=0), rtol=1e-5)
    np.testing.assert_allclose(np.nansum(windows, axis=1), 1.0, rtol=1e-5)     # each query's weights sum to 1
    assert np.isnan(windows[0, :16 + 32]).all() and not np.isnan(windows[-2]).any()   # memories fill up
    comp = json.loads((a / "compression_losses.json").read_text())
    assert len(comp["per_layer"]) == 2 and all(v >= 0 for v in comp["per_layer"])
    lr = json.loads((a / "longrange.json").read_text())
    assert lr["overall"]["tokens"] == n and lr["cmem_len"] == 16
    assert lr["overall"]["bits"] >= lr["overall"]["floor_entropy_bits"] - 0.5


def test_dynamic_eval_changes_the_score(trained):
    partial = trained / "partial_eval" / "results.json"              # --max-windows: not the headline file
    assert main(["eval", "--run", str(trained), "--max-windows", "8"]) == 0
    static = json.loads(partial.read_text())
    assert main(["eval", "--run", str(trained), "--max-windows", "8", "--dynamic-eval"]) == 0
    dynamic = json.loads(partial.read_text())
    assert static["dynamic_eval"] is False and dynamic["dynamic_eval"] is True
    assert dynamic["value"] != static["value"]


def test_sample_streams_text(trained, capsys):
    assert main(["sample", "--run", str(trained), "--prompt", "<doc> <intro>", "--tokens", "12"]) == 0
    out = capsys.readouterr().out.strip().split()
    assert len(out) == 12


def test_resume_after_sigterm_matches_uninterrupted_run(tmp_path, data_dir):
    """Memory state, stream position and RNG come back: the same final loss, bit for bit."""
    import os
    import signal
    from core.run.config import apply_overrides, find_preset

    data = apply_overrides(load_toml(find_preset("text", "cpu-longrange")),
                           [*TINY_LONGRANGE, *TINY_MODEL, *TINY_TRAIN, f"data.data_dir={data_dir}",
                            "train.steps=8", "model.dropout=0.1", "train.update_every=2", "train.update_every_after=3",
                            "train.seed=3"])   # a rotated data order resumes too
    cfg = from_dict(TextConfig, data)
    ds = load_dataset(cfg)
    full = Trainer(TextTask(cfg, ds), cfg.train, tmp_path / "full").fit()

    def kill(step):
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    assert Trainer(TextTask(cfg, ds), cfg.train, tmp_path / "part", on_step=kill).fit()["interrupted"]
    ckpt = load_checkpoint(tmp_path / "part" / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 4 and "0.cmem" in ckpt["ranks"][0]["state"]
    resumed = Trainer(TextTask(cfg, ds), cfg.train, tmp_path / "part").fit(resume=True)
    assert resumed["final_loss"] == full["final_loss"] and resumed["tokens"] == full["tokens"]


def test_the_training_seed_sets_the_data_order(data_dir):
    """train.seed rotates the training split (row 0 starts at stream_offset(seed)): seeds differ in data order."""
    from core.run.config import apply_overrides, find_preset
    from text.data.batching import stream_offset

    base = apply_overrides(load_toml(find_preset("text", "cpu-longrange")),
                           [*TINY_LONGRANGE, *TINY_MODEL, *TINY_TRAIN, f"data.data_dir={data_dir}"])
    first = {}
    for seed in (0, 2):
        cfg = from_dict(TextConfig, apply_overrides(base, [f"train.seed={seed}"]))
        ds = load_dataset(cfg)
        split = np.asarray(ds.split("train"))
        x, _, _ = next(iter(TextTask(cfg, ds).train_stream(cfg.train.batch_size, 0, 1)))
        start = stream_offset(seed, len(split))
        assert torch.equal(x[0], torch.from_numpy(split[start:start + x.shape[1]].astype(np.int64)))
        first[seed] = x
    assert stream_offset(2, len(split)) > 0 and not torch.equal(first[0], first[2])


def test_lstm_baseline_trains(tmp_path, data_dir):
    run = tmp_path / "lstm"
    rc = main(["train", "--preset", "cpu-longrange-lstm", "--run-dir", str(run), "--data-dir", data_dir,
               *sets(TINY_LONGRANGE, TINY_TRAIN, ["model.d_model=32", "data.window=16", "train.steps=40"])])
    assert rc == 0
    train = [l["loss"] for l in read_jsonl(run / "metrics.jsonl") if l["split"] == "train"]
    assert np.mean(train[-5:]) < np.mean(train[:5]) - 0.5
    res = json.loads((run / "results.json").read_text())
    assert res["model"] == "lstm" and res["mem_len"] == 0
    assert main(["eval", "--run", str(run), "--max-windows", "4"]) == 0
    assert torch.is_tensor(load_checkpoint(run / "checkpoints" / "latest.pt")["ranks"][0]["state"]["c"])


def test_compare_table(trained, capsys):
    assert main(["eval", "--run", str(trained), "--split", "test"]) == 0
    capsys.readouterr()
    assert main(["compare", str(trained), str(trained)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and "re-mentions" in lines[0] and "| compressive | 16 | 8 | 2 |" in lines[2]


def test_vanilla_transformer_baseline_runs(tmp_path, data_dir):
    run = tmp_path / "vanilla"
    assert main(["train", "--preset", "cpu-longrange", "--run-dir", str(run), "--data-dir", data_dir,
                 *sets(TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN,
                       ["model.mem_len=0", "model.cmem_len=0", "train.steps=3"])]) == 0
    res = json.loads((run / "results.json").read_text())
    assert res["model"] == "transformer" and res["mem_len"] == 0 and res["compression"] == "none"
