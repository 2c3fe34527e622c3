"""The one size-multiple rule and its message: a U-Net with ``d`` poolings (times its
space-to-depth factor) takes H and W that are multiples of its size multiple. Torch-free."""

from __future__ import annotations

from .errors import UserError


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-int(value) // int(multiple)) * int(multiple)


def nearest_valid(size: int, multiple: int) -> tuple[int, ...]:
    """The valid sizes around ``size``: the multiple below and the one above (one value when ``size`` is below
    the first multiple)."""
    lower = int(size) // multiple * multiple
    upper = lower + multiple
    return (upper,) if lower < multiple else (lower, upper)


def size_error(size: int, multiple: int, what: str = "size") -> str:
    """``"<what> 17 is not a multiple of 16 (this model's size multiple): use 16 or 32"``."""
    fix = " or ".join(str(v) for v in nearest_valid(size, multiple))
    return f"{what} {size} is not a multiple of {multiple} (this model's size multiple): use {fix}"


def check_multiple(size: int, multiple: int, what: str = "size") -> int:
    """``size`` when it is a positive multiple of ``multiple``; otherwise UserError naming the nearest valid sizes."""
    if int(size) < 1:
        raise UserError(f"{what} {size} must be a positive number of pixels, e.g. {multiple * 16}")
    if int(size) % multiple:
        raise UserError(size_error(size, multiple, what))
    return int(size)
