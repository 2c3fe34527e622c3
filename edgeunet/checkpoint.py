"""Checkpoints are plain dicts that load with ``torch.load(weights_only=True)``; never pickled modules.

Keys: ``format`` ("edgeunet.checkpoint"), ``format_version``, ``edgeunet_version``,
``model_config`` (ModelConfig.to_dict()), ``state_dict``, ``preprocessing`` (spec of
``edgeunet.runtime.preprocess``), ``class_names``, ``metrics`` (validation summary), ``epoch``
(the number of completed epochs, 1-based: 0 before any), ``epochs`` (planned); ``last.pt`` adds
``optimizer``, ``scheduler``, ``scaler``, ``best_dice`` and ``best_epoch`` for ``--resume``.
``train_args`` holds the run's ``TrainSettings``; ``training_facts(ckpt)`` reads the ones later stages use.

Format 1 stored ``epoch`` and ``best_epoch`` as 0-based indices; ``load_checkpoint`` reads such
files as format 2 (completed epochs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .atomic import atomic_path
from .errors import UserError, require

FORMAT = "edgeunet.checkpoint"
FORMAT_VERSION = 2


DEFAULT_CROP = 256  # the crop side of a checkpoint that records none (``TrainSettings.img_size``'s default)


@dataclass(frozen=True)
class TrainingFacts:
    """What a checkpoint says of the training run that made it: the facts pruning, export and ``--resume`` read.

    ``img_size`` is the 2-D crop side (or a 3-D model's cube side when ``patch`` is unset); ``patch`` a 3-D
    model's (D, H, W) patch; the rest is the plan ``--resume`` must keep. None: the checkpoint does not say
    (it was not made by ``edgeunet train``, or by an older version).
    """

    img_size: int | None = None
    patch: tuple[int, int, int] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    samples_per_epoch: int | None = None
    steps: int | None = None
    schedule: str | None = None
    ema: float | None = None

    PLAN = ("epochs", "batch_size", "samples_per_epoch", "steps", "schedule", "ema")

    @property
    def crop(self) -> int:
        """The training crop side, else ``DEFAULT_CROP``."""
        return int(self.img_size or DEFAULT_CROP)

    def patch_or_cube(self, default_side: int) -> tuple[int, int, int]:
        """A 3-D model's training patch, else the cube of its ``img_size`` (else of ``default_side``)."""
        return tuple(int(n) for n in (self.patch or (self.img_size or default_side,) * 3))


def training_facts(ckpt: dict) -> TrainingFacts:
    """The typed ``TrainingFacts`` of ``ckpt`` (its ``train_args``; missing keys read as None)."""
    args = ckpt.get("train_args") or {}
    patch = args.get("patch")
    return TrainingFacts(
        img_size=int(args["img_size"]) if args.get("img_size") else None,
        patch=tuple(int(n) for n in patch) if patch else None,
        **{key: args.get(key) for key in TrainingFacts.PLAN})


def cpu_state_dict(model) -> dict:
    """A copy of ``model``'s state dict on the CPU, detached from training."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def make_checkpoint(model, preprocessing: dict, class_names: list[str], metrics: dict | None = None, **extra) -> dict:
    """The plain-dict checkpoint of ``model`` (its current, possibly pruned, config)."""
    cfg = model.current_config()
    state = cpu_state_dict(model)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "edgeunet_version": __version__,
        "model_config": cfg.to_dict(),
        "state_dict": state,
        "preprocessing": dict(preprocessing),
        "class_names": list(class_names),
        "metrics": metrics or {},
        **extra,
    }


def save_checkpoint(ckpt: dict, path: str | os.PathLike) -> Path:
    """Writes atomically (``edgeunet.atomic``): a temporary file in the same folder, then a rename."""
    torch = require("torch", "train")
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict:
    """Loads and checks a checkpoint dict (``weights_only=True``: no code runs on load)."""
    torch = require("torch", "train")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path} (give the best.pt or last.pt of a run folder)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise UserError(f"{path} is not a readable edgeunet checkpoint ({type(exc).__name__}): "
                        "retrain or re-export it") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not an edgeunet checkpoint (no 'format': {FORMAT!r}): "
                        "train one with `edgeunet train`")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{path} has checkpoint format {ckpt['format_version']}, newer than this edgeunet reads: "
                        "upgrade edgeunet")
    return _upgrade(ckpt)


def _upgrade(ckpt: dict) -> dict:
    """A format-1 checkpoint as format 2: ``epoch`` and ``best_epoch`` count completed epochs."""
    if ckpt.get("format_version", 1) >= 2:
        return ckpt
    ckpt = dict(ckpt, format_version=FORMAT_VERSION)
    for key in ("epoch", "best_epoch"):
        if isinstance(ckpt.get(key), int):
            ckpt[key] = max(0, ckpt[key] + 1)
    return ckpt


def model_from_checkpoint(ckpt: dict | str | os.PathLike, map_location: str = "cpu"):
    """Rebuilds the model from config + state_dict (strict) and puts it in eval mode.

    Returns:
        (model, ckpt).
    """
    from .models import ModelConfig, build_model

    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt, map_location)
    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model.eval(), ckpt
