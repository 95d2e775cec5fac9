"""The cpu-* presets on the real data in ../shared/data (skipped when absent): training, then an
evaluation with the headline metric of each dataset (ppl for words, BPC for bytes, word-level ppl),
each held against what the test counts from the files itself: the tokens, and a unigram baseline that
a briefly trained model must beat."""
import json
from collections import Counter

import numpy as np
import pytest

from text.cli import main
from text_data_fixtures import no_download, shared  # noqa: F401
from text_run_helpers import assert_word_perplexity, sets

TINY = ["model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.d_ff=64", "model.mem_len=16",
        "model.cmem_len=8", "data.window=16", "train.batch_size=2", "train.log_every=1",
        "train.progress=false", "train.eval_every=0", "eval.valid_windows=2", "train.threads=1"]
# enough steps to beat the unigram baseline (deterministic on the CPU: about 0.6 bit / 13% in ppl to spare)
LEARN = ["train.steps=300", "train.batch_size=8", "train.lr=3e-3", "train.log_every=50"]


def run(tmp_path, preset, extra, eval_args):
    r = tmp_path / "run"
    assert main(["train", "--preset", preset, "--run-dir", str(r), "--data-dir", str(tmp_path / "d"),
                 *sets(TINY, extra)]) == 0
    assert main(["eval", "--run", str(r), "--save-analysis", *eval_args]) == 0
    return json.loads((r / "results.json").read_text()), np.load(r / "analysis" / "token_losses.npz")


def unigram_nats(train, scored, vocab_size: int) -> float:
    """Mean nats of `scored` under add-one-smoothed unigram frequencies of `train` (both symbol sequences)."""
    counts = Counter(train)
    total = len(train) + vocab_size
    return float(np.mean([-np.log((counts[s] + 1) / total) for s in scored]))


@pytest.mark.slow
def test_wikitext2_validation_prepares_and_evaluates(tmp_path):
    src = shared("wikitext2")
    res, z = run(tmp_path, "cpu-wikitext2", [f"data.source={src}", "eval.window=64", *LEARN],
                 ["--split", "valid", "--batch-size", "32"])
    lines = (src / "wiki.valid.tokens").read_bytes().decode("utf-8").split("\n")
    words = [w for line in lines[:-1 if lines[-1] == "" else None] for w in line.split() + ["<eos>"]]
    # partial data: the file's last articles are the valid split (the first heading line at or after 90%)
    heading = [i for i, w in enumerate(words) if w == "=" and (i == 0 or words[i - 1] == "<eos>")
               and words[i + 1] != "=" and i >= 0.9 * len(words)][0]
    train, valid = words[:heading], words[heading:]
    assert res["metric"] == "ppl" and res["partial_data"] is True and res["split"] == "valid"
    assert res["tokens_scored"] == len(z["loss"]) == 32 * ((len(valid) - 1) // 32)  # 32 rows, each streamed once
    assert np.array_equal(np.sort(z["position"]), np.unique(z["position"]))
    assert res["value"] == pytest.approx(np.exp(z["loss"].astype(np.float64).mean()), rel=1e-5)
    # held-out text: the model beats a unigram fitted on the same training articles
    assert res["value"] < np.exp(unigram_nats(train, [valid[p] for p in z["position"]], res["vocab_size"]))


@pytest.mark.slow
def test_enwik8_prefix_trains_and_evaluates_in_bpc(tmp_path):
    src = shared("enwik8_prefix") / "enwik8_first_4000000_bytes"
    res, z = run(tmp_path, "cpu-enwik8", [f"data.source={src}", *LEARN], ["--batch-size", "64"])
    data = np.frombuffer(src.read_bytes(), dtype=np.uint8)
    held_out = len(data) * 5 // 100                      # 90/5/5 of the prefix; the test split is the last 5%
    test = data[len(data) - held_out:]
    assert res["metric"] == "bpc" and res["partial_data"] is True and res["split"] == "test"
    assert res["tokens_scored"] == len(z["loss"]) == 64 * ((len(test) - 1) // 64)   # 64 rows, each streamed once
    assert np.array_equal(z["token"], test[z["position"]])              # the bytes scored are the file's
    assert res["value"] == pytest.approx(z["loss"].astype(np.float64).mean() / np.log(2), rel=1e-5)
    train = data[:len(data) - 2 * held_out]
    unigram_bits = unigram_nats(train.tolist(), test[z["position"]].tolist(), 256) / np.log(2)
    assert res["value"] < unigram_bits


@pytest.mark.slow
def test_books_with_the_lstm_baseline(tmp_path):
    src = shared("gutenberg")
    extra = [f"data.dataset=books:{src}", "data.max_books=6", "data.vocab_size=500", "model.arch=lstm",
             "train.steps=3"]
    res, _ = run(tmp_path, "cpu-books", extra, ["--split", "test", "--batch-size", "64"])
    assert res["model"] == "lstm"
    assert_word_perplexity(tmp_path / "run", src, "test")
