"""Every preset under configs/text loads, and bad command lines give one clear error."""
import json

import pytest
import torch

from core.run import from_dict, load_config, to_dict
from core.run.config import available_presets
from text.cli import main
from text.config import TextConfig
from text.embedding import AdaptiveInput, AdaptiveSoftmax
from text.model import LanguageModel
from text_data_fixtures import no_download  # noqa: F401
from text_run_helpers import TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, data_dir, sets  # noqa: F401

PAPER = {"enwik8": (24, 768, 768, 1152, 3), "wikitext103": (18, 512, 512, 512, 4), "pg19": (36, 512, 512, 512, 2)}


@pytest.mark.parametrize("name", available_presets("text"))
def test_every_preset_loads(name):
    cfg = load_config(TextConfig, "text", name)
    assert cfg.preset == name
    assert from_dict(TextConfig, to_dict(cfg)) == cfg


@pytest.mark.parametrize("name", PAPER)
def test_paper_presets_and_their_txl_twins(name):
    layers, window, mem, cmem, rate = PAPER[name]
    ct = load_config(TextConfig, "text", name)
    txl = load_config(TextConfig, "text", f"{name}-txl")
    assert (ct.model.n_layers, ct.data.window, ct.model.mem_len, ct.model.cmem_len, ct.model.compression_rate) == \
        (layers, window, mem, cmem, rate)
    assert txl.model.cmem_len == 0 and txl.model.mem_len == mem + cmem and txl.model.name == "transformerxl"
    assert (ct.train.lr, ct.train.init_lr, ct.train.grad_clip, ct.train.update_every, ct.train.update_every_after) == \
        (3e-4, 1e-6, 0.1, 4, 60000)


def test_cpu_longrange_pair_has_equal_attention_cost():
    ct = load_config(TextConfig, "text", "cpu-longrange").model
    txl = load_config(TextConfig, "text", "cpu-longrange-txl").model
    assert ct.mem_len + ct.cmem_len == txl.mem_len and txl.cmem_len == 0
    w = load_config(TextConfig, "text", "cpu-longrange").data.window
    # the compressed memory reaches further back than the TXL's memory
    assert ct.mem_len + ct.compression_rate * ct.cmem_len + w > txl.mem_len + w


def test_adaptive_softmax_is_a_distribution():
    torch.manual_seed(0)
    head, emb = AdaptiveSoftmax(50, 16, [10, 30]), AdaptiveInput(50, 16, [10, 30])
    h = emb(torch.tensor([[0, 9, 10, 29, 30, 49]])).view(-1, 16)
    logp = head.log_prob(h)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(6), atol=1e-5)
    target = torch.tensor([1, 12, 33, 49, 0, 20])
    assert torch.allclose(head.nll(h, target), -logp.gather(1, target[:, None])[:, 0], atol=1e-5)
    lm = LanguageModel(load_config(TextConfig, "text", "cpu-wikitext2").model, 3000)
    assert isinstance(lm.head, AdaptiveSoftmax) and lm.head.inner.cutoffs == [2000, 3000]


@pytest.mark.parametrize("argv, message", [
    (["train", "--preset", "nosuch"], "unknown text preset 'nosuch'"),
    (["train", "--preset", "cpu-longrange", "--set", "train.lrr=1"], "unknown field train.lrr (did you mean train.lr?)"),
    (["train", "--preset", "cpu-longrange", "--set", "model.n_heads=3"], "model.n_heads"),
    (["train", "--preset", "cpu-longrange", "--set", "data.window=x"], "data.window: expected an integer"),
    (["eval", "--run", "/nonexistent/run"], "config.toml: not found"),
])
def test_bad_command_lines_give_one_clear_error(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_checkpoint_from_another_preset_is_refused(tmp_path, capsys, data_dir):
    run, data = tmp_path / "run", data_dir
    common = [*sets(TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, ["train.steps=2"]), "--data-dir", data]
    assert main(["train", "--preset", "cpu-longrange", "--run-dir", str(run), *common]) == 0
    capsys.readouterr()
    assert main(["train", "--preset", "cpu-longrange", "--run-dir", str(run), *common]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--preset", "cpu-longrange-txl", "--run-dir", str(run), "--resume", *common,
                 "--set", "model.cmem_len=0", "--set", "model.mem_len=24"]) == 2
    err = capsys.readouterr().err
    assert "latest.pt: checkpoint is from another model or preset" in err and "model.cmem_len" in err
    # resuming with the run's own config continues (more steps)
    assert main(["train", "--run-dir", str(run), "--resume", "--set", "train.steps=3"]) == 0
    assert json.loads((run / "results.json").read_text())["steps"] == 3


