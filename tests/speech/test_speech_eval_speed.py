"""Speech evaluation keeps no autograd state and reads bounded memories, window after window."""
import torch

from core import CTConfig
from speech.models import SpeechTransformer
from speech.task import evaluate


def test_speech_eval_builds_no_graph_and_reads_bounded_memories():
    torch.manual_seed(0)
    cfg = CTConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32, mem_len=6, cmem_len=4, compression_rate=2,
                   dropout=0.0)
    model = SpeechTransformer(cfg)
    seen = []

    def hook(module, args, out):
        seen.append((out.hidden.requires_grad or out.hidden.grad_fn is not None, torch.is_inference(out.hidden),
                     [lm.cmem.shape[1] + lm.mem.shape[1] for lm in args[1].layers]))
    model.core.register_forward_hook(hook)
    clips = [torch.randint(0, 256, (97,), generator=torch.Generator().manual_seed(i)) for i in range(2)]
    ev = evaluate(model, clips, window=5, batch_size=2, reset=False, device="cpu", precision="fp32")
    assert ev["count"] > 150 and len(seen) >= 19
    assert not any(graph for graph, _, _ in seen) and all(inference for _, inference, _ in seen)
    assert all(keys == [6 + 4] * 2 for _, _, keys in seen[3:])     # full after 6 + 2 * 4 = 14 samples
