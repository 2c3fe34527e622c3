"""PyTorch's own distributed engine under ``torchrun``: rank bookkeeping and reductions.

``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK; without them everything here is a no-op,
so the single-process path and the distributed path run the same trainer code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank 0 writes checkpoints, logs and the progress bar."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistContext":
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def setup(device: str) -> DistContext:
    """Joins the process group started by torchrun (``nccl`` on CUDA, ``gloo`` on CPU)."""
    ctx = DistContext.from_env()
    if ctx.enabled and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
    return ctx


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(array: np.ndarray, ctx: DistContext, device: str = "cpu") -> np.ndarray:
    """Sums an integer or float array across ranks (identity in one process)."""
    if not ctx.enabled:
        return array
    tensor = torch.as_tensor(array, device=device, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy().astype(array.dtype)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()
