"""What evaluation and sampling promise, each held against a reference computed another way (issue 11:
scripts/mutation_check.py breaks each promise on purpose and expects one of these tests to go red).

- the memory is emptied at document starts (in `evaluate` with one or more rows, in `ctbench text eval`
  and in the validation during training): a split scored as one stream equals its documents scored one
  by one from an empty memory;
- naive dynamic evaluation scores each window with the weights from before it learns from that window;
- evaluation runs without dropout whatever mode the model is in, and gives the caller its mode back;
- `sample` carries its memory: every step's distribution equals one pass over the whole prefix;
- word-level perplexity is exp(total nats / words), the words counted from the books' text.
"""
import copy
import io

import numpy as np
import pytest
import torch

from core.run import load_checkpoint
from text.cli import main
from text.evaluate import evaluate
from text.model import LanguageModel
from text.run import read_run_config, sample
from text.task import TextTask, build_model, load_dataset
from test_data_sources import _write_books
from text_data_fixtures import no_download  # noqa: F401  (autouse: tests never download)
from text_run_helpers import (TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, assert_word_perplexity, data_dir,  # noqa: F401
                              sets, tiny_config)

CPU = torch.device("cpu")
WINDOW = 16                                          # data.window of TINY_MODEL
DROPOUT = ["model.dropout=0.3", "model.dropatt=0.2"]
NO_DROPOUT = ["model.dropout=0.0", "model.dropatt=0.0"]
SHORT_DOCS = ["data.longrange.doc_len=64", "data.longrange.valid_docs=8", "data.longrange.test_docs=8"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
    """A few training steps with dropout on, a memory of 32 (room for the sampling test's whole prefix)."""
    run = tmp_path_factory.mktemp("guards") / "run"
    assert main(["train", "--preset", "cpu-longrange", "--run-dir", str(run), "--data-dir", data_dir,
                 *sets(TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, DROPOUT, ["model.mem_len=32", "train.steps=3"])]) == 0
    return run


def twin_without_dropout(run_dir) -> LanguageModel:
    """The run's checkpoint weights in a model built with dropout 0: its output does not depend on its mode."""
    cfg = read_run_config(run_dir, NO_DROPOUT)
    ds = load_dataset(cfg)
    twin = LanguageModel(cfg.model, ds.vocab.size)
    twin.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "latest.pt")["model"])
    return twin.eval()


