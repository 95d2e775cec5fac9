"""Shared settings for the text train/eval tests: tiny models on a tiny longrange corpus."""
from __future__ import annotations

TINY_LONGRANGE = [
    "data.longrange.doc_len=256", "data.longrange.train_docs=24", "data.longrange.valid_docs=2",
    "data.longrange.test_docs=2", "data.longrange.p_intro=0.03", "data.longrange.p_ref=0.05",
]
TINY_MODEL = [
    "model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.d_ff=64", "model.mem_len=16",
    "model.cmem_len=8", "model.compression_rate=2", "data.window=16",
]
TINY_TRAIN = [
    "train.batch_size=4", "train.lr=3e-3", "train.warmup_steps=2", "train.log_every=1", "train.progress=false",
    "train.eval_every=0", "train.threads=1", "eval.valid_windows=4", "eval.batch_size=2",
]


def sets(*groups: list[str]) -> list[str]:
    """Flatten override groups into `--set` arguments."""
    out = []
    for g in groups:
        for item in g:
            out += ["--set", item]
    return out


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """One dataset cache for the whole session: the tiny longrange corpus is generated once."""
    return str(tmp_path_factory.mktemp("ctbench-data"))


def tiny_config(data_dir: str, *extra: str):
    """The cpu-longrange preset with the tiny groups above (+ `extra` overrides) as a TextConfig, for tests
    that drive `Trainer`, `evaluate` or the model directly instead of the CLI."""
    from core.run import from_dict
    from core.run.config import apply_overrides, find_preset, load_toml
    from text.config import TextConfig

    data = apply_overrides(load_toml(find_preset("text", "cpu-longrange")),
                           [*TINY_LONGRANGE, *TINY_MODEL, *TINY_TRAIN, f"data.data_dir={data_dir}", *extra])
    return from_dict(TextConfig, data)


def words_between_markers(path) -> int:
    """Whitespace-separated words between a book's `*** START OF` and `*** END OF` lines (counted here,
    not by the data package)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("*** START OF"))
    end = next(i for i, line in enumerate(lines) if i > start and line.lstrip().startswith("*** END OF"))
    return sum(len(line.split()) for line in lines[start + 1:end])


def assert_word_perplexity(run_dir, books_dir, split: str) -> dict:
    """results.json of `eval --save-analysis` on `split`: word_ppl = exp(summed token nats / words)."""
    import json

    import numpy as np

    from text.run import read_run_config
    from text.task import load_dataset

    res = json.loads((run_dir / "results.json").read_text())
    z = np.load(run_dir / "analysis" / "token_losses.npz")
    names = load_dataset(read_run_config(run_dir)).manifest["splits"][split]["books"]
    words = sum(words_between_markers(books_dir / n) for n in names)
    expected = np.exp(z["loss"].astype(np.float64).sum() / words)
    assert (res["metric"], res["split"], res["words"]) == ("word_ppl", split, words), res
    assert res["tokens_scored"] == len(z["loss"]) != words, (res["tokens_scored"], words)  # tokens are not words
    assert res["value"] == pytest.approx(expected, rel=1e-5), f"word_ppl {res['value']}, expected {expected}"
    return res
