"""``train(settings)``: data, model and trainer wired together, as ``edgeunet train`` runs it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint
from ..errors import UserError
from ..models import count_parameters, create_model
from ..runtime.preprocess import DEFAULT_PREPROCESSING
from .distributed import DistContext
from .loop import fit
from .settings import TrainSettings

log = logging.getLogger(__name__)


def build_model_for(settings: TrainSettings, in_channels: int, num_classes: int):
    """The model to train: a fresh variant, or ``--init``'s weights and architecture."""
    if settings.init:
        from ..checkpoint import model_from_checkpoint

        model, ckpt = model_from_checkpoint(settings.init)
        if model.cfg.num_classes != num_classes or model.cfg.in_channels != in_channels:
            raise UserError(
                f"--init {settings.init} has {model.cfg.in_channels} channel(s) and {model.cfg.num_classes} classes, "
                f"the data {in_channels} and {num_classes}: pick a matching checkpoint or drop --init"
            )
        return model.train()
    torch.manual_seed(settings.seed)
    return create_model(settings.model, in_channels=in_channels, num_classes=num_classes, **settings.model_options)


def train(settings: TrainSettings) -> dict:
    """Trains as ``edgeunet train`` does and returns fit()'s summary plus the run facts.

    Writes RUN_DIR/config.json (resolved settings, model config, data facts), best.pt, last.pt
    and metrics.jsonl.
    """
    from ..data.dataset import build_datasets

    torch.manual_seed(settings.seed)
    preprocessing = dict(DEFAULT_PREPROCESSING)
    if settings.init:
        preprocessing = load_checkpoint(settings.init).get("preprocessing", preprocessing)
    train_ds, val_samples, info = build_datasets(
        settings.data,
        val=settings.val,
        val_fraction=settings.val_fraction,
        img_size=settings.img_size,
        num_classes=settings.num_classes,
        preprocessing=preprocessing,
        seed=settings.seed,
        samples_per_epoch=settings.samples_per_epoch,
        val_samples=settings.val_samples,
    )
    model = build_model_for(settings, info["in_channels"], info["num_classes"])
    if DistContext.from_env().is_main:
        _write_config(settings, model, info)
    result = fit(model, train_ds, val_samples, settings, preprocessing, info["class_names"])
    return {**result, "parameters": count_parameters(model), "data": info, "out": settings.out, "model_config": model.cfg.to_dict()}


def _write_config(settings: TrainSettings, model, info: dict) -> None:
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"settings": settings.to_dict(), "model_config": model.cfg.to_dict(), "parameters": count_parameters(model), "data": info}
    tmp = out / ".config.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, out / "config.json")
