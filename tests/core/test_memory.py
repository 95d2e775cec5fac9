"""FIFO and compression bookkeeping, resets, state, temporal range."""
import io
import random

import pytest
import torch

from core import CompressiveTransformer, CTConfig, Memory


class TwoQueues:
    """A plain-Python model of Algorithm 1's bookkeeping for one layer: a FIFO of n_m memories, and a
    FIFO of n_cm compressed slots fed by groups of c evicted memories (mean pooling)."""

    def __init__(self, mem_len, cmem_len, rate):
        self.mem_len, self.cmem_len, self.rate = mem_len, cmem_len, rate
        self.mem, self.pending, self.cmem = [], [], []

    def push(self, vectors):
        self.mem += vectors
        overflow = max(0, len(self.mem) - self.mem_len)
        evicted, self.mem = self.mem[:overflow], self.mem[overflow:]
        self.pending += evicted
        while len(self.pending) >= self.rate:
            group, self.pending = self.pending[:self.rate], self.pending[self.rate:]
            self.cmem.append(sum(group) / self.rate)
        self.cmem = self.cmem[-self.cmem_len:] if self.cmem_len else []


@pytest.mark.parametrize("mem_len,cmem_len,rate", [(7, 5, 3), (4, 3, 2), (0, 4, 2), (6, 0, 3)])
def test_fifo_and_compression_match_two_queue_model(mem_len, cmem_len, rate):
    torch.manual_seed(0)
    rng = random.Random(mem_len * 100 + cmem_len)
    cfg = CTConfig(d_model=8, n_layers=2, n_heads=2, d_ff=16, mem_len=mem_len, cmem_len=cmem_len,
                   compression_rate=rate, compression="mean_pool", dropout=0.0)
    model = CompressiveTransformer(cfg).double().eval()
    mem = model.init_memory(2, dtype=torch.float64)
    reference = [TwoQueues(mem_len, cmem_len, rate) for _ in range(2)]
    lengths = [1, 1, 1, 5, 2, 11, 1, 3, 1, 1, 1, 1, 8, 4, 1, 13, 2] + [rng.randint(1, 9) for _ in range(20)]
    for t in lengths:
        x = torch.randn(2, t, 8, dtype=torch.float64)
        mem = model(x, mem).memory
        for b in range(2):
            reference[b].push([x[b, i] for i in range(t)])
            lm = mem.layers[0]                                   # layer 0's memory holds the inputs x
            expect_mem = torch.stack(reference[b].mem) if reference[b].mem else torch.zeros(0, 8, dtype=torch.float64)
            torch.testing.assert_close(lm.mem[b], expect_mem)
            if cmem_len:
                expect_cmem = torch.stack(reference[b].cmem) if reference[b].cmem else lm.cmem[b][:0]
                torch.testing.assert_close(lm.cmem[b], expect_cmem)
                assert lm.pending.shape[1] == len(reference[b].pending)
            else:
                assert lm.cmem.shape[1] == 0 and lm.pending.shape[1] == 0
        assert all(lm.mem.shape[1] == min(mem_len, sum(lengths)) or True for lm in mem.layers)
        assert len({lm.mem.shape[1] for lm in mem.layers}) == 1


@pytest.mark.parametrize("compression", ["conv", "dilated_conv", "gru", "max_pool"])
def test_compression_groups_do_not_depend_on_window_cuts(compression):
    torch.manual_seed(3)
    cfg = CTConfig(d_model=8, n_layers=1, n_heads=2, d_ff=16, mem_len=4, cmem_len=6, compression_rate=3,
                   compression=compression, dropout=0.0)
    model = CompressiveTransformer(cfg).double().eval()
    stream = torch.randn(1, 30, 8, dtype=torch.float64)

    def run(cuts):
        mem, start = model.init_memory(1, dtype=torch.float64), 0
        for c in cuts:
            mem = model(stream[:, start:start + c], mem).memory
            start += c
        assert start == 30
        return mem.layers[0]

    a, b = run([30]), run([1] * 30)
    c = run([4, 7, 1, 2, 9, 5, 2])
    for other in (b, c):
        torch.testing.assert_close(other.cmem, a.cmem)
        torch.testing.assert_close(other.mem, a.mem)
        torch.testing.assert_close(other.pending, a.pending)


def test_reset_rows_forgets_only_those_streams():
    torch.manual_seed(4)
    cfg = CTConfig(d_model=8, n_layers=2, n_heads=2, d_ff=16, mem_len=6, cmem_len=4, compression_rate=2,
                   dropout=0.0)
    model = CompressiveTransformer(cfg).eval()
    mem = model.init_memory(3)
    for _ in range(4):
        mem = model(torch.randn(3, 5, 8), mem).memory
    mem = mem.reset_rows(torch.tensor([False, True, False]))
    x = torch.randn(3, 5, 8)
    out = model(x, mem).hidden
    fresh = model(x[1:2], model.init_memory(1)).hidden     # a stream with no past at all
    torch.testing.assert_close(out[1:2], fresh, rtol=1e-5, atol=1e-5)
    kept = model(x[[0, 2]], Memory(tuple(lm.map(lambda t: t[[0, 2]]) for lm in mem.layers))).hidden
    torch.testing.assert_close(out[[0, 2]], kept, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out[0], model(x[0:1], model.init_memory(1)).hidden[0], atol=1e-3)


