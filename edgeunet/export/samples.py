"""Images for calibration and verification, through the one preprocessing function.

Each raw image is preprocessed at full size (``edgeunet.runtime.preprocess``), exactly as in
training and at run time, then center-cropped (or edge-padded when smaller) to a multiple of
the model's size multiple, with its mask cut the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..runtime.preprocess import preprocess


@dataclass
class Inputs:
    """Model-ready images with their masks and names.

    Attributes:
        names: One name per image (file name, or synthetic index).
        images: (C, H, W) float32 arrays, H and W multiples of the size multiple.
        masks: (H, W) int64 arrays matching ``images``.
    """

    names: list[str] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)


def _fit_slices(length: int, multiple: int, exact: int | None) -> tuple[slice, tuple[int, int]]:
    """Center crop of ``length`` down to ``exact`` or a multiple, or the (before, after) padding up to it."""
    target = exact or max(multiple, length // multiple * multiple)
    if length >= target:
        start = (length - target) // 2
        return slice(start, start + target), (0, 0)
    short = target - length
    return slice(0, length), (short // 2, short - short // 2)


def fit_to_multiple(image: np.ndarray, mask: np.ndarray | None, multiple: int, exact: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Crops (C, H, W) ``image`` and (H, W) ``mask`` centrally to multiples of ``multiple``.

    Sides shorter than ``multiple`` are padded instead: edge values for the image,
    background (0) for the mask. ``exact`` crops or pads both sides to exactly that size
    (models exported with a static ``img_size``).
    """
    rows, pad_rows = _fit_slices(image.shape[1], multiple, exact)
    cols, pad_cols = _fit_slices(image.shape[2], multiple, exact)
    image = np.pad(image[:, rows, cols], ((0, 0), pad_rows, pad_cols), mode="edge")
    if mask is not None:
        mask = np.pad(mask[rows, cols], (pad_rows, pad_cols), constant_values=0)
    return np.ascontiguousarray(image, dtype=np.float32), mask


def load_inputs(data: str, n: int, size: int, split: str, preprocessing: dict, in_channels: int, multiple: int, exact: int | None = None, num_classes: int | None = None) -> Inputs:
    """Loads ``n`` samples of ``data`` (folder or ``"synthetic"``) ready for the model.

    Args:
        data: Data folder or ``"synthetic"`` (see ``edgeunet.data.sources.load_samples``).
        n: Number of images (at most).
        size: Image size for synthetic data.
        split: ``"calib"`` or ``"val"``.
        preprocessing: Preprocessing spec of the model.
        in_channels: Channels the model takes.
        multiple: The model's size multiple (2 ** depth x space_to_depth).
        exact: Crop or pad every image to exactly this size (static-shape exports).
        num_classes: Classes of synthetic masks (the built-in data has 2 to 4); ignored for folders.
    """
    from ..data.sources import load_samples

    if n < 1:
        raise UserError(f"--calib-size {n} must be at least 1 (32 is a good default)")
    out = Inputs()
    for name, raw, mask in load_samples(data, n=n, size=size, split=split, num_classes=num_classes if num_classes and num_classes <= 4 else None):
        try:
            x = preprocess(raw, preprocessing, in_channels)
        except ValueError as exc:
            raise UserError(f"{name}: {exc}") from None
        x, y = fit_to_multiple(x, None if mask is None else np.asarray(mask, dtype=np.int64), multiple, exact)
        out.names.append(str(name))
        out.images.append(x)
        out.masks.append(y)
    if not out.images:
        raise UserError(f"no images found in {data!r} for split {split!r}: give a folder with images/ and masks/, or 'synthetic'")
    return out
