"""Evaluation keeps no autograd state and does the same work for every window once the memories are full."""
import numpy as np
import pytest
import torch

from text.config import ModelConfig
from text.evaluate import evaluate
from text.model import LanguageModel


def tiny_lm(cmem_len=4, compression="conv", compression_loss="attention"):
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32, mem_len=6, cmem_len=cmem_len, compression_rate=3,
                      compression=compression, compression_loss=compression_loss, dropout=0.0)
    return LanguageModel(cfg, 13)


def record_windows(model):
    """Hooks the stack; returns the list it fills with one entry per window."""
    seen = []

    def hook(module, args, kwargs, out):
        memory = args[1]
        seen.append({"graph": out.hidden.requires_grad or out.hidden.grad_fn is not None
                     or out.aux_loss.grad_fn is not None,
                     "inference": torch.is_inference(out.hidden) and torch.is_inference(out.memory.layers[0].mem),
                     "keys": [lm.cmem.shape[1] + lm.mem.shape[1] for lm in memory.layers],
                     "pending": [lm.pending.shape[1] for lm in out.memory.layers]})
    model.body.register_forward_hook(hook, with_kwargs=True)
    return seen


@pytest.mark.parametrize("cmem_len,compression,loss", [(4, "conv", "attention"), (4, "most_used", "none"),
                                                        (4, "conv", "autoencoding"), (0, "conv", "none")])
def test_eval_builds_no_graph_and_its_work_per_window_is_constant(cmem_len, compression, loss):
    model = tiny_lm(cmem_len, compression, loss)
    seen = record_windows(model)
    tokens = np.random.default_rng(0).integers(0, 13, 5 * 40 + 1)
    r = evaluate(model, tokens, window=5, device=torch.device("cpu"), precision="fp32", collect=True, attention=True)
    assert r.count == 200 and r.extras["tokens_per_s"] > 0 and len(seen) == 40
    assert not any(s["graph"] for s in seen) and all(s["inference"] for s in seen)
    # memories full after 6 + 3 * 4 = 18 tokens (4 windows): from then on every window reads as many keys
    full = [6 + cmem_len] * 2
    assert all(s["keys"] == full for s in seen[4:]) and all(max(s["pending"]) < 3 for s in seen)


def test_dynamic_eval_still_takes_gradient_steps():
    model = tiny_lm()
    before = [p.detach().clone() for p in model.parameters()]
    tokens = np.random.default_rng(1).integers(0, 13, 31)
    evaluate(model, tokens, window=5, device=torch.device("cpu"), precision="fp32", dynamic_lr=0.1)
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
