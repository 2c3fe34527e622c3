"""``train(settings)``: data, model and trainer wired together, as ``edgeunet train`` runs it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from ..atomic import ensure_dir, write_json
from ..checkpoint import load_checkpoint
from ..env import provenance
from ..errors import UserError
from ..models import ModelConfig, count_parameters, create_model
from ..runtime.preprocess import DEFAULT_PREPROCESSING
from . import distributed
from .loop import fit, resolve_device
from .settings import TrainSettings, check_data_dims, synthetic_data

logger = logging.getLogger(__name__)
# Files that make a folder a run folder: writing a new run there would overwrite them.
RUN_FILES = ("best.pt", "last.pt", "config.json", "metrics.jsonl", "prune.json")


def check_out_folder(out: str | Path, resume: bool = False, exist_ok: bool = False, resumable: bool = True,
                     files: tuple[str, ...] = RUN_FILES) -> Path:
    """Refuses to overwrite a run silently: ``out`` must be new, hold no run, be resumed or overwritten on purpose.

    Args:
        out: The run folder (``--out``).
        resume: ``--resume``: ``out/last.pt`` must exist.
        exist_ok: ``--exist-ok``: a run in ``out`` may be overwritten.
        resumable: Whether the command has ``--resume`` (``edgeunet prune`` has not), for the message.
        files: Names that make ``out`` a run folder.

    Raises:
        UserError: ``out`` is a file, holds a run without ``resume``/``exist_ok``, or ``resume``
            is asked for without ``out/last.pt``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder for the run")
    if resume:
        if not (out / "last.pt").is_file():
            raise UserError(f"--resume needs {out / 'last.pt'}, which does not exist: drop --resume or point --out "
                            "at an earlier run")
        return out
    found = [name for name in files if (out / name).exists()]
    if found and not exist_ok:
        fix = "continue it with --resume, overwrite it with --exist-ok" if resumable else "overwrite it with --exist-ok"
        raise UserError(f"--out {out} already holds a run ({', '.join(found)}): {fix}, or choose another --out")
    return out


def build_model_for(settings: TrainSettings, in_channels: int, num_classes: int):
    """The model to train: a fresh variant, or ``--init``'s weights and architecture."""
    if settings.init:
        from ..checkpoint import model_from_checkpoint

        model, _ = model_from_checkpoint(settings.init)
        if model.cfg.num_classes != num_classes or model.cfg.in_channels != in_channels:
            raise UserError(
                f"--init {settings.init} has {model.cfg.in_channels} channel(s) and {model.cfg.num_classes} classes, "
                f"the data {in_channels} and {num_classes}: pick a matching checkpoint or drop --init"
            )
        return model.train()
    torch.manual_seed(settings.seed)
    return create_model(settings.model, in_channels=in_channels, num_classes=num_classes, **settings.model_options)


def _init_preprocessing(settings: TrainSettings) -> tuple[dict, TrainSettings, int]:
    """The preprocessing (``--init``'s, else the default), the settings with ``data`` resolved, and the
    model's spatial dims; ``--init``'s size multiples and dimensionality are checked now."""
    if not settings.init:
        return dict(DEFAULT_PREPROCESSING), settings, settings.model_config().spatial_dims
    if not Path(settings.init).is_file():
        raise UserError(f"--init {settings.init} does not exist: give the best.pt of an earlier run, or drop --init")
    ckpt = load_checkpoint(settings.init)
    cfg = ModelConfig.from_dict(ckpt["model_config"])
    settings.check_sizes(cfg)
    if settings.data is None:
        settings = dataclasses.replace(settings, data=synthetic_data(cfg.spatial_dims))
    check_data_dims(settings.data, cfg.spatial_dims, cfg.name)
    return dict(ckpt.get("preprocessing") or DEFAULT_PREPROCESSING), settings, cfg.spatial_dims


def build_data(settings: TrainSettings, spatial_dims: int, preprocessing: dict):
    """(train_ds, val_samples, info) of ``settings.data``: patches of volumes for a 3-D model, crops of images else.

    Raises:
        UserError: The data's dimensionality is not the model's (the message names the fix), or
            the data set has problems.
    """
    from ..data.dataset import build_datasets
    from ..data.volume_dataset import build_volume_datasets, check_image_data

    if spatial_dims == 3:
        return build_volume_datasets(
            settings.data, val=settings.val, val_fraction=settings.val_fraction, patch=settings.patch_size(3),
            num_classes=settings.num_classes, preprocessing=preprocessing, seed=settings.seed,
            samples_per_epoch=settings.samples_per_epoch, volume_shape=settings.volume_size,
            val_samples=settings.val_samples)
    check_image_data(settings.data)
    if settings.val is not None:
        check_image_data(settings.val, "--val")
    return build_datasets(
        settings.data, val=settings.val, val_fraction=settings.val_fraction, img_size=settings.img_size,
        num_classes=settings.num_classes, preprocessing=preprocessing, seed=settings.seed,
        samples_per_epoch=settings.samples_per_epoch, val_samples=settings.val_samples,
    )


def train(settings: TrainSettings, on_epoch: Callable[[str], None] | None = None) -> dict:
    """Trains as ``edgeunet train`` does and returns fit()'s summary plus the run facts.

    Writes RUN_DIR/config.json (resolved settings, model config, data facts), best.pt, last.pt,
    metrics.jsonl, results.csv and results.png. ``on_epoch`` gets a one-line summary per epoch.

    Raises:
        UserError: ``settings.out`` holds a run (and neither ``resume`` nor ``exist_ok``), a path
            is missing, or the data set has problems (every one listed, before training starts).
    """
    # Every rank checks the folder before any rank writes to it; the barrier keeps it that way.
    ctx = distributed.join(distributed.rank_device(resolve_device(settings.device), distributed.DistContext.from_env()))
    check_out_folder(settings.out, settings.resume, settings.exist_ok)
    distributed.barrier(ctx)
    preprocessing, settings, spatial_dims = _init_preprocessing(settings)
    if ctx.is_main:
        ensure_dir(settings.out, "--out folder")
    torch.manual_seed(settings.seed)
    train_ds, val_samples, info = build_data(settings, spatial_dims, preprocessing)
    model = build_model_for(settings, info["in_channels"], info["num_classes"])
    if ctx.is_main:
        doc = {"settings": settings.to_dict(), "model_config": model.cfg.to_dict(),
               "parameters": count_parameters(model), "data": info,
               "provenance": provenance(torch.get_num_threads())}
        write_json(Path(settings.out) / "config.json", doc)
    result = fit(model, train_ds, val_samples, settings, preprocessing, info["class_names"], on_epoch=on_epoch)
    return {**result, "parameters": count_parameters(model), "data": info, "out": settings.out,
            "model_config": model.cfg.to_dict()}
