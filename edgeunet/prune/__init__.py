"""Pruning stage: structured channel pruning with Torch-Pruning's dependency graph, then fine-tuning.

``prune_checkpoint`` (what ``edgeunet prune`` runs), ``prune_model`` (in-place, on a UNet),
``sensitivity`` (per-stage Dice drop) and ``PruneSettings``. The constants and settings import
light (the CLI reads them while building its parser); the functions are those of ``run``,
``pruner`` and ``stage_sensitivity`` themselves, imported with torch and Torch-Pruning on first use.
"""

from __future__ import annotations

from ..lazy import lazy_exports
from .importance import IMPORTANCES
from .plan import MIN_CHANNELS
from .settings import PruneSettings

_LAZY = {"prune_checkpoint": ".run", "prune_model": ".pruner", "sensitivity": ".stage_sensitivity"}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

__all__ = ["IMPORTANCES", "MIN_CHANNELS", "PruneSettings", "prune_checkpoint", "prune_model", "sensitivity"]
