"""Where samples come from: the built-in ``"synthetic"`` data (``"synthetic3d"``: volumes) or a folder data set.

Volumes (``"synthetic3d"``, folders of NIfTI files, or ``spatial_dims=3``) are served by
``edgeunet.data.volume_sources`` through the same ``load_samples``.

Calibration, export verification, evaluation and benchmarks all call ``load_samples`` (or
``folder_pairs`` + ``read_pairs``) and get raw images (native dtype) with their masks; they pass the
images through ``edgeunet.runtime.preprocess.preprocess`` themselves.

A folder is either one data set (``DIR/images``, ``DIR/masks``) or split into
``DIR/train/{images,masks}`` and ``DIR/val/{images,masks}``; ``dataset_folder`` picks the
part for a split. To use a folder literally named ``synthetic``, pass ``./synthetic``.
Synthetic data has one seed per split (train, val, calib and the INT8 search's images), so no
two splits share an image; ``edgeunet.export.roles`` splits folders for export.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .folder_check import DatasetReport, raise_problems
from .io import read_image, read_mask
from .synthetic import synthetic_class_names, synthetic_sample
from .validate import read_class_names, scan_folder

SYNTHETIC = "synthetic"
SYNTHETIC3D = "synthetic3d"  # built-in synthetic volumes (``edgeunet.data.volume_sources``)
SPLITS = ("train", "val", "calib", "search")
# Added to the seed so that the val, calib and search images differ from the training images and from each other.
SPLIT_SEED_OFFSETS = {"train": 0, "val": 1000003, "calib": 2000003, "search": 3000017}
DEFAULT_SYNTHETIC_COUNT = 16  # samples load_samples("synthetic") gives when n is None

Sample = tuple[str, np.ndarray, np.ndarray]  # (name, raw image (H, W[, C]), mask (H, W) int64)


def is_synthetic(data: str | os.PathLike) -> bool:
    """True when ``data`` names the built-in synthetic data (the string ``"synthetic"``)."""
    return isinstance(data, str) and data == SYNTHETIC


def is_synthetic3d(data: str | os.PathLike) -> bool:
    """True when ``data`` names the built-in synthetic volumes (the string ``"synthetic3d"``)."""
    return isinstance(data, str) and data == SYNTHETIC3D


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")


def split_seed(seed: int, split: str) -> int:
    """The synthetic data seed of a split: distinct for train, val, calib and search."""
    _check_split(split)
    return int(seed) + SPLIT_SEED_OFFSETS[split]


def dataset_folder(data: str | os.PathLike, split: str = "train") -> Path:
    """The folder holding ``images/`` and ``masks/`` for ``split``.

    ``DIR`` itself when it has images/ or masks/; else ``DIR/train`` for "train" and
    ``DIR/val`` for "val" and "search" when they exist ("calib" uses train, then val); else ``DIR``.
    """
    _check_split(split)
    folder = Path(data)
    if (folder / "images").is_dir() or (folder / "masks").is_dir():
        return folder
    candidates = {"train": ["train"], "val": ["val"], "search": ["val"], "calib": ["train", "val"]}[split]
    for sub in candidates:
        if (folder / sub / "images").is_dir():
            return folder / sub
    return folder


def folder_pairs(folder: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """(name, image_path, mask_path) of a folder data set, sorted by name.

    Raises:
        UserError: The folder is missing, empty, or has unpaired files (one line listing them).
    """
    return raise_problems(scan_folder(folder)).pairs


def read_pairs(pairs: list[tuple[str, Path, Path]]) -> list[Sample]:
    """Reads (name, image_path, mask_path) pairs into (name, image, mask), checking that sizes agree."""
    samples = []
    for name, image_path, mask_path in pairs:
        image, mask = read_image(image_path), read_mask(mask_path)
        if image.shape[:2] != mask.shape:
            raise UserError(f"{image_path}: image {image.shape[0]}x{image.shape[1]} vs mask "
                            f"{mask.shape[0]}x{mask.shape[1]}: a mask must match its image's height and width")
        samples.append((name, image, mask))
    return samples


def synthetic_samples(source: str, generate: Callable[[int, Any, int, int], tuple[np.ndarray, np.ndarray]],
                      count: int, data_seed: int, size: Any, split: str, num_classes: int | None) -> list[Sample]:
    """``count`` raw synthetic samples ``(f"{source}-{split}-{i:04d}", array, mask int64)``.

    Args:
        source: ``SYNTHETIC`` or ``SYNTHETIC3D`` (the start of each name).
        generate: ``(index, size, seed, num_classes) -> (array, mask)``: ``synthetic_sample`` or
            ``synthetic3d.synthetic_volume``.
        count: Number of samples.
        data_seed: The split's seed (``split_seed``).
        size: What ``generate`` takes as the size: an image side or a volume's (D, H, W).
        split: The split, named in each sample's name.
        num_classes: Synthetic classes (2 to 4; None means 2).
    """
    samples = []
    for i in range(count):
        array, mask = generate(i, size, data_seed, num_classes or 2)
        samples.append((f"{source}-{split}-{i:04d}", array, mask.astype(np.int64)))
    return samples


def load_samples(data: str | os.PathLike, n: int | None = None, size: int = 256, seed: int = 0,
                 split: str = "val", num_classes: int | None = None, spatial_dims: int | None = None) -> list[Sample]:
    """Raw samples for evaluation, calibration, verification and benchmarks.

    Args:
        data: ``"synthetic"`` or a folder data set.
        n: Number of samples; None gives all of a folder, or 16 synthetic ones.
        size: Synthetic image size in pixels (folders keep their images' sizes).
        seed: Synthetic data seed; each split uses its own (``split_seed``).
        split: "train", "val", "calib" or "search": selects the synthetic seed, or the part of a
            train/val folder (see ``dataset_folder``).
        num_classes: Synthetic classes (2 to 4; None means 2). Ignored for folders.
        spatial_dims: 3 reads volumes (``load_volume_samples``; TIFF and .npy stacks need it);
            None reads volumes for ``"synthetic3d"`` and folders of NIfTI files, else images.

    Returns:
        List of (name, image (H, W) or (H, W, C) native dtype, mask (H, W) int64), sorted by
        name for folders; for volumes (name, volume (D, H, W[, C]), mask (D, H, W) int64), where an
        int ``size`` is a cube's side.
    """
    if spatial_dims == 3 or (spatial_dims is None and (is_synthetic3d(data) or _holds_nifti(data))):
        from .volume_sources import load_volume_samples

        return load_volume_samples(data, n, size, seed, split, num_classes)
    if n is not None and int(n) < 1:
        raise UserError(f"n={n}: ask for at least 1 sample")
    if is_synthetic(data):
        count = DEFAULT_SYNTHETIC_COUNT if n is None else int(n)
        return synthetic_samples(SYNTHETIC, synthetic_sample, count, split_seed(seed, split), size, split, num_classes)
    pairs = folder_pairs(dataset_folder(data, split))
    return read_pairs(pairs if n is None else pairs[: int(n)])


def _holds_nifti(data) -> bool:
    from .volume_sources import holds_nifti

    return not is_synthetic(data) and holds_nifti(data)


def dataset_info(data: str | os.PathLike, num_classes: int | None = None) -> dict:
    """Facts a model needs about a data set.

    For a folder: ``in_channels`` comes from its first image; ``num_classes`` is the given
    value, else the number of names in ``classes.txt``, else the largest mask id + 1 (at
    least 2; reads every mask); ``class_names`` come from ``classes.txt`` or are
    ``["background", "class1", ...]``.

    Returns:
        dict(num_classes=int, in_channels=int, class_names=list[str]).
    """
    if is_synthetic(data) or is_synthetic3d(data):
        count, in_channels, class_names = data_facts(None, num_classes)
    elif _holds_nifti(data):  # a volume folder: its check reads every volume once
        from .validate3d import check_volume_folder

        report = check_volume_folder(dataset_folder(data, "train"), num_classes)
        count, in_channels, class_names = data_facts(report, num_classes)
    else:
        count, in_channels, class_names = _image_folder_facts(dataset_folder(data, "train"), num_classes)
    return {"num_classes": count, "in_channels": in_channels, "class_names": class_names}


def _image_folder_facts(folder: Path, num_classes: int | None) -> tuple[int, int, list[str]]:
    """``data_facts`` of an image folder without checking it: channels of the first image, masks read when needed."""
    pairs = folder_pairs(folder)
    first = read_image(pairs[0][1])
    names = read_class_names(folder)
    if num_classes is None:
        num_classes = len(names) if names else max(2, max(int(read_mask(m).max()) for _, _, m in pairs) + 1)
    if names and len(names) != num_classes:
        raise UserError(f"{folder / 'classes.txt'} lists {len(names)} classes but num_classes is {num_classes}: "
                        "make them agree")
    return int(num_classes), 1 if first.ndim == 2 else int(first.shape[2]), names or default_class_names(num_classes)


def data_facts(report: DatasetReport | None, num_classes: int | None) -> tuple[int, int, list[str]]:
    """(num_classes, in_channels, class_names) of the synthetic data (``report`` None) or of a checked folder.

    ``num_classes`` wins when given; else a folder's ``report.num_classes`` (classes.txt or largest mask id + 1),
    2 for synthetic data. Class names: classes.txt's, the synthetic ones, or ``default_class_names``.
    """
    if report is None:
        count = int(num_classes or 2)
        return count, 1, synthetic_class_names(count)
    count = int(num_classes or report.num_classes)
    return count, report.in_channels, report.class_names or default_class_names(count)


def synthetic_class_count(num_classes: int) -> int:
    """``num_classes`` as an int, checked: the synthetic data (2-D and 3-D) has 2 to 4 classes."""
    synthetic_class_names(num_classes)  # UserError naming the range otherwise
    return int(num_classes)


def default_class_names(num_classes: int) -> list[str]:
    """``["background", "class1", "class2", ...]`` for a data set without classes.txt."""
    return ["background"] + [f"class{i}" for i in range(1, int(num_classes))]
