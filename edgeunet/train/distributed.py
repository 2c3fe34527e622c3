"""PyTorch's own distributed engine under ``torchrun``: joining the group, wrapping, reductions.

``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK (plus MASTER_ADDR/MASTER_PORT); without them
every function here is a no-op, so the single-process and the distributed path run the same
trainer code. Only rank 0 touches the file system; the others get what they need from it
through the process group.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..errors import UserError

logger = logging.getLogger(__name__)


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
    def from_env(cls) -> DistContext:
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def rank_device(device: str, ctx: DistContext) -> str:
    """``cuda`` becomes this process's own GPU, ``cuda:<LOCAL_RANK>``; ``cpu`` stays."""
    if not (ctx.enabled and device == "cuda"):
        return device
    count = torch.cuda.device_count()
    if ctx.local_rank >= count:
        raise UserError(f"process {ctx.local_rank} on this machine has no GPU of its own ({count} visible): "
                        f"use torchrun --nproc-per-node={count} or fewer")
    return f"cuda:{ctx.local_rank}"


def join(device: str) -> DistContext:
    """Joins the group started by torchrun, once per process (``nccl`` for CUDA, ``gloo`` for the CPU).

    Later calls (a second ``fit``, as ``edgeunet prune --steps`` makes) reuse the group: under
    torchrun a process cannot leave the default group and join it again. The group is left when
    the interpreter exits.
    """
    ctx = DistContext.from_env()
    if ctx.enabled and not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        atexit.register(_leave)
        logger.info("rank %d of %d joined the %s process group", ctx.rank, ctx.world_size, dist.get_backend())
    return ctx


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def split_batch(batch_size: int, ctx: DistContext) -> int:
    """The per-process batch: ``--batch-size`` is the total over all processes."""
    if batch_size % ctx.world_size:
        raise UserError(f"--batch-size {batch_size} is the total over {ctx.world_size} processes and must split "
                        f"evenly: use a multiple of {ctx.world_size}")
    return batch_size // ctx.world_size


def wrap(model: torch.nn.Module, ctx: DistContext, device: str, sync_bn: bool) -> torch.nn.Module:
    """The module to train: ``model`` itself in one process, else DistributedDataParallel around it.

    With ``sync_bn`` the BatchNorm layers of ``model`` become SyncBatchNorm in place (same
    parameters and buffers, so an optimizer built before keeps working);
    ``revert_sync_batchnorm`` undoes that.
    """
    if not ctx.enabled:
        if sync_bn:
            logger.info("--sync-bn has no effect in a single process")
        return model
    if sync_bn:
        if not device.startswith("cuda"):
            raise UserError("--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm does not run on the CPU): "
                            "drop --sync-bn or train with --device cuda")
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    on_gpu = device.startswith("cuda")
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch.device(device)] if on_gpu else None)


def revert_sync_batchnorm(model: torch.nn.Module, spatial_dims: int | None = None) -> None:
    """Turns SyncBatchNorm layers back into BatchNorm2d (BatchNorm3d for a 3-D model), sharing their tensors.

    SyncBatchNorm does not record what it replaced; an edgeunet model holds BatchNorm of its own
    dimensionality only, so ``model.cfg.spatial_dims`` (or ``spatial_dims``) says which it was.
    """
    dims = spatial_dims or getattr(getattr(model, "cfg", None), "spatial_dims", 2)
    norm_class = torch.nn.BatchNorm3d if dims == 3 else torch.nn.BatchNorm2d
    for name, child in model.named_children():
        if not isinstance(child, torch.nn.SyncBatchNorm):
            revert_sync_batchnorm(child, dims)
            continue
        norm = norm_class(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
        for key, value in [*child.named_parameters(recurse=False), *child.named_buffers(recurse=False)]:
            setattr(norm, key, value)
        setattr(model, name, norm.train(child.training))


def average_buffers(model: torch.nn.Module, ctx: DistContext) -> None:
    """Averages floating-point buffers (BatchNorm running statistics) over the ranks, in place.

    Each rank's last forward updated them from its own batch; after this every rank evaluates,
    and rank 0 saves, one and the same model.
    """
    if not ctx.enabled:
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            buffer.div_(ctx.world_size)


def all_reduce_sum(array: np.ndarray, ctx: DistContext, device: str = "cpu") -> np.ndarray:
    """Sums an integer or float array across ranks (identity in one process)."""
    if not ctx.enabled:
        return array
    tensor = torch.as_tensor(array, device=device, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy().astype(array.dtype)


def share_from_main(read, ctx: DistContext, device: str = "cpu") -> dict:
    """Runs ``read()`` on rank 0 and hands its dict of tensors to every rank.

    The dict travels as ``torch.save`` bytes and is read back with ``weights_only=True``, so
    other ranks neither need the file nor unpickle code. When ``read`` raises on rank 0, the
    other ranks raise a UserError instead of waiting for data that never comes.
    """
    if not ctx.enabled:
        return read()
    payload = torch.zeros(0, dtype=torch.uint8)
    try:
        if ctx.is_main:
            buffer = io.BytesIO()
            torch.save(read(), buffer)
            payload = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
    finally:  # rank 0 announces the size even when read() failed (size 0), so nobody hangs
        size = torch.tensor([payload.numel()], dtype=torch.int64, device=device)
        dist.broadcast(size, src=0)
    if int(size) == 0:
        raise UserError("process 0 could not read the checkpoint to resume from: see its error above")
    data = payload.to(device) if ctx.is_main else torch.empty(int(size), dtype=torch.uint8, device=device)
    dist.broadcast(data, src=0)
    return torch.load(io.BytesIO(data.cpu().numpy().tobytes()), map_location="cpu", weights_only=True)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()
