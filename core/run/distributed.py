"""torch.distributed plumbing for DDP runs launched by torchrun (or spawned in tests).

`DistContext.from_env()` reads torchrun's RANK / WORLD_SIZE / LOCAL_RANK; with WORLD_SIZE > 1 it joins
the process group (nccl on CUDA, gloo on CPU). Single-process runs get a context whose collectives are
no-ops, so the trainer has one code path.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


def resolve_device(name: str = "auto", local_rank: int = 0, what: str = "train.device") -> torch.device:
    """`what` names the setting or flag the user gave the device with, for the error message."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{what} {name!r}: CUDA is not available on this machine; use cpu or auto")
    return torch.device(name)


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, device: str = "auto") -> "DistContext":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
        dev = resolve_device(device, local)
        if world > 1 and not dist.is_initialized():
            backend = "nccl" if dev.type == "cuda" else "gloo"
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            dist.init_process_group(backend=backend, rank=rank, world_size=world)
        return cls(rank=rank, world_size=world, local_rank=local, device=dev)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Sum a few floats over ranks (metrics: nats and token counts)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64,
                         device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj` (CPU tensors / plain data), returned on all ranks."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_flag(self, flag: bool) -> bool:
        """True on all ranks if any rank raised the flag (e.g. SIGTERM seen by one process)."""
        if not self.enabled:
            return flag
        return self.all_reduce_sum([float(flag)])[0] > 0

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
