"""The cpu-* presets on the real data in ../shared/data (skipped when absent): a few training steps, then
an evaluation with the headline metric of each dataset (ppl for words, BPC for bytes, word-level ppl)."""
import json

import pytest

from text.cli import main
from text_data_fixtures import no_download, shared  # noqa: F401
from text_run_helpers import sets

TINY = ["model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.d_ff=64", "model.mem_len=16",
        "model.cmem_len=8", "data.window=16", "train.steps=3", "train.batch_size=2", "train.log_every=1",
        "train.progress=false", "train.eval_every=0", "eval.valid_windows=2", "train.threads=1"]


def run(tmp_path, preset, extra, eval_args):
    r = tmp_path / "run"
    assert main(["train", "--preset", preset, "--run-dir", str(r), "--data-dir", str(tmp_path / "d"),
                 *sets(TINY, extra)]) == 0
    assert main(["eval", "--run", str(r), *eval_args]) == 0
    return json.loads((r / "results.json").read_text())


@pytest.mark.slow
def test_wikitext2_validation_prepares_and_evaluates(tmp_path):
    src = shared("wikitext2")
    res = run(tmp_path, "cpu-wikitext2", [f"data.source={src}", "eval.window=64"], ["--split", "valid", "--batch-size", "32"])
    assert res["metric"] == "ppl" and res["partial_data"] is True and res["scored_fraction"] > 0.99
    assert 1 < res["value"] < res["vocab_size"] * 3
    assert res["tokens_scored"] > 200_000                     # the whole validation split, streamed once


@pytest.mark.slow
def test_enwik8_prefix_trains_and_evaluates_in_bpc(tmp_path):
    src = shared("enwik8_prefix") / "enwik8_first_4000000_bytes"
    res = run(tmp_path, "cpu-enwik8", [f"data.source={src}"], ["--max-windows", "4"])
    assert res["metric"] == "bpc" and res["partial_data"] is True and 0 < res["value"] < 9


@pytest.mark.slow
def test_books_with_the_lstm_baseline(tmp_path):
    src = shared("gutenberg")
    extra = [f"data.dataset=books:{src}", "data.max_books=6", "data.vocab_size=500", "model.arch=lstm"]
    res = run(tmp_path, "cpu-books", extra, ["--split", "test", "--batch-size", "64"])
    assert res["model"] == "lstm" and res["metric"] == "word_ppl" and res["words"] > 0
    assert res["value"] > 1
