"""The optimization profile of an engine: ``--shapes MIN,OPT,MAX`` (each ``BxCxHxW``, or ``BxCxDxHxW``
for 3-D models), its checks against the model, and the default profile. No TensorRT needed."""

from __future__ import annotations

from ...errors import UserError
from ...sizes import check_multiple, round_up

Shape = tuple[int, ...]  # (B, C, H, W) or (B, C, D, H, W)
Profile = tuple[Shape, Shape, Shape]  # (min, opt, max)
DEFAULT_HW = (256, 512, 1024)  # min, opt, max H = W of the default profile (px)
DEFAULT_BATCH = (1, 1, 4)
DEFAULT_DHW = (64, 96, 128)  # min, opt, max D = H = W of the default 3-D profile (voxels): the runtime's windows
DEFAULT_BATCH_3D = (1, 1, 1)  # the runtime runs one window per call by default
EXAMPLE = "1x1x256x256,1x1x512x512,4x1x1024x1024"
EXAMPLE_3D = "1x1x64x64x64,1x1x96x96x96,1x1x128x128x128"


def shape_text(shape: Shape) -> str:
    """(1, 1, 256, 256) -> ``"1x1x256x256"``."""
    return "x".join(str(d) for d in shape)


def parse_shape(text: str) -> Shape:
    """``"1x1x256x256"`` -> (1, 1, 256, 256), i.e. (B, C, H, W); ``"1x1x64x64x64"`` -> (B, C, D, H, W)."""
    parts = text.strip().lower().split("x")
    if len(parts) not in (4, 5) or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"bad shape {text!r}: write BxCxHxW with positive integers, e.g. 1x1x512x512 "
                        "(BxCxDxHxW for 3-D models, e.g. 1x1x64x64x64)")
    return tuple(int(p) for p in parts)


def parse_shapes(text: str) -> Profile:
    """``"MIN,OPT,MAX"`` (each BxCxHxW) -> three shapes."""
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) != 3:
        raise UserError(f"bad --shapes {text!r}: give min,opt,max, e.g. {EXAMPLE} (3-D: {EXAMPLE_3D})")
    shapes = parse_shape(parts[0]), parse_shape(parts[1]), parse_shape(parts[2])
    if len({len(shape) for shape in shapes}) != 1:
        raise UserError(f"bad --shapes {text!r}: min, opt and max must have the same number of dimensions")
    return shapes


def check_shapes(shapes: Profile, in_channels: int, size_multiple: int,
                 static_hw: tuple[int, ...] | None = None, size_multiples: tuple[int, ...] | None = None) -> None:
    """Raises UserError naming the fix when the profile does not fit the model.

    Args:
        shapes: (min, opt, max) (B, C, H, W) shapes ((B, C, D, H, W) for 3-D models).
        in_channels: C of the model.
        size_multiple: H and W must be multiples of it (``edgeunet.sizes.check_multiple``).
        static_hw: (H, W) ((D, H, W)) of a model exported for one size, else None.
        size_multiples: The multiple per spatial axis (``ModelMetadata.size_multiples``); None: 2-D,
            ``size_multiple`` on H and W. Its length is the model's spatial dimensions.
    """
    multiples = tuple(size_multiples) if size_multiples else (size_multiple, size_multiple)
    axes = "HW" if len(multiples) == 2 else "DHW"
    for shape in shapes:
        text = shape_text(shape)
        if len(shape) != 2 + len(multiples):
            layout, example = ("BxCxHxW", EXAMPLE) if len(multiples) == 2 else ("BxCxDxHxW", EXAMPLE_3D)
            raise UserError(f"profile shape {text} does not fit this {len(multiples)}-D model: write {layout}, "
                            f"e.g. --shapes {example}")
        c, spatial = shape[1], shape[2:]
        if c != in_channels:
            raise UserError(f"profile shape {text} has {c} channels but the model takes {in_channels}")
        for axis, side, multiple in zip(axes, spatial, multiples):
            check_multiple(side, multiple, f"profile shape {text}: {axis}")
        if static_hw and tuple(spatial) != tuple(static_hw):
            size = "x".join(map(str, static_hw))
            raise UserError(f"the model was exported for {size} {'images' if len(multiples) == 2 else 'volumes'}: "
                            f"use {' x '.join(axes)} = {size} in every shape")
    lo, opt, hi = shapes
    if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
        raise UserError("profile shapes must satisfy min <= opt <= max in every dimension: reorder --shapes")


def default_shapes(in_channels: int, size_multiple: int, static_hw: tuple[int, ...] | None = None,
                   size_multiples: tuple[int, ...] | None = None) -> Profile:
    """Batch 1/1/4 at 256/512/1024 px (rounded up to the size multiple), or the static size; for 3-D models
    (``size_multiples`` of length 3) batch 1 at 64^3/96^3/128^3 voxels (each axis rounded up to its multiple)."""
    multiples = tuple(size_multiples) if size_multiples else (size_multiple, size_multiple)
    batches, sides = (DEFAULT_BATCH, DEFAULT_HW) if len(multiples) == 2 else (DEFAULT_BATCH_3D, DEFAULT_DHW)
    out = []
    for batch, side in zip(batches, sides):
        spatial = static_hw or tuple(round_up(side, m) for m in multiples)
        out.append((batch, in_channels, *spatial))
    return tuple(out)  # type: ignore[return-value]
