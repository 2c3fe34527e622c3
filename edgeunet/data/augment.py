"""The random crop, pad and augmentation of training items (2-D; ``volume_dataset`` reuses the per-axis rule).

Used by ``dataset``'s Datasets after full-image preprocessing; every function draws from the
``numpy.random.Generator`` it is given, so a seed gives the same items anywhere.
"""

from __future__ import annotations

import numpy as np


def pad_or_crop_axis(length: int, size: int, rng: np.random.Generator) -> tuple[tuple[int, int], slice]:
    """(pad_before, pad_after) and the crop slice that bring one axis of ``length`` to ``size``."""
    if length < size:
        before = int(rng.integers(0, size - length + 1))
        return (before, size - length - before), slice(0, size)
    start = int(rng.integers(0, length - size + 1))
    return (0, 0), slice(start, start + size)


def crop_or_pad(x: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cuts (C, H, W) ``x`` and (H, W) ``mask`` to (C, size, size) and (size, size) at a random place.

    Sides longer than ``size`` are cropped; shorter ones are reflect-padded, mask included.
    """
    (pad_h, rows), (pad_w, cols) = (pad_or_crop_axis(n, size, rng) for n in mask.shape)
    if pad_h != (0, 0) or pad_w != (0, 0):
        modes = ["reflect" if n > 1 else "edge" for n in mask.shape]
        mode = "reflect" if modes == ["reflect", "reflect"] else "edge"
        x = np.pad(x, ((0, 0), pad_h, pad_w), mode=mode)
        mask = np.pad(mask, (pad_h, pad_w), mode=mode)
    return x[:, rows, cols], mask[rows, cols]


def augment_pair(x: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random rotation by k*90 degrees, random flip, and gain/offset jitter of (C, S, S) ``x``; mask follows."""
    k = int(rng.integers(4))
    x, mask = np.rot90(x, k, axes=(1, 2)), np.rot90(mask, k)
    if rng.random() < 0.5:
        x, mask = x[:, :, ::-1], mask[:, ::-1]
    gain, offset = rng.uniform(0.9, 1.1), rng.uniform(-0.1, 0.1)
    return (x * np.float32(gain) + np.float32(offset)).astype(np.float32, copy=False), mask
