"""``train(settings)``: data, model and trainer wired together, as ``edgeunet train`` runs it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from ..atomic import ensure_dir, write_json
from ..checkpoint import load_checkpoint, model_from_checkpoint
from ..data.augment import augment_policy
from ..data.dataset import build_datasets
from ..data.sources import check_data
from ..env import provenance
from ..errors import UserError
from ..models import ModelConfig, count_parameters, create_model
from ..models.pretrained import default_weights, encoder_normalization, load_encoder_weights, weights_file
from ..runtime.preprocess import DEFAULT_PREPROCESSING
from . import distributed
from .loop import fit, resolve_device
from .settings import TrainSettings, synthetic_data

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


def weights_source(settings: TrainSettings) -> str | None:
    """The encoder weights a fresh model starts from: ``--weights``, else ``imagenet`` for an encoder whose ImageNet
    weights a package ships, else ``none``; None with ``--init``. A file or package that is missing is a UserError
    now, before any data is read."""
    if settings.init:
        return None

    cfg = settings.model_config()
    source = settings.weights if settings.weights is not None else default_weights(cfg)
    weights_file(cfg, source)  # raises naming the extra, the file, or the variants that have an encoder to load
    return source


def build_model_for(settings: TrainSettings, in_channels: int, num_classes: int, weights: str | None = None):
    """The model to train and the record of its encoder weights: a fresh variant (``weights`` loaded into its
    encoder), or ``--init``'s weights and architecture (record None)."""
    if settings.init:

        model, _ = model_from_checkpoint(settings.init)
        if model.cfg.num_classes != num_classes or model.cfg.in_channels != in_channels:
            raise UserError(
                f"--init {settings.init} has {model.cfg.in_channels} channel(s) and {model.cfg.num_classes} classes, "
                f"the data {in_channels} and {num_classes}: pick a matching checkpoint or drop --init"
            )
        return model.train(), None

    torch.manual_seed(settings.seed)
    model = create_model(settings.model, in_channels=in_channels, num_classes=num_classes, **settings.model_options)
    return model, load_encoder_weights(model, weights or "none")


def _init_preprocessing(settings: TrainSettings) -> tuple[dict | None, TrainSettings, int]:
    """The preprocessing of ``--init`` (None for a fresh model: the data's fingerprint decides it), the settings
    with ``data`` resolved, and the model's spatial dims; ``--init``'s size multiples and dimensionality are
    checked now."""
    if not settings.init:
        return None, settings, settings.model_config().spatial_dims
    if not Path(settings.init).is_file():
        raise UserError(f"--init {settings.init} does not exist: give the best.pt of an earlier run, or drop --init")
    ckpt = load_checkpoint(settings.init)
    cfg = ModelConfig.from_dict(ckpt["model_config"])
    settings.check_sizes(cfg)
    if settings.data is None:
        settings = dataclasses.replace(settings, data=synthetic_data(cfg.spatial_dims))
    check_data(settings.data, cfg.spatial_dims, model=cfg.name)
    return dict(ckpt.get("preprocessing") or DEFAULT_PREPROCESSING), settings, cfg.spatial_dims


def build_data(settings: TrainSettings, spatial_dims: int, preprocessing: dict | None):
    """(train_ds, val_samples, info) of ``settings.data``: patches of volumes for a 3-D model, crops of images else.

    ``preprocessing`` None: ``settings.normalize`` picks the spec from the training set's fingerprint (with the
    ImageNet statistics of a pretrained encoder); ``info["preprocessing"]`` is the spec used.

    Raises:
        UserError: The data's dimensionality is not the model's (the message names the fix), or
            the data set has problems.
    """

    common = dict(val=settings.val, val_fraction=settings.val_fraction, num_classes=settings.num_classes,
                  preprocessing=preprocessing, seed=settings.seed, samples_per_epoch=settings.epoch_samples(),
                  val_samples=settings.val_samples, augment=settings.augment, normalize=settings.normalize,
                  encoder_normalization=_encoder_statistics(settings), min_samples_per_epoch=settings.min_epoch_samples)
    if spatial_dims == 3:
        return build_datasets(settings.data, img_size=settings.patch_size(3), synthetic_size=settings.volume_size,
                              spatial_dims=3, **common)
    return build_datasets(settings.data, img_size=settings.img_size, **common)


def _encoder_statistics(settings: TrainSettings):
    """in_channels -> the ImageNet mean and std of the settings' encoder (None for edgeunet's own encoders)."""
    if settings.init:
        return None

    cfg = settings.model_config()
    return lambda channels: encoder_normalization(dataclasses.replace(cfg, in_channels=channels))


def recipe_record(settings: TrainSettings, train_ds, preprocessing: dict, normalization: dict | None,
                  weights: dict | None) -> dict:
    """What config.json says of the recipe: the budget in steps, the augmentation, the normalisation and its
    reason, and the encoder weights."""

    steps_per_epoch = max(1, len(train_ds) // settings.batch_size)
    return {"steps": steps_per_epoch * settings.epochs, "steps_per_epoch": steps_per_epoch,
            "epochs": settings.epochs, "batch_size": settings.batch_size, "samples_per_epoch": len(train_ds),
            "augment": {"preset": settings.augment, **augment_policy(settings.augment).to_dict()},
            "ema": settings.ema, "normalization": normalization or {"mode": "from --init", "spec": preprocessing},
            "weights": weights if weights is not None else {"source": "--init", "file": settings.init}}


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
    weights = weights_source(settings)
    if ctx.is_main:
        ensure_dir(settings.out, "--out folder")
    torch.manual_seed(settings.seed)
    train_ds, val_samples, info = build_data(settings, spatial_dims, preprocessing)
    preprocessing = info.pop("preprocessing")
    normalization = info.pop("normalization", None)
    model, weights_record = build_model_for(settings, info["in_channels"], info["num_classes"], weights)
    recipe = recipe_record(settings, train_ds, preprocessing, normalization, weights_record)
    if ctx.is_main:
        if normalization:
            logger.info("normalization %s", normalization["reason"])
        doc = {"settings": settings.to_dict(), "model_config": model.cfg.to_dict(),
               "parameters": count_parameters(model), "data": info, "recipe": recipe,
               "provenance": provenance(torch.get_num_threads())}
        write_json(Path(settings.out) / "config.json", doc)
    extra = {"weights": weights_record} if weights_record is not None else None
    result = fit(model, train_ds, val_samples, settings, preprocessing, info["class_names"], extra=extra,
                 on_epoch=on_epoch)
    return {**result, "parameters": count_parameters(model), "data": info, "out": settings.out,
            "model_config": model.cfg.to_dict(), "recipe": recipe}