def per_document(model, tokens: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per-token losses of each document scored alone from an empty memory (its last target is the next
    document's first token, as in the stream), concatenated in order."""
    ends = [*starts[1:], len(tokens) - 1]
    parts = [evaluate(model, tokens[a:b + 1], window=WINDOW, device=CPU, collect=True) for a, b in zip(starts, ends)]
    assert sum(p.count for p in parts) == len(tokens) - 1
    return np.concatenate([p.token_loss for p in parts])


# ------------------------------------------------------------------------------------ memory reset
@pytest.mark.parametrize("rows", [1, 3])
def test_eval_empties_the_memory_at_document_starts(data_dir, rows):
    """Six documents of 4 windows (384 targets); with 3 rows each row also starts at a document."""
    cfg = tiny_config(data_dir, *SHORT_DOCS)
    ds = load_dataset(cfg)
    tokens, starts = np.asarray(ds.split("test"))[:6 * 64 + 1], ds.doc_starts("test")[:6]
    assert np.array_equal(starts, np.arange(6) * 64)
    model = build_model(cfg, ds.vocab.size)
    whole = evaluate(model, tokens, window=WINDOW, device=CPU, batch_size=rows, doc_starts=starts, collect=True)
    alone = per_document(model, tokens, starts)
    assert np.array_equal(whole.position, np.arange(1, len(tokens)))
    np.testing.assert_allclose(whole.token_loss, alone, rtol=0, atol=2e-5)
    carried = evaluate(model, tokens, window=WINDOW, device=CPU, batch_size=rows, doc_starts=None, collect=True)
    assert np.abs(carried.token_loss - alone).max() > 1e-2          # the memory matters here: carrying it shows


def test_eval_command_empties_the_memory_at_document_starts(run):
    assert main(["eval", "--run", str(run), "--split", "test", "--batch-size", "1", "--save-analysis"]) == 0
    z = np.load(run / "analysis" / "token_losses.npz")
    cfg = read_run_config(run)
    ds = load_dataset(cfg)
    tokens, starts = np.asarray(ds.split("test")), ds.doc_starts("test")
    assert np.array_equal(z["position"], np.arange(1, len(tokens)))
    np.testing.assert_allclose(z["loss"], per_document(twin_without_dropout(run), tokens, starts), rtol=0, atol=2e-5)


def test_validation_during_training_empties_the_memory_at_document_starts(data_dir):
    """Short documents, so that the resets move the split's mean loss well beyond float noise."""
    cfg = tiny_config(data_dir, *SHORT_DOCS, "eval.batch_size=1", "eval.valid_windows=0")
    ds = load_dataset(cfg)
    task = TextTask(cfg, ds)
    tokens, starts = np.asarray(ds.split("valid")), ds.doc_starts("valid")
    alone = per_document(task.model, tokens, starts).astype(np.float64)
    result = task.validate(task.model, CPU)
    assert result["count"] == len(alone)
    assert result["loss"] == pytest.approx(alone.mean(), rel=1e-6)
    carried = evaluate(task.model, tokens, window=WINDOW, device=CPU).loss
    assert carried != pytest.approx(alone.mean(), rel=2e-5)          # not resetting shows


# ------------------------------------------------------------------------------------ dynamic evaluation
def test_dynamic_eval_scores_each_window_before_learning_from_it(data_dir):
    cfg = tiny_config(data_dir, *NO_DROPOUT)
    ds = load_dataset(cfg)
    tokens, lr = np.asarray(ds.split("test"))[:6 * WINDOW + 1], 0.05
    model = build_model(cfg, ds.vocab.size)
    static = evaluate(copy.deepcopy(model), tokens, window=WINDOW, device=CPU, collect=True)
    dynamic_model = copy.deepcopy(model)
    dynamic = evaluate(dynamic_model, tokens, window=WINDOW, device=CPU, dynamic_lr=lr, collect=True)

    # naive dynamic evaluation written out: score the window (no gradient), then one SGD step on it
    ref, scores = copy.deepcopy(model).eval(), []
    opt = torch.optim.SGD(ref.parameters(), lr=lr)
    state = ref.init_state(1, CPU)
    for s in range(0, len(tokens) - 1, WINDOW):
        x = torch.tensor(tokens[None, s:s + WINDOW], dtype=torch.long)
        y = torch.tensor(tokens[None, s + 1:s + WINDOW + 1], dtype=torch.long)
        with torch.no_grad():
            scores.append(ref(x, state, y).nll[0].numpy())
        out = ref(x, state, y)
        (out.nll.mean() + out.aux_loss).backward()
        opt.step()
        opt.zero_grad()
        state = out.state.detach()

    np.testing.assert_allclose(dynamic.token_loss[:WINDOW], static.token_loss[:WINDOW], rtol=0, atol=1e-6)
    np.testing.assert_allclose(dynamic.token_loss, np.concatenate(scores), rtol=0, atol=2e-5)
    for (name, p), q in zip(dynamic_model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)
    assert np.abs(dynamic.token_loss[WINDOW:] - static.token_loss[WINDOW:]).max() > 1e-2   # it did learn


# ------------------------------------------------------------------------------------ dropout
def test_evaluation_turns_dropout_off_and_restores_the_mode(data_dir):
    cfg = tiny_config(data_dir, *DROPOUT)
    ds = load_dataset(cfg)
    tokens = np.asarray(ds.split("test"))
    model = build_model(cfg, ds.vocab.size).train()
    twin = LanguageModel(tiny_config(data_dir, *NO_DROPOUT).model, ds.vocab.size)
    twin.load_state_dict(model.state_dict())
    first = evaluate(model, tokens, window=WINDOW, device=CPU, doc_starts=ds.doc_starts("test"), collect=True)
    assert model.training                            # the caller's mode comes back
    again = evaluate(model, tokens, window=WINDOW, device=CPU, doc_starts=ds.doc_starts("test"), collect=True)
    plain = evaluate(twin, tokens, window=WINDOW, device=CPU, doc_starts=ds.doc_starts("test"), collect=True)
    np.testing.assert_array_equal(first.token_loss, again.token_loss)
    np.testing.assert_allclose(first.token_loss, plain.token_loss, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------ sampling
def test_sample_carries_its_memory(run, monkeypatch):
    """Prompt of 20 tokens (two prefill windows) + 10 generated: 28 memories, all within mem_len 32, so
    nothing is compressed and each step's distribution equals one pass over the whole prefix. The model
    was trained with dropout: sampling must run without it."""
    drawn, multinomial = [], torch.multinomial

    def record(probs, n, generator=None):
        out = multinomial(probs, n, generator=generator)
        drawn.append((probs.detach().clone(), int(out)))
        return out

    monkeypatch.setattr(torch, "multinomial", record)
    twin = twin_without_dropout(run)
    ds = load_dataset(read_run_config(run))
    prompt = ds.vocab.decode(ds.split("test")[:20])
    ids = ds.vocab.encode(prompt)
    assert len(ids) == 20
    temperature = 0.8
    sample(str(run), prompt, tokens=10, temperature=temperature, seed=3, device="cpu", out=io.StringIO())
    assert len(drawn) == 10
    seq = ids + [tok for _, tok in drawn]
    with torch.no_grad():                            # log-probabilities, [T, V] and [V]
        h, *_ = twin.hidden(torch.tensor([seq[:-1]]), twin.init_state(1, CPU))
        ref = torch.log_softmax(twin.head.log_prob(h[0]).float() / temperature, dim=-1)
        alone = torch.log_softmax(twin.next_token_logprobs(torch.tensor([[seq[-2]]]), twin.init_state(1, CPU))[0][0]
                                  .float() / temperature, dim=-1)
    for k, (probs, _) in enumerate(drawn):
        torch.testing.assert_close(probs.log(), ref[len(ids) - 1 + k], rtol=0, atol=1e-4, msg=f"step {k}")
    assert (alone - drawn[-1][0].log()).abs().max() > 0.05       # the memory matters here: forgetting shows


# ------------------------------------------------------------------------------------ word-level perplexity
def test_word_perplexity_divides_by_words_not_tokens(tmp_path):
    books = tmp_path / "books"
    _write_books(books, 4)
    run = tmp_path / "run"
    assert main(["train", "--preset", "cpu-books", "--run-dir", str(run), "--data-dir", str(tmp_path / "d"),
                 *sets(TINY_MODEL, TINY_TRAIN, [f"data.dataset=books:{books}", "data.vocab_size=300",
                                                "train.steps=2", "train.batch_size=2"])]) == 0
    assert main(["eval", "--run", str(run), "--split", "test", "--save-analysis"]) == 0
    assert_word_perplexity(run, books, "test")
