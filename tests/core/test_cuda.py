"""CUDA checks of the core module (run by scripts/gpu_check.sh on a GPU machine; skipped elsewhere)."""
import pytest
import torch

from core import CompressiveTransformer, CTConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (scripts/gpu_check.sh)")


def cfg(**changes):
    base = dict(d_model=64, n_layers=2, n_heads=4, d_ff=128, mem_len=16, cmem_len=8, compression_rate=2,
                dropout=0.0)
    return CTConfig(**{**base, **changes})


def stream(model, windows, device, autocast=False, need_weights=False):
    g = torch.Generator().manual_seed(0)
    mem, outs = model.init_memory(2, device=device), []
    for _ in range(windows):
        x = torch.randn(2, 8, 64, generator=g).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            out = model(x, mem, return_attention=need_weights)
        outs.append(out)
        mem = out.memory
    return outs


def test_cuda_matches_cpu_in_float32():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    model = CompressiveTransformer(cfg()).eval()
    cpu = stream(model, 5, "cpu")
    gpu = stream(model.cuda(), 5, "cuda")       # the fused (SDPA) attention path on CUDA
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.hidden.cpu(), a.hidden, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(b.aux_loss.cpu(), a.aux_loss, rtol=1e-4, atol=1e-5)


def test_fused_and_explicit_attention_agree_on_cuda():
    torch.manual_seed(1)
    model = CompressiveTransformer(cfg()).cuda().eval()
    fused = stream(model, 4, "cuda")
    explicit = stream(model, 4, "cuda", need_weights=True)
    for a, b in zip(fused, explicit):
        torch.testing.assert_close(a.hidden, b.hidden, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("compression", ["conv", "most_used", "gru"])
def test_bf16_autocast_trains_and_keeps_float32_memory(compression):
    torch.manual_seed(2)
    model = CompressiveTransformer(cfg(compression=compression)).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(3)
    mem = model.init_memory(2)
    for _ in range(6):
        x = torch.randn(2, 8, 64, generator=g).cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x, mem)
            loss = out.hidden.float().pow(2).mean() + out.aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        mem = out.memory.detach()
        assert torch.isfinite(loss)
    assert mem.layers[0].mem.dtype == torch.float32 and mem.layers[0].mem.is_cuda
    back = mem.to("cpu")
    assert back.layers[1].cmem.device.type == "cpu" and back.cmem_lens() == mem.cmem_lens()
