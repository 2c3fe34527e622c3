"""Target widths: how many channels each width keeps at a pruning ratio (torch-free arithmetic).

``--ratio`` is the fraction of channels removed from every width; kept counts are rounded to
multiples of ``round_to`` and never go below ``min_channels``.
"""

from __future__ import annotations

import math

from ..errors import UserError

# Narrow layers are left alone: a U-Net's full-resolution stages (16 channels in unet-ds) hold under
# 1% of its parameters but most of its spatial detail; halving them costs far more Dice than it saves
# (see `edgeunet prune --sensitivity`).
MIN_CHANNELS = 16


def check_ratio(ratio: float) -> float:
    """``ratio`` when it is a fraction of channels to remove, in [0, 1); else UserError naming the range."""
    if not (isinstance(ratio, (int, float)) and 0.0 <= ratio < 1.0):
        raise UserError(f"--ratio {ratio} is not a fraction of channels to remove: use a value in [0, 1), e.g. 0.5")
    return float(ratio)


def kept_channels(channels: int, ratio: float, round_to: int, min_channels: int = MIN_CHANNELS) -> int:
    """Channels left when ``ratio`` of ``channels`` are removed, rounded to a multiple of ``round_to``.

    Never below ``min_channels`` (rounded up to a multiple of ``round_to``): widths at or under that
    floor are kept whole.
    """
    floor = max(round_to, math.ceil(min_channels / round_to) * round_to)
    if ratio <= 0 or channels <= floor:
        return channels
    keep = math.floor(channels * (1.0 - ratio) / round_to + 0.5) * round_to
    return min(channels, max(floor, keep))


def planned_widths(plan: dict[str, int], ratio: float, round_to: int, min_channels: int = MIN_CHANNELS,
                   prefixes: tuple[str, ...] | None = None) -> dict[str, int]:
    """Target widths: ``kept_channels`` of every width of ``plan`` (only stages in ``prefixes`` if given)."""
    return {
        name: (kept_channels(channels, ratio, round_to, min_channels)
               if prefixes is None or name.split(".")[0] in prefixes else channels)
        for name, channels in plan.items()
    }
