"""The Compressive Transformer LM under DDP (gloo, 2 spawned processes): memories per rank, compressor
gradients only once the memory overflows (find_unused_parameters), and equal weights on both ranks."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, port, data_dir, run_dir, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    import sys
    sys.path.insert(0, os.path.dirname(__file__))
    from text_run_helpers import TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN
    from text import run
    out = run.train("cpu-longrange", [*TINY_LONGRANGE, *TINY_MODEL, *TINY_TRAIN, "train.steps=6",
                                      "model.mem_len=8", "model.cmem_len=4", "train.device=cpu"],
                    run_dir, data_dir=data_dir)
    torch.save({k: v.detach().clone() for k, v in out["model"].state_dict().items()},
               os.path.join(out_dir, f"weights{rank}.pt"))


@pytest.mark.slow
def test_two_ranks_train_the_compressive_lm_in_lockstep(tmp_path):
    from text.config import TextConfig
    from text.task import load_dataset
    from core.run import load_config, load_checkpoint
    from text.task import build_model
    from text_run_helpers import TINY_LONGRANGE, TINY_MODEL
    # prepare once in this process, so the spawned ranks only read the cache
    load_dataset(load_config(TextConfig, "text", "cpu-longrange", [*TINY_LONGRANGE, f"data.data_dir={tmp_path}"]))
    mp.spawn(_worker, args=(_port(), str(tmp_path), str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert ckpt["world_size"] == 2 and ckpt["step"] == 6
    assert ckpt["tokens"] == 6 * 2 * 4 * 16                       # steps x ranks x batch x window
    m0, m1 = ckpt["ranks"][0]["state"], ckpt["ranks"][1]["state"]
    assert m0["0.cmem"].shape[1] > 0                               # the memory overflowed into cmem
    assert not torch.equal(m0["0.mem"], m1["0.mem"])               # each rank its own streams
    w0 = torch.load(tmp_path / "weights0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "weights1.pt", weights_only=True)
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    # the compressor was trained (its attention-reconstruction loss reached it through DDP)
    cfg = load_config(TextConfig, "text", "cpu-longrange", [*TINY_LONGRANGE, *TINY_MODEL, "model.mem_len=8",
                                                             "model.cmem_len=4", f"data.data_dir={tmp_path}"])
    init = build_model(cfg, 256).state_dict()
    comp = [k for k in w0 if "compressor" in k]
    assert comp and all(not torch.equal(w0[k], init[k]) for k in comp)
