"""Pruning stage: structured channel pruning with Torch-Pruning's dependency graph, then fine-tuning.

``prune_checkpoint`` (what ``edgeunet prune`` runs), ``prune_model`` (in-place, on a UNet),
``sensitivity`` (per-stage Dice drop) and ``PruneSettings``. The constants and settings import
light (the CLI reads them while building its parser); the functions are those of ``run``,
``pruner`` and ``stage_sensitivity`` themselves, imported with torch and Torch-Pruning on first use.
"""

from __future__ import annotations

import importlib

from .importance import IMPORTANCES
from .plan import MIN_CHANNELS
from .settings import PruneSettings

_LAZY = {"prune_checkpoint": ".run", "prune_model": ".pruner", "sensitivity": ".stage_sensitivity"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["IMPORTANCES", "MIN_CHANNELS", "PruneSettings", "prune_checkpoint", "prune_model", "sensitivity"]
