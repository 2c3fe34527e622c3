"""Images for calibration, search and verification, through the one preprocessing function.

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
        names: One name per image (file stem, or synthetic name).
        images: (C, H, W) float32 arrays, H and W multiples of the size multiple.
        masks: (H, W) int64 arrays matching ``images`` (None where an image has no mask).
    """

    names: list[str] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray | None] = field(default_factory=list)

    @property
    def has_masks(self) -> bool:
        return bool(self.masks) and all(m is not None for m in self.masks)

    @property
    def has_foreground(self) -> bool:
        """Whether any mask has a pixel of a class other than background (0)."""
        return any(m is not None and bool(np.any(m > 0)) for m in self.masks)


@dataclass(frozen=True)
class InputSpec:
    """How raw images become model inputs.

    Attributes:
        preprocessing: Preprocessing spec of the model (``edgeunet.runtime.preprocess``).
        in_channels: Channels the model takes.
        multiple: The model's size multiple (2 ** depth x space_to_depth).
        exact: Crop or pad every image to exactly this side (static-shape exports); None: the multiple below.
        num_classes: Classes of the model (synthetic masks have 2 to 4; more falls back to 2).
    """

    preprocessing: dict
    in_channels: int
    multiple: int
    exact: int | None = None
    num_classes: int | None = None

    @property
    def synthetic_classes(self) -> int | None:
        return self.num_classes if self.num_classes and self.num_classes <= 4 else None


def _fit_slices(length: int, multiple: int, exact: int | None) -> tuple[slice, tuple[int, int]]:
    """Center crop of ``length`` down to ``exact`` or a multiple, or the (before, after) padding up to it."""
    target = exact or max(multiple, length // multiple * multiple)
    if length >= target:
        start = (length - target) // 2
        return slice(start, start + target), (0, 0)
    short = target - length
    return slice(0, length), (short // 2, short - short // 2)


def fit_to_multiple(image: np.ndarray, mask: np.ndarray | None, multiple: int,
                    exact: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
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


def prepare_samples(samples, spec: InputSpec) -> Inputs:
    """Raw (name, image (H, W[, C]), mask (H, W) or None) samples -> model-ready ``Inputs``.

    Raises:
        UserError: An image the model cannot take (channels, dtype), naming the file.
    """
    out = Inputs()
    for name, raw, mask in samples:
        try:
            x = preprocess(raw, spec.preprocessing, spec.in_channels)
        except UserError as exc:
            raise UserError(f"{name}: {exc}") from None
        y = None if mask is None else np.asarray(mask, dtype=np.int64)
        x, y = fit_to_multiple(x, y, spec.multiple, spec.exact)
        out.names.append(str(name))
        out.images.append(x)
        out.masks.append(y)
    return out


def load_inputs(data: str, n: int, size: int, split: str, spec: InputSpec) -> Inputs:
    """Loads the first ``n`` samples of ``data`` (folder or ``"synthetic"``) ready for the model.

    Export does not use this (its roles come from ``edgeunet.export.roles``); it serves tests and
    tools that want a few model-ready images.

    Args:
        data: Data folder or ``"synthetic"`` (see ``edgeunet.data.sources.load_samples``).
        n: Number of images (at most).
        size: Image size for synthetic data.
        split: ``"calib"``, ``"search"`` or ``"val"``.
        spec: How the images become model inputs.
    """
    from ..data.sources import load_samples

    out = prepare_samples(load_samples(data, n=n, size=size, split=split, num_classes=spec.synthetic_classes), spec)
    if not out.images:
        raise UserError(f"no images found in {data!r} for split {split!r}: give a folder with images/ and masks/, "
                        "or 'synthetic'")
    return out
