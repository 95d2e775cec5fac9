"""Gradient isolation of the compression losses, training of every compressor x loss, TXL special case."""
import pytest
import torch
from torch import nn

from core import COMPRESSION_LOSSES, COMPRESSIONS, CompressiveTransformer, CTConfig


def tiny(**changes):
    base = dict(d_model=16, n_layers=2, n_heads=2, d_ff=32, mem_len=4, cmem_len=4, compression_rate=2,
                compression="conv", compression_loss="attention", dropout=0.0)
    return CTConfig(**{**base, **changes})


def run_windows(model, n_windows, window=4, batch=2, seed=0):
    """Streams random windows through ``model``; returns the outputs of the last window."""
    g = torch.Generator().manual_seed(seed)
    mem = model.init_memory(batch)
    out = None
    for _ in range(n_windows):
        out = model(torch.randn(batch, window, model.cfg.d_model, generator=g), mem)
        mem = out.memory.detach()
    return out


def grads_of(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    compressor, main = {}, {}
    for name, p in model.named_parameters():
        target = compressor if (".compressor." in name or ".decoder." in name) else main
        target[name] = None if p.grad is None else p.grad.abs().sum().item()
    return compressor, main


@pytest.mark.parametrize("compression", ["conv", "dilated_conv", "gru"])
def test_attention_reconstruction_loss_reaches_compressor_only(compression):
    torch.manual_seed(0)
    model = CompressiveTransformer(tiny(compression=compression))
    out = run_windows(model, 4)
    assert out.aux_loss.item() > 0
    compressor, main = grads_of(model, out.aux_loss)
    assert all(g is not None and g > 0 for g in compressor.values()), compressor
    assert all(g is None or g == 0 for g in main.values()), {k: v for k, v in main.items() if v}


@pytest.mark.parametrize("loss_kind", ["attention", "autoencoding", "none"])
def test_task_loss_reaches_no_compressor_parameter(loss_kind):
    torch.manual_seed(1)
    model = CompressiveTransformer(tiny(compression_loss=loss_kind))
    out = run_windows(model, 4)
    compressor, main = grads_of(model, out.hidden.pow(2).mean())
    assert all(g is None or g == 0 for g in compressor.values()), compressor
    # and no weight of the main network is frozen: every one of them gets gradient from the task
    assert all(g is not None and g > 0 for g in main.values()), {k: v for k, v in main.items() if not v}


def test_bptt_task_gradient_reaches_compressor_through_previous_window():
    torch.manual_seed(2)
    model = CompressiveTransformer(tiny(compression_loss="bptt"))
    out = run_windows(model, 4)
    assert out.aux_loss.item() == 0
    compressor, main = grads_of(model, out.hidden.pow(2).mean())
    assert all(g is not None and g > 0 for g in compressor.values()), compressor
    assert all(g is not None and g > 0 for g in main.values())


def test_bptt_recompute_leaves_values_unchanged():
    """The recomputed compressed slots equal the stored ones: BPTT changes gradients, not outputs."""
    torch.manual_seed(3)
    model = CompressiveTransformer(tiny(compression_loss="bptt")).eval()
    mem = model.init_memory(2)
    for _ in range(3):
        mem = model(torch.randn(2, 4, 16), mem).memory
    x = torch.randn(2, 4, 16)
    with_grad = model(x, mem).hidden
    with torch.no_grad():
        without = model(x, mem).hidden
    torch.testing.assert_close(with_grad.detach(), without)


def test_main_weights_keep_training_under_attention_loss():
    """The compression loss must not freeze W_k / W_v (a bug of one public port): they change under Adam."""
    torch.manual_seed(4)
    model = CompressiveTransformer(tiny())
    before = model.layers[0].attn.qkv.weight.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        out = run_windows(model, 3)
        opt.zero_grad()
        (out.hidden.pow(2).mean() + out.aux_loss).backward()
        opt.step()
    assert model.layers[0].attn.qkv.weight.requires_grad
    assert not torch.allclose(model.layers[0].attn.qkv.weight, before)


class NextStep(nn.Module):
    """A toy sequence model around the stack: predict the next input vector."""

    def __init__(self, cfg):
        super().__init__()
        self.stack = CompressiveTransformer(cfg)
        self.head = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x, mem):
        out = self.stack(x, mem)
        return self.head(out.hidden), out


