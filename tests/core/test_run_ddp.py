"""DDP with the gloo backend and 2 spawned processes: the ranks stay in lock-step (equal weights)."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from core.run import DistContext, TrainConfig, Trainer, load_checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, run_dir, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import sys
    sys.path.insert(0, os.path.dirname(__file__))
    from run_toy import ToyTask
    dist = DistContext.from_env("cpu")
    cfg = TrainConfig(steps=4, batch_size=2, lr=1e-2, warmup_steps=0, log_every=1, progress=False,
                      device="cpu", update_every=2, update_every_after=2, seed=0)
    task = ToyTask(seed=rank)  # different initial weights: DDP must broadcast rank 0's
    summary = Trainer(task, cfg, run_dir, dist).fit()
    torch.save({k: v.detach().clone() for k, v in task.model.state_dict().items()} | {"tokens": summary["tokens"]},
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.close()


@pytest.mark.slow
def test_two_ranks_keep_equal_weights(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in a:
        if k != "tokens":
            assert torch.equal(a[k], b[k]), k
    # windows of 2x8 tokens, (2 + 2*2) windows per rank, both ranks counted
    assert a["tokens"] == 2 * 16 * (2 + 4)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["ranks"]) == 2
    assert ckpt["ranks"][0]["state"]["h"].shape == (2, 16)
    assert not torch.equal(ckpt["ranks"][0]["state"]["h"], ckpt["ranks"][1]["state"]["h"])
