"""Training stage: ``train(TrainSettings(...))``, the shared trainer ``fit``, and ``evaluate``.

The package imports light (the CLI reads ``TrainSettings``' defaults while building its parser);
``train`` and ``fit`` are the functions of ``run`` and ``loop`` themselves, imported with torch on
first use.
"""

from __future__ import annotations

import importlib

from .evaluate import evaluate
from .settings import TrainSettings

_LAZY = {"train": ".run", "fit": ".loop"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["TrainSettings", "evaluate", "fit", "train"]