def test_model_config_passes_every_transformer_field_to_the_stack():
    import dataclasses

    from core import CTConfig
    from text.config import ModelConfig
    changed = dict(d_model=96, n_layers=3, n_heads=6, d_ff=200, mem_len=7, cmem_len=5, compression_rate=2,
                   compression="gru", compression_loss="autoencoding", compression_loss_weight=0.5, dropout=0.2,
                   dropatt=0.3, pre_ln=True, clamp_len=40, same_length=True)
    shared = {f.name for f in dataclasses.fields(ModelConfig)} & {f.name for f in dataclasses.fields(CTConfig)}
    assert shared == set(changed)                                  # the test covers every shared field
    ct = ModelConfig(**changed).ct_config(cmem_len=11)
    assert {k: getattr(ct, k) for k in changed} == {**changed, "cmem_len": 11}


def test_tied_head_follows_a_float64_model():
    """The tied head's logits, log-probabilities and NLL stay float64 in a float64 model and equal a float64
    reference (they were cast down to float32)."""
    torch.manual_seed(0)
    lm = LanguageModel(load_config(TextConfig, "text", "cpu-enwik8").model, 256).double()
    head = lm.head
    h = torch.randn(5, lm.cfg.d_model, dtype=torch.float64)
    target = torch.tensor([0, 7, 255, 31, 128])
    ref = torch.log_softmax(h @ lm.embed.weight.T + head.bias, dim=-1)
    logp, nll = head.log_prob(h), head.nll(h, target)
    assert logp.dtype == nll.dtype == torch.float64
    torch.testing.assert_close(logp, ref, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(nll, -ref.gather(1, target[:, None])[:, 0], rtol=1e-13, atol=1e-13)


def _value_notes(path) -> dict[str, str]:
    """{"section.key": the comment after the value} for every value inside a [section] of a TOML preset."""
    import re
    notes, section = {}, None
    for line in path.read_text().splitlines():
        if m := re.match(r"^\[([\w.]+)\]$", line):
            section = m.group(1)
        elif section and (m := re.match(r"^(\w+) = [^#]*(?:#\s*(.*))?$", line)):
            notes[f"{section}.{m.group(1)}"] = m.group(2) or ""
    return notes


PAPER_PRESETS = [("text", n) for n in ("enwik8", "enwik8-txl", "wikitext103", "wikitext103-txl", "pg19", "pg19-txl")] + \
    [("speech", n) for n in ("paper-compressive", "paper-transformerxl", "paper-wavenet")]


@pytest.mark.parametrize("domain,name", PAPER_PRESETS, ids=[n for _, n in PAPER_PRESETS])
def test_paper_presets_mark_where_every_value_comes_from(domain, name):
    """Each value of a paper preset says, in the file, whether it is the paper's, assumed, changed (and why) or
    run mechanics of ours."""
    from core.run.config import find_preset
    notes = _value_notes(find_preset(domain, name))
    assert len(notes) > 20
    unmarked = [k for k, note in notes.items() if not note.startswith(("paper", "assumed", "changed", "ours"))]
    assert unmarked == []


def test_paper_presets_name_their_departures_from_the_paper():
    from core.run.config import CONFIGS_DIR
    text = CONFIGS_DIR / "text"
    wt, pg = _value_notes(text / "wikitext103.toml"), _value_notes(text / "pg19.toml")
    assert load_config(TextConfig, "text", "wikitext103").train.batch_size == 64
    assert wt["train.batch_size"].startswith("changed (paper: 128)")
    assert load_config(TextConfig, "text", "pg19").train.batch_size == 32
    assert pg["train.batch_size"].startswith("changed (paper: 512")
    assert "sentencepiece" in pg["data.vocab_size"] and "SubwordTextEncoder" in pg["data.vocab_size"]
    for name in ("wikitext103", "pg19"):
        assert _value_notes(text / f"{name}.toml")["model.dropout"].startswith("assumed")


def test_enwik8_txl_is_the_equal_cost_twin_not_the_papers_baseline():
    """Pinned: memory 1920 = 768 + 1152 in training and evaluation (the paper's TXL: 2304, and 4096 at evaluation,
    0.98 BPC); the preset and docs/text.md say it is not the paper's baseline."""
    from core.run.config import CONFIGS_DIR
    txl = load_config(TextConfig, "text", "enwik8-txl")
    assert (txl.model.mem_len, txl.model.cmem_len, txl.eval.mem_len, txl.eval.cmem_len) == (1920, 0, -1, -1)
    assert "NOT the paper's TransformerXL baseline" in (CONFIGS_DIR / "text" / "enwik8-txl.toml").read_text()
    docs = (CONFIGS_DIR.parent / "docs" / "text.md").read_text()
    assert "not the paper's TransformerXL baseline" in docs
