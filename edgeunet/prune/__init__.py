"""Pruning stage: structured channel pruning with Torch-Pruning's dependency graph, then fine-tuning.

``prune_checkpoint`` (what ``edgeunet prune`` runs), ``prune_model`` (in-place, on a UNet),
``sensitivity`` (per-stage Dice drop). Torch and Torch-Pruning are imported on first use.
"""

from __future__ import annotations

IMPORTANCES = ("l1", "l2", "taylor", "bn-scale")
# Narrow layers are left alone: a U-Net's full-resolution stages (16 channels in unet-ds) hold under
# 1% of its parameters but most of its spatial detail; halving them costs far more Dice than it saves
# (see `edgeunet prune --sensitivity`).
MIN_CHANNELS = 16


def prune_model(model, ratio: float, importance: str = "l1", round_to: int = 8, example_inputs=None, steps: int = 1,
                calib_batches=None, stages: tuple[str, ...] | None = None, min_channels: int = MIN_CHANNELS):
    """See ``edgeunet.prune.pruner.prune_model``."""
    from .pruner import prune_model as _prune_model

    return _prune_model(model, ratio, importance, round_to, example_inputs, steps, calib_batches, stages, min_channels)


def prune_checkpoint(checkpoint, out, **options) -> dict:
    """See ``edgeunet.prune.run.prune_checkpoint``."""
    from .run import prune_checkpoint as _prune_checkpoint

    return _prune_checkpoint(checkpoint, out, **options)


def sensitivity(checkpoint, data="synthetic", ratio: float = 0.5, **options) -> list[dict]:
    """See ``edgeunet.prune.sensitivity.sensitivity``."""
    from .sensitivity import sensitivity as _sensitivity

    return _sensitivity(checkpoint, data, ratio, **options)


__all__ = ["IMPORTANCES", "MIN_CHANNELS", "prune_checkpoint", "prune_model", "sensitivity"]
