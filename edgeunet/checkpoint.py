"""Checkpoints are plain dicts that load with ``torch.load(weights_only=True)``; never pickled modules.

Keys: ``format`` ("edgeunet.checkpoint"), ``format_version``, ``edgeunet_version``,
``model_config`` (ModelConfig.to_dict()), ``state_dict``, ``preprocessing`` (spec of
``edgeunet.runtime.preprocess``), ``class_names``, ``metrics`` (validation summary), ``epoch``
(the number of completed epochs, 1-based: 0 before any), ``epochs`` (planned); ``last.pt`` adds
``optimizer``, ``scheduler``, ``scaler``, ``best_dice`` and ``best_epoch`` for ``--resume``.

Format 1 stored ``epoch`` and ``best_epoch`` as 0-based indices; ``load_checkpoint`` reads such
files as format 2 (completed epochs).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import __version__
from .atomic import atomic_path
from .errors import UserError, require

FORMAT = "edgeunet.checkpoint"
FORMAT_VERSION = 2


def make_checkpoint(model, preprocessing: dict, class_names: list[str], metrics: dict | None = None, **extra) -> dict:
    """The plain-dict checkpoint of ``model`` (its current, possibly pruned, config)."""
    cfg = model.current_config()
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
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
