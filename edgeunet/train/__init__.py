"""Training stage: ``train(TrainSettings(...))``, the shared trainer ``fit``, and ``evaluate``.

The package imports light (the CLI reads ``TrainSettings``' defaults while building its parser);
``train`` and ``fit`` are the functions of ``run`` and ``loop`` themselves, imported with torch on
first use.
"""

from __future__ import annotations

from ..lazy import lazy_exports
from .evaluate import evaluate
from .settings import TrainSettings

_LAZY = {"train": ".run", "fit": ".loop"}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

__all__ = ["TrainSettings", "evaluate", "fit", "train"]
