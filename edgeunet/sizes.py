"""Sizes a run can take, torch-free: the size-multiple rule and the memory a size needs.

A U-Net with ``d`` poolings (times its space-to-depth factor) takes H and W that are multiples of its
size multiple (``check_multiple``). A size must also fit in memory: ``check_training_memory`` and
``check_synthetic_memory`` refuse, before anything is read or written, a size whose one batch (image)
needs more than the memory available (``available_memory``), naming the largest size that fits. Their
per-pixel costs are lower bounds (the constants below say what was measured), so they refuse only
sizes that cannot run here.
"""

from __future__ import annotations

import math
import os
import re

from .errors import UserError


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-int(value) // int(multiple)) * int(multiple)


def nearest_valid(size: int, multiple: int) -> tuple[int, ...]:
    """The valid sizes around ``size``: the multiple below and the one above (one value when ``size`` is below
    the first multiple)."""
    lower = int(size) // multiple * multiple
    upper = lower + multiple
    return (upper,) if lower < multiple else (lower, upper)


def size_error(size: int, multiple: int, what: str = "size") -> str:
    """``"<what> 17 is not a multiple of 16 (this model's size multiple): use 16 or 32"``."""
    fix = " or ".join(str(v) for v in nearest_valid(size, multiple))
    return f"{what} {size} is not a multiple of {multiple} (this model's size multiple): use {fix}"


def check_multiple(size: int, multiple: int, what: str = "size") -> int:
    """``size`` when it is a positive multiple of ``multiple``; otherwise UserError naming the nearest valid sizes."""
    if int(size) < 1:
        raise UserError(f"{what} {size} must be a positive number of pixels, e.g. {multiple * 16}")
    if int(size) % multiple:
        raise UserError(size_error(size, multiple, what))
    return int(size)


# Memory a size needs, in bytes per pixel (voxel): lower bounds, so that a size they refuse cannot run here.
# `data synth`: one image (volume) and its mask while they are made; measured about 48 bytes per pixel for 2-D
# images and 35 per voxel for volumes (float64 drawing, the uint16 image, the uint8 mask).
SYNTH_BYTES_PER_VOXEL = 32
# `train` on the CPU: float32 tensors kept for the backward pass, per channel of each level (the level's width
# over its down-sampling): measured 7 to 11 copies for unet-ds, unet, unet3d-ds and unet3d at 256-512 px (64^3).
ACTIVATION_COPIES = 3
# `train` on a GPU: what one batch holds on the host before the copy, a float32 image and an int64 mask per voxel.
HOST_BYTES_PER_VOXEL = 12


def available_memory() -> int | None:
    """Bytes this machine can still give a process: ``MemAvailable`` (/proc/meminfo), within a cgroup v2 limit;
    the free physical pages (``os.sysconf``) without /proc; None where neither is known (then nothing is checked)."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            match = re.search(r"^MemAvailable:\s+(\d+) kB", f.read(), re.MULTILINE)
        available = int(match.group(1)) * 1024 if match else None
    except OSError:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name (macOS)
            return None
    try:  # a container's limit
        with open("/sys/fs/cgroup/memory.max") as f, open("/sys/fs/cgroup/memory.current") as g:
            limit, used = f.read().strip(), int(g.read())
        if limit.isdigit() and available is not None:
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available


def _amount(size: float) -> str:
    gib = size / 2**30
    return f"{gib:,.0f} GB" if gib >= 10 else f"{gib:.1f} GB"


def check_memory(flag: str, sides: tuple[int, ...], bytes_per_voxel: float, what: str,
                 multiples: tuple[int, ...] | None = None, one_side: bool = True, otherwise: str = "free memory",
                 available: int | None = None) -> None:
    """UserError naming the largest size that fits when ``sides`` need more than the memory available.

    Args:
        flag: The flag that set the sides, e.g. ``--img-size`` or ``--patch``.
        sides: Pixels (voxels) per axis of one image (volume, patch).
        bytes_per_voxel: What one pixel (voxel) costs, e.g. ``training_bytes_per_voxel``.
        what: What the memory is for, e.g. ``"for one batch of 8 at this model's width"``.
        multiples: Per axis, the multiple a suggested side must be (the model's size multiples; default 1).
        one_side: The flag takes one side (``--img-size 512``), not one per axis (``--patch 32,64,64``).
        otherwise: The fix when not even the smallest sides fit.
        available: Bytes available (default: ``available_memory()``; None there: no check).
    """
    available = available_memory() if available is None else available
    needed = math.prod(sides) * bytes_per_voxel
    if available is None or needed <= available:
        return
    multiples = tuple(multiples or (1,) * len(sides))
    scale = (available / needed) ** (1 / len(sides))
    fit = [max(m, int(side * scale) // m * m) for side, m in zip(sides, multiples)]
    spell = (lambda values: str(min(values))) if one_side else (lambda values: ",".join(map(str, values)))
    fix = f"use {flag} {spell(fit)} or less" if math.prod(fit) * bytes_per_voxel <= available else otherwise
    raise UserError(f"{flag} {spell(sides)} needs at least {_amount(needed)} {what}; this machine has "
                    f"{_amount(available)} available: {fix}")


def activation_channels(cfg) -> float:
    """Channels per input pixel (voxel) summed over a U-Net's levels: each level's width over the pixels its one
    pixel stands for (space-to-depth stem and poolings), from ``cfg.widths``, ``cfg.pool_factors``,
    ``cfg.space_to_depth`` and ``cfg.spatial_dims`` (a ``ModelConfig``)."""
    scale, total = float(cfg.space_to_depth) ** cfg.spatial_dims, 0.0
    for level, width in enumerate(cfg.widths):
        total += width / scale
        if level < len(cfg.pool_factors):
            scale *= math.prod(cfg.pool_factors[level])
    return total


def training_gpu(device: str) -> bool:
    """Whether ``edgeunet train --device`` trains on an NVIDIA GPU, told without torch: ``cuda``, or ``auto`` with
    an NVIDIA driver's GPU listed in /proc (a Jetson's unified memory is the host's: it counts as no GPU)."""
    if device != "auto":
        return device == "cuda"
    try:
        return any(os.scandir("/proc/driver/nvidia/gpus"))
    except OSError:
        return False


def check_training_memory(cfg, sides: tuple[int, ...], batch: int, device: str, flag: str = "--img-size",
                          one_side: bool = True) -> None:
    """UserError when one training batch of ``sides`` crops cannot fit in this machine's memory: the activations
    of ``cfg`` (``ACTIVATION_COPIES`` float32 copies of ``activation_channels``) on the CPU, the batch itself
    (``HOST_BYTES_PER_VOXEL``) on the host of a GPU."""
    if training_gpu(device):
        cost, what = batch * HOST_BYTES_PER_VOXEL, f"for one batch of {batch} images and masks on the host"
    else:
        cost, what = batch * 4 * ACTIVATION_COPIES * activation_channels(cfg), \
            f"for one batch of {batch} at this model's width"
    check_memory(flag, sides, cost, what, cfg.size_multiples, one_side, otherwise="lower --batch-size or the "
                 "model's --base-width")


def check_synthetic_memory(flag: str, sides: tuple[int, ...], one_side: bool = True) -> None:
    """UserError when one synthetic image (volume) of ``sides`` and its mask cannot be made in this machine's
    memory (``SYNTH_BYTES_PER_VOXEL``)."""
    what = f"to make one {'volume' if len(sides) == 3 else 'image'} and its mask"
    check_memory(flag, sides, SYNTH_BYTES_PER_VOXEL, what, one_side=one_side)
