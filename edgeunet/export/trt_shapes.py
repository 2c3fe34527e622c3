"""The optimization profile of an engine: ``--shapes MIN,OPT,MAX`` (each ``BxCxHxW``), its checks
against the model, and the default profile. No TensorRT needed."""

from __future__ import annotations

from ..errors import UserError
from ..sizes import check_multiple, round_up

Shape = tuple[int, int, int, int]  # (B, C, H, W)
Profile = tuple[Shape, Shape, Shape]  # (min, opt, max)
DEFAULT_HW = (256, 512, 1024)  # min, opt, max H = W of the default profile (px)
DEFAULT_BATCH = (1, 1, 4)
EXAMPLE = "1x1x256x256,1x1x512x512,4x1x1024x1024"


def shape_text(shape: Shape) -> str:
    """(1, 1, 256, 256) -> ``"1x1x256x256"``."""
    return "x".join(str(d) for d in shape)


def parse_shape(text: str) -> Shape:
    """``"1x1x256x256"`` -> (1, 1, 256, 256), i.e. (B, C, H, W)."""
    parts = text.strip().lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"bad shape {text!r}: write BxCxHxW with positive integers, e.g. 1x1x512x512")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def parse_shapes(text: str) -> Profile:
    """``"MIN,OPT,MAX"`` (each BxCxHxW) -> three shapes."""
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) != 3:
        raise UserError(f"bad --shapes {text!r}: give min,opt,max, e.g. {EXAMPLE}")
    return parse_shape(parts[0]), parse_shape(parts[1]), parse_shape(parts[2])


def check_shapes(shapes: Profile, in_channels: int, size_multiple: int,
                 static_hw: tuple[int, int] | None = None) -> None:
    """Raises UserError naming the fix when the profile does not fit the model.

    Args:
        shapes: (min, opt, max) (B, C, H, W) shapes.
        in_channels: C of the model.
        size_multiple: H and W must be multiples of it (``edgeunet.sizes.check_multiple``).
        static_hw: (H, W) of a model exported for one size, else None.
    """
    for shape in shapes:
        _, c, h, w = shape
        text = shape_text(shape)
        if c != in_channels:
            raise UserError(f"profile shape {text} has {c} channels but the model takes {in_channels}")
        check_multiple(h, size_multiple, f"profile shape {text}: H")
        check_multiple(w, size_multiple, f"profile shape {text}: W")
        if static_hw and (h, w) != tuple(static_hw):
            raise UserError(f"the model was exported for {static_hw[0]}x{static_hw[1]} images: "
                            f"use H x W = {static_hw[0]}x{static_hw[1]} in every shape")
    lo, opt, hi = shapes
    if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
        raise UserError("profile shapes must satisfy min <= opt <= max in every dimension: reorder --shapes")


def default_shapes(in_channels: int, size_multiple: int, static_hw: tuple[int, int] | None = None) -> Profile:
    """Batch 1/1/4 at 256/512/1024 px (rounded up to the size multiple), or the static size."""
    out = []
    for batch, side in zip(DEFAULT_BATCH, DEFAULT_HW):
        h, w = static_hw or (round_up(side, size_multiple),) * 2
        out.append((batch, in_channels, h, w))
    return tuple(out)  # type: ignore[return-value]
