"""Images for calibration, search and verification, through the one preprocessing function.

Each raw image is preprocessed at full size (``edgeunet.runtime.preprocess``), exactly as in
training and at run time, then center-cropped (or edge-padded when smaller) to a multiple of
the model's size multiple, with its mask cut the same way.

Volumes (3-D models, ``InputSpec.spatial_dims == 3``) are preprocessed whole (per-volume statistics)
and center-cropped on each axis to that axis' multiple; they come from a volume folder
(``DIR/images`` + ``DIR/masks`` of ``.nii.gz``/``.nii``/``.tif``/``.npy``, ``volume_pairs``) or from
synthetic nuclei volumes (``"synthetic"`` or ``"synthetic3d"``, ``volume_samples``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.sources import load_samples, split_seed
from ..data.synthetic import synthetic_volume
from ..errors import UserError
from ..runtime.imageio import file_stem, file_suffix
from ..runtime.preprocess import preprocess
from ..runtime.volume_files import VOLUME_SUFFIXES, read_volume


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
    spatial_dims: int = 2
    multiples: tuple[int, ...] = ()

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


def fit_volume(x: np.ndarray, mask: np.ndarray | None, multiples: tuple[int, ...],
               exact: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Crops (C, D, H, W) ``x`` and (D, H, W) ``mask`` centrally, each axis to a multiple of its entry of
    ``multiples`` (``exact``: to that side); shorter axes are padded (edge values, background 0)."""
    fits = [_fit_slices(n, m, exact) for n, m in zip(x.shape[1:], multiples)]
    crops, pads = tuple(f[0] for f in fits), [f[1] for f in fits]
    x = np.pad(x[(slice(None),) + crops], [(0, 0)] + pads, mode="edge")
    if mask is not None:
        mask = np.pad(mask[crops], pads, constant_values=0)
    return np.ascontiguousarray(x, dtype=np.float32), mask


def prepare_samples(samples, spec: InputSpec) -> Inputs:
    """Raw (name, image (H, W[, C]), mask (H, W) or None) samples -> model-ready ``Inputs``
    (volumes (D, H, W[, C]) with (D, H, W) masks for a 3-D ``spec``).

    Raises:
        UserError: An image the model cannot take (channels, dtype), naming the file.
    """
    out = Inputs()
    for name, raw, mask in samples:
        try:
            x = preprocess(raw, spec.preprocessing, spec.in_channels, spatial_dims=spec.spatial_dims)
        except UserError as exc:
            raise UserError(f"{name}: {exc}") from None
        y = None if mask is None else np.asarray(mask, dtype=np.int64)
        if spec.spatial_dims == 3:
            x, y = fit_volume(x, y, spec.multiples or (spec.multiple,) * 3, spec.exact)
        else:
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
    out = prepare_samples(load_samples(data, n=n, size=size, split=split, num_classes=spec.synthetic_classes,
                                       spatial_dims=spec.spatial_dims), spec)
    if not out.images:
        raise UserError(f"no images found in {data!r} for split {split!r}: give a folder with images/ and masks/, "
                        "or 'synthetic'")
    return out


SYNTHETIC_VOLUMES = ("synthetic", "synthetic3d")
SEARCH_SIDE_3D = 64  # the 3-D training patch: a 256^3 timing input would take minutes per candidate


def search_side_3d(options, multiple: int) -> int:
    """Side (voxels) of the cubic input the INT8 latency of a 3-D model is measured at: ``--search-img-size``,
    ``--img-size``, else 64 rounded to the model's size multiple."""
    return options.search_img_size or options.img_size or max(multiple, SEARCH_SIDE_3D // multiple * multiple)


def is_synthetic_volumes(source) -> bool:
    """Whether ``source`` names synthetic volumes (``"synthetic"`` for a 3-D model, or ``"synthetic3d"``)."""
    return isinstance(source, str) and source in SYNTHETIC_VOLUMES


def synthetic_volumes(n: int, size: int, seed: int, split: str, num_classes: int | None = None):
    """``n`` synthetic nuclei (name, volume (size, 2 size, 2 size) uint16, mask) samples of ``split``'s seed.

    The one place export reads synthetic volumes (``edgeunet.data.synthetic``); each role has its own seed.
    """
    shape, seed = (size, 2 * size, 2 * size), split_seed(seed, split)
    samples = []
    for i in range(n):
        volume, mask = synthetic_volume(i, size=shape, seed=seed, num_classes=num_classes or 2)
        samples.append((f"synthetic3d-{split}-{i:04d}", volume, mask))
    return samples


def volume_pairs(folder) -> list[tuple[str, Path, Path]]:
    """(stem, volume path, mask path) of a volume folder (``images/`` + ``masks/``), sorted by stem.

    Raises:
        UserError: The folder is missing ``images/``, holds no volumes, or has volumes without a mask.
    """
    folder = Path(folder)
    def listing(sub: str) -> dict[str, Path]:
        where = folder / sub
        if not where.is_dir():
            raise UserError(f"{folder} has no {sub}/ folder: give a folder with images/ and masks/ volumes")
        return {file_stem(p): p for p in sorted(where.iterdir())
                if p.is_file() and not p.name.startswith(".") and file_suffix(p) in VOLUME_SUFFIXES}

    images, masks = listing("images"), listing("masks")
    if not images:
        raise UserError(f"{folder}/images holds no volumes: put {', '.join(VOLUME_SUFFIXES)} files there")
    unpaired = sorted(set(images) ^ set(masks))
    if unpaired:
        raise UserError(f"{folder}: volumes without a mask or masks without a volume: {', '.join(unpaired[:5])}: "
                        "give every images/<stem> a masks/<stem>")
    return [(stem, images[stem], masks[stem]) for stem in sorted(images)]


def read_volume_pairs(pairs) -> list:
    """Reads (stem, volume path, mask path) into (stem, volume, mask) samples, checking that shapes agree."""
    samples = []
    for stem, image_path, mask_path in pairs:
        volume, mask = read_volume(image_path).array, read_volume(mask_path).array
        if volume.shape[:3] != mask.shape[:3]:
            raise UserError(f"{image_path}: volume {volume.shape[:3]} vs mask {mask.shape[:3]}: "
                            "a mask must match its volume's shape")
        samples.append((stem, volume, mask))
    return samples
