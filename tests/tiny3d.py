"""Tiny trained 3-D models for the 3-D runtime, export, predict and bench tests (built once per process).

A ``unet3d-ds`` with widths 4, 8, 16 (size multiple 4 per axis, about 4.6 k parameters) trained with
Adam for a few dozen steps on 16^3 crops of synthetic nuclei volumes: enough that masks follow the
volume (random weights give near-constant masks, which would make window/whole agreement trivial).
Built directly with ``create_model`` and ``edgeunet.checkpoint``, not through the trainer.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
from tiny_fit import fit_on_one_thread

CLASS_NAMES = ["background", "nucleus"]
WIDTHS = (4, 8, 16)
VOLUME = (16, 32, 32)  # (D, H, W) of the synthetic training and held-out volumes
PATCH = 16


def volumes(n: int, seed: int, size=VOLUME) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` synthetic (volume uint16 (D, H, W), mask uint8 (D, H, W)) pairs of data-set ``seed``."""
    from edgeunet.data.synthetic import synthetic_volume

    return [synthetic_volume(i, size=size, seed=seed) for i in range(n)]


@functools.cache
def trained_unet3d(steps: int = 60):
    """The tiny unet3d-ds, trained on one thread (deterministic for a given torch build)."""
    import torch

    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING, preprocess

    torch.manual_seed(0)
    pairs = volumes(8, seed=1)
    x = torch.from_numpy(np.stack([preprocess(v, DEFAULT_PREPROCESSING, 1, spatial_dims=3) for v, _ in pairs]))
    y = torch.from_numpy(np.stack([m for _, m in pairs]).astype(np.int64))
    model = create_model("unet3d-ds", widths=WIDTHS)
    rng = np.random.default_rng(0)

    def batch():
        index = rng.integers(0, len(x), 4)
        z, r, c = (int(rng.integers(0, n - PATCH + 1)) for n in VOLUME)
        crop = (slice(None), slice(z, z + PATCH), slice(r, r + PATCH), slice(c, c + PATCH))
        return x[index][(slice(None),) + crop], y[index][crop]

    return fit_on_one_thread(model, batch, steps)


@functools.cache
def checkpoint_3d() -> Path:
    """best.pt of the tiny trained unet3d-ds (``train_args.img_size`` = the 16 voxel patch)."""
    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    path = Path(tempfile.mkdtemp(prefix="tiny3d-")) / "best.pt"
    save_checkpoint(make_checkpoint(trained_unet3d(), DEFAULT_PREPROCESSING, CLASS_NAMES,
                                    train_args={"img_size": PATCH}), path)
    return path


@functools.cache
def onnx_3d() -> Path:
    """The tiny trained unet3d-ds exported by ``export_onnx`` (FP32, dynamic B, D, H, W)."""
    from edgeunet.export.onnx import export_onnx
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    path = Path(tempfile.mkdtemp(prefix="tiny3d-onnx-")) / "model.onnx"
    return export_onnx(trained_unet3d(), path, DEFAULT_PREPROCESSING, CLASS_NAMES)
