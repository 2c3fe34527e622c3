"""Channel importance criteria: which channels of a width go first. Torch-Pruning is imported on use."""

from __future__ import annotations

from ..errors import UserError, require

IMPORTANCES = ("l1", "l2", "taylor", "bn-scale")


def check_importance(name: str) -> str:
    """Returns ``name`` or raises UserError naming the valid choices."""
    if name not in IMPORTANCES:
        raise UserError(f"unknown importance {name!r}: use one of {', '.join(IMPORTANCES)}")
    return name


def make_importance(name: str):
    """The Torch-Pruning importance criterion of ``name`` (``l1``, ``l2``, ``taylor``, ``bn-scale``)."""
    check_importance(name)
    tp = require("torch_pruning", "train", "torch-pruning")
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    if name == "bn-scale":
        return tp.importance.BNScaleImportance()
    return tp.importance.GroupMagnitudeImportance(p=1 if name == "l1" else 2)