@pytest.mark.parametrize("loss_kind", COMPRESSION_LOSSES)
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compressor_and_loss_trains(compression, loss_kind):
    torch.manual_seed(5)
    cfg = tiny(compression=compression, compression_loss=loss_kind, d_model=8, n_heads=2, d_ff=16,
               mem_len=3, cmem_len=3)
    model = NextStep(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    stream = torch.randn(2, 24, 8, generator=g)                 # a fixed batch of 6 windows

    def epoch():
        mem, total, aux = model.stack.init_memory(2), 0.0, 0.0
        opt.zero_grad()
        for start in range(0, 20, 4):
            pred, out = model(stream[:, start:start + 4], mem)
            loss = (pred - stream[:, start + 1:start + 5]).pow(2).mean()
            (loss + out.aux_loss).backward()
            total, aux, mem = total + loss.item(), aux + out.aux_loss.item(), out.memory.detach()
        opt.step()
        return total, aux

    first_task, first_aux = epoch()
    for _ in range(15):
        task, aux = epoch()
    assert all(map(lambda v: v == v and abs(v) < 1e6, (task, aux)))   # finite
    assert task < first_task
    if cfg.trains_compressor and loss_kind in ("attention", "autoencoding"):
        assert aux < first_aux


def test_transformerxl_equals_compressive_path_with_empty_compressed_memory():
    torch.manual_seed(6)
    ct = CompressiveTransformer(tiny(mem_len=12, cmem_len=4)).eval()
    txl = CompressiveTransformer(tiny(mem_len=12, cmem_len=0)).eval()
    missing, unexpected = txl.load_state_dict(ct.state_dict(), strict=False)
    assert not missing and all(".compressor." in k for k in unexpected)
    mem_ct, mem_txl = ct.init_memory(2), txl.init_memory(2)
    for _ in range(3):                                  # 3 windows of 4 never overflow n_m = 12
        x = torch.randn(2, 4, 16)
        a, b = ct(x, mem_ct), txl(x, mem_txl)
        torch.testing.assert_close(a.hidden, b.hidden, rtol=0, atol=0)
        mem_ct, mem_txl = a.memory, b.memory
    assert mem_ct.cmem_lens() == [0, 0]


def test_evaluation_with_larger_memories_shares_weights():
    torch.manual_seed(7)
    model = CompressiveTransformer(tiny()).eval()
    big = model.with_memory_sizes(mem_len=8, cmem_len=12)
    assert big.cfg.mem_len == 8 and big.cfg.cmem_len == 12 and model.cfg.cmem_len == 4
    assert big.layers[0].attn.qkv.weight is model.layers[0].attn.qkv.weight
    out = run_windows(big, 10)
    assert out.memory.mem_len == 8 and out.memory.cmem_lens() == [12, 12]
    txl = CompressiveTransformer(tiny(cmem_len=0))
    with pytest.raises(ValueError, match="cmem_len"):
        txl.with_memory_sizes(cmem_len=8)
    pooled = CompressiveTransformer(tiny(cmem_len=0, compression="max_pool")).with_memory_sizes(cmem_len=8)
    assert run_windows(pooled, 6).memory.cmem_lens() == [8, 8]      # 20 evicted / c=2, capped at 8


def test_per_layer_compression_rates():
    torch.manual_seed(8)
    model = CompressiveTransformer(tiny(compression_rate=(2, 4), cmem_len=8)).eval()
    mem = run_windows(model, 5).memory                   # 20 inputs, 16 evicted per layer
    assert mem.cmem_lens() == [8, 4]


def test_most_used_keeps_the_most_attended_memory_of_each_group():
    from core.compression import MostUsed
    old = torch.arange(12.0).view(1, 6, 2)
    usage = torch.tensor([[0.1, 0.5, 0.2, 0.9, 0.3, 0.0]])
    out = MostUsed(2, 3)(old, usage)
    torch.testing.assert_close(out, old[:, [1, 3]])


@pytest.mark.parametrize("field,changes", [
    ("n_heads", dict(d_model=10, n_heads=3)),
    ("compression_rate", dict(cmem_len=4, compression_rate=0)),
    ("compression_rate", dict(n_layers=3, compression_rate=(2, 2))),
    ("compression", dict(compression="zip")),
    ("compression_loss", dict(compression_loss="magic")),
    ("mem_len", dict(mem_len=-1)),
    ("dropout", dict(dropout=1.5)),
    ("clamp_len", dict(clamp_len=0)),
])
def test_invalid_configurations_name_the_field(field, changes):
    with pytest.raises(ValueError, match=f"CTConfig.{field}"):
        tiny(**changes)


def test_memory_from_another_batch_size_or_model_is_rejected():
    model = CompressiveTransformer(tiny())
    with pytest.raises(ValueError, match="batch size"):
        model(torch.randn(3, 4, 16), model.init_memory(2))
    other = CompressiveTransformer(tiny(n_layers=3))
    with pytest.raises(ValueError, match="n_layers"):
        model(torch.randn(2, 4, 16), other.init_memory(2))
    wide = CompressiveTransformer(tiny(d_model=32))
    with pytest.raises(ValueError, match="d_model"):
        model(torch.randn(2, 4, 16), wide.init_memory(2))
    with pytest.raises(ValueError, match="x: expected"):
        model(torch.randn(2, 4, 8), model.init_memory(2))


def test_parameter_and_flop_counts():
    from core import count_parameters, flops_per_token
    cfg = tiny(cmem_len=0)
    model = CompressiveTransformer(cfg)
    d, f, l = 16, 32, 2
    per_layer = 3 * d * d + d * d + d * d + 2 * 2 * (d // 2) + (d * f + f) + (f * d + d) + 4 * d
    assert count_parameters(model) == l * per_layer
    assert flops_per_token(cfg, 8, 1000) == 6 * 1000 + 12 * l * d * (4 + 8)
    emb = nn.Embedding(10, 4)
    assert count_parameters(nn.Sequential(emb, nn.Linear(4, 4)), exclude_embeddings=True) == 20
    assert count_parameters(nn.Sequential(emb, nn.Linear(4, 4)), exclude_embeddings=False) == 60
