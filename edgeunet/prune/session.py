"""What a pruning run works with: the checkpoint's model, its fine-tuning data, the image size at
which MACs are counted, and Dice on the validation samples."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import atomic
from ..checkpoint import model_from_checkpoint, training_facts
from ..data.dataset import build_datasets
from ..data.sources import check_data
from ..errors import UserError
from ..runtime.preprocess import DEFAULT_PREPROCESSING
from ..sizes import check_multiple
from ..train.distributed import DistContext
from ..train.evaluate import evaluate
from ..train.loop import resolve_device
from ..train.settings import synthetic_data


@dataclass
class PruneSession:
    """A loaded checkpoint plus data. ``model`` is on ``device`` in eval mode."""

    model: torch.nn.Module
    checkpoint: dict
    source: str | None
    preprocessing: dict
    class_names: list[str]
    train_ds: object
    val_samples: list
    img_size: int
    device: str
    data_info: dict = field(default_factory=dict)
    patch: tuple[int, int, int] | None = None  # a 3-D model's fine-tuning patch and validation window

    def dice(self, model: torch.nn.Module | None = None) -> float | None:
        """Mean foreground Dice of ``model`` (default: the session's) on the validation samples."""

        model = model if model is not None else self.model
        window = self.patch or self.img_size
        summary = evaluate(model, self.val_samples, self.preprocessing, self.device, window)
        return None if summary["mean_dice"] is None else round(float(summary["mean_dice"]), 6)

    def calibration_batches(self, batch_size: int, count: int = 4, seed: int = 0) -> list:
        """``count`` (x (B, C, S, S), y (B, S, S)) training batches, for Taylor importance."""
        loader = torch.utils.data.DataLoader(self.train_ds, batch_size=batch_size, shuffle=True,
                                             generator=torch.Generator().manual_seed(seed))
        batches = []
        for batch in loader:
            batches.append(batch)
            if len(batches) == count:
                break
        return batches


def resolve_img_size(img_size: int | None, checkpoint: dict, size_multiple: int) -> int:
    """``img_size``, else the checkpoint's training crop, else 256; must be a multiple of ``size_multiple``."""
    size = int(img_size or training_facts(checkpoint).crop)
    return check_multiple(size, size_multiple, "--img-size")


def resolve_patch(patch, checkpoint: dict, cfg) -> tuple[int, int, int]:
    """A 3-D model's fine-tuning patch: ``patch``, else the checkpoint's, else its img_size cube (checked)."""
    patch = tuple(patch or training_facts(checkpoint).patch_or_cube(64))
    for axis, side, multiple in zip("DHW", patch, cfg.size_multiples):
        check_multiple(int(side), multiple, f"--patch {axis}")
    return tuple(int(n) for n in patch)


def _session_data(data, cfg, size: int, patch, preprocessing: dict, seed: int, samples_per_epoch: int | None):
    """(train_ds, val_samples, info) of the fine-tuning data, in the model's dimensionality."""

    data = synthetic_data(cfg.spatial_dims) if data is None else data
    check_data(data, cfg.spatial_dims, model=cfg.name)
    built = build_datasets(data, val=None, val_fraction=0.1, img_size=patch if cfg.spatial_dims == 3 else size,
                           num_classes=cfg.num_classes, preprocessing=preprocessing, seed=seed,
                           samples_per_epoch=samples_per_epoch, spatial_dims=cfg.spatial_dims)
    return built[0], built[1], {**built[2], "data": str(data)}


def open_session(checkpoint: str | os.PathLike | dict, data: str | os.PathLike | None = None,
                 img_size: int | None = None, samples_per_epoch: int | None = None, seed: int = 0,
                 device: str = "auto", patch=None) -> PruneSession:
    """Loads the checkpoint (rebuilt from config, strict) and the data it is fine-tuned and scored on.

    A 3-D model fine-tunes on ``patch`` (default: the checkpoint's) and counts MACs on an
    ``img_size`` cube (default: the patch's largest side).
    """

    model, ckpt = model_from_checkpoint(checkpoint)
    cfg = model.cfg
    if cfg.spatial_dims == 3:
        patch = resolve_patch(patch, ckpt, cfg)
        size = check_multiple(int(img_size or max(patch)), cfg.size_multiple, "--img-size")
    else:
        size = resolve_img_size(img_size, ckpt, cfg.size_multiple)
    preprocessing = dict(ckpt.get("preprocessing") or DEFAULT_PREPROCESSING)
    train_ds, val_samples, info = _session_data(data, cfg, size, patch, preprocessing, seed, samples_per_epoch)
    if info["in_channels"] != cfg.in_channels:
        raise UserError(f"{data} has {info['in_channels']}-channel images but the checkpoint takes "
                        f"{cfg.in_channels}: prune with the data it was trained on")
    device = resolve_device(device)
    source = None if isinstance(checkpoint, dict) else str(checkpoint)
    class_names = list(ckpt.get("class_names") or info["class_names"])
    return PruneSession(model=model.to(device).eval(), checkpoint=ckpt, source=source, preprocessing=preprocessing,
                        class_names=class_names, train_ds=train_ds, val_samples=val_samples, img_size=size,
                        device=device, data_info=info, patch=patch)


def write_json(path: str | os.PathLike, doc: dict) -> Path:
    """Writes ``doc`` as indented JSON with ``edgeunet.atomic``; only rank 0 under torchrun."""

    path = Path(path)
    if DistContext.from_env().is_main:
        atomic.write_json(path, doc)
    return path