def test_memory_state_dict_round_trip_and_weights_only_load():
    cfg = CTConfig(d_model=8, n_layers=2, n_heads=2, d_ff=16, mem_len=5, cmem_len=4, compression_rate=2,
                   compression="most_used", dropout=0.0)
    model = CompressiveTransformer(cfg).eval()
    mem = model.init_memory(2)
    for t in (3, 4, 6):
        mem = model(torch.randn(2, t, 8), mem).memory
    buf = io.BytesIO()
    torch.save(mem.state_dict(), buf)
    buf.seek(0)
    loaded = Memory.from_state_dict(torch.load(buf, weights_only=True))
    x = torch.randn(2, 3, 8)
    torch.testing.assert_close(model(x, loaded).hidden, model(x, mem).hidden)
    with pytest.raises(ValueError, match="missing entry"):
        Memory.from_state_dict({"0.mem": torch.zeros(1, 0, 8)})


def test_memory_moves_and_casts():
    cfg = CTConfig(d_model=8, n_layers=1, n_heads=2, d_ff=16, mem_len=4, cmem_len=2, compression_rate=2)
    model = CompressiveTransformer(cfg)
    mem = model(torch.randn(2, 9, 8), model.init_memory(2)).memory.to("cpu", torch.float64)
    assert mem.layers[0].mem.dtype == torch.float64 and mem.layers[0].mem_valid.dtype == torch.bool


def _outputs_after_perturbation(model, stream, window, position):
    """Final window's output of the stream processed window by window, with input ``position`` changed."""
    x = stream.clone()
    if position is not None:
        x[:, position] += 1.0
    mem = model.init_memory(1, dtype=x.dtype)
    out = None
    for start in range(0, x.shape[1], window):
        out = model(x[:, start:start + window], mem)
        mem = out.memory
    return out.hidden


def test_temporal_range_bounds_and_extended_horizon():
    """Beyond the maximum temporal range nothing changes; a Compressive Transformer of equal attention
    cost sees further back than the TransformerXL (Section 3.1: l (n_m + c n_cm + T) vs l (n_m + T))."""
    torch.manual_seed(5)
    window, n_layers, n_m, n_cm, c = 4, 2, 4, 4, 3
    ct_cfg = CTConfig(d_model=8, n_layers=n_layers, n_heads=2, d_ff=16, mem_len=n_m, cmem_len=n_cm,
                      compression_rate=c, compression="conv", dropout=0.0)
    txl_cfg = ct_cfg.replace(mem_len=n_m + n_cm, cmem_len=0)       # equal attention cost
    ct = CompressiveTransformer(ct_cfg).double().eval()
    txl = CompressiveTransformer(txl_cfg).double().eval()
    total = 20 * window
    stream = torch.randn(1, total, 8, dtype=torch.float64)
    last = total - 1                                               # the newest query
    base_ct = _outputs_after_perturbation(ct, stream, window, None)
    base_txl = _outputs_after_perturbation(txl, stream, window, None)

    def changed(model, base, distance):
        out = _outputs_after_perturbation(model, stream, window, last - distance)
        return not torch.equal(out[:, -1], base[:, -1])

    txl_range = n_layers * (txl_cfg.mem_len + window)
    ct_range = n_layers * (n_m + c * (n_cm + 1) + window)          # +1 group: memories waiting in pending
    assert ct_cfg.temporal_range(window) <= ct_range
    # every distance just past each bound, then a sample further back
    for d in list(range(txl_range + 1, txl_range + 2 * window)) + list(range(txl_range + 2 * window, total, 7)):
        assert not changed(txl, base_txl, d), f"TransformerXL output changed by an input {d} steps back"
    for d in list(range(ct_range + 1, ct_range + 2 * window)) + list(range(ct_range + 2 * window, total, 7)):
        assert not changed(ct, base_ct, d), f"Compressive Transformer output changed by an input {d} steps back"
    beyond_txl = [d for d in range(txl_range + 1, ct_range + 1, 2) if changed(ct, base_ct, d)]
    assert beyond_txl, "the compressed memory should carry information beyond the TransformerXL's range"
    assert max(beyond_txl) > txl_range + window


def test_conv_compressor_is_the_strided_convolution():
    """The conv compressor's one-matmul form equals nn.Conv1d with kernel = stride = c, and MaxPool /
    MeanPool equal torch's pooling with kernel = stride = c."""
    from core.compression import build_compressor
    torch.manual_seed(6)
    old = torch.randn(3, 12, 16, dtype=torch.float64)                    # [B, n*c, d], c = 3
    conv = build_compressor("conv", 16, 3).double()
    ref = torch.nn.functional.conv1d(old.transpose(1, 2), conv.conv.weight, conv.conv.bias, stride=3).transpose(1, 2)
    torch.testing.assert_close(conv(old), ref)
    pooled = torch.nn.functional.max_pool1d(old.transpose(1, 2), 3).transpose(1, 2)
    torch.testing.assert_close(build_compressor("max_pool", 16, 3)(old), pooled)
    averaged = torch.nn.functional.avg_pool1d(old.transpose(1, 2), 3).transpose(1, 2)
    torch.testing.assert_close(build_compressor("mean_pool", 16, 3)(old), averaged)
