"""Budgets: the pruning ratio that brings a model to a MAC or parameter count."""

from __future__ import annotations

import copy
import logging
import re

from ..errors import UserError
from .plan import MIN_CHANNELS

logger = logging.getLogger(__name__)

_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_COUNT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:e([+-]?\d+))?\s*([kmg]?)\s*$", re.IGNORECASE)
MAX_RATIO = 0.95


def parse_count(text: str | int | float, option: str = "--target-params") -> int:
    """An absolute count from ``150000``, ``150k``, ``1.5M``, ``0.2G`` or ``2e6`` (parsed, never evaluated)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _COUNT.match(str(text))
        if not match:
            raise UserError(f"{option} {text!r} is not a count: write e.g. 150000, 150k, 1.5M or 0.2G")
        number, exponent, suffix = match.groups()
        value = float(number) * 10 ** int(exponent or 0) * _SUFFIXES[suffix.lower()]
    if value < 1:
        raise UserError(f"{option} {text!r} must be a positive count, e.g. 150k")
    return int(round(value))


def _counts(model, ratio: float, round_to: int, img_size: int, min_channels: int) -> tuple[int, int]:
    from .pruner import cost, prune_model

    counted = cost(prune_model(copy.deepcopy(model), ratio, "l1", round_to, min_channels=min_channels), img_size)
    return counted.macs, counted.parameters


def find_ratio(model, img_size: int, round_to: int, target_macs: int | None = None, target_params: int | None = None,
               iterations: int = 10, min_channels: int = MIN_CHANNELS) -> float:
    """The smallest ratio whose pruned model has at most ``target_macs`` MACs (at ``img_size``) or
    ``target_params`` parameters, by bisection over deep copies (channel choice does not change counts).

    Raises:
        UserError: No target, both targets, a target the model already meets, or one that even
            ratio 0.95 misses (the message gives the reachable count).
    """
    if (target_macs is None) == (target_params is None):
        raise UserError("give exactly one of --target-macs and --target-params")
    if target_macs is not None:
        index, target, label = 0, target_macs, "--target-macs"
    else:
        index, target, label = 1, target_params, "--target-params"
    kind = "MACs" if index == 0 else "parameters"
    now = _counts(model, 0.0, round_to, img_size, min_channels)[index]
    if now <= target:
        raise UserError(f"{label} {target:,}: the model already has {now:,} {kind}; "
                        "give a smaller target or use --ratio")
    smallest = _counts(model, MAX_RATIO, round_to, img_size, min_channels)[index]
    if smallest > target:
        raise UserError(f"{label} {target:,} is out of reach: ratio {MAX_RATIO} leaves {smallest:,} {kind} "
                        f"(round_to={round_to}, min_channels={min_channels}); raise the target or lower "
                        "--round-to/--min-channels")
    low, high = 0.0, MAX_RATIO  # counts(low) > target >= counts(high)
    for _ in range(iterations):
        middle = (low + high) / 2
        if _counts(model, middle, round_to, img_size, min_channels)[index] <= target:
            high = middle
        else:
            low = middle
    logger.info("ratio %.4f reaches %s <= %s", high, kind, f"{target:,}")
    return high
