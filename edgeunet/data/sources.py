"""Where samples come from: the built-in synthetic data or a folder data set, of images or of volumes.

``"synthetic"`` is generated nuclei images, ``"synthetic3d"`` generated nuclei volumes; a folder holds
``images/`` and ``masks/`` (``edgeunet.data.validate``). The dimensionality is a parameter
(``spatial_dims``): 2 reads images (H, W[, C]) with masks (H, W), 3 volumes (D, H, W[, C]) with masks
(D, H, W), read by ``edgeunet.runtime.volume_files``; None takes it from the data (``data_dims``:
``"synthetic3d"`` and folders of NIfTI files are volumes; TIFF and .npy stacks need ``spatial_dims=3``).

Calibration, export verification, evaluation and benchmarks all call ``load_samples`` (or
``folder_pairs`` + ``read_pairs``) and get raw arrays (native dtype) with their masks; they pass them
through ``edgeunet.runtime.preprocess.preprocess`` themselves.

A folder is either one data set (``DIR/images``, ``DIR/masks``) or split into
``DIR/train/{images,masks}`` and ``DIR/val/{images,masks}``; ``dataset_folder`` picks the
part for a split. To use a folder literally named ``synthetic``, pass ``./synthetic``.
Synthetic data has one seed per split (train, val, calib and the INT8 search's images), so no
two splits share an image; ``edgeunet.export.roles`` splits folders for export.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .synthetic import synthetic_class_names, synthetic_sample, synthetic_volume
from .validate import DatasetReport, check_folder, layout, raise_problems, read_class_names, scan_folder, sides

SYNTHETIC = "synthetic"
SYNTHETIC3D = "synthetic3d"  # built-in synthetic volumes
SPLITS = ("train", "val", "calib", "search")
# Added to the seed so that the val, calib and search images differ from the training images and from each other.
SPLIT_SEED_OFFSETS = {"train": 0, "val": 1000003, "calib": 2000003, "search": 3000017}
DEFAULT_VOLUME_SIZE = (48, 48, 48)  # synthetic volumes' (D, H, W) when none is given
NIFTI_SUFFIXES = (".nii", ".nii.gz")

Sample = tuple[str, np.ndarray, np.ndarray]  # (name, raw image (H, W[, C]) or volume (D, H, W[, C]), mask int64)


def volume_size(size) -> tuple[int, int, int]:
    """One side (a cube) or three sides -> (D, H, W)."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return (int(size),) * 3
    try:
        d, h, w = (int(n) for n in size)
    except (TypeError, ValueError):
        raise UserError(f"volume size {size!r} must be one side or three sides (D, H, W), e.g. 48 or 32,64,64") \
            from None
    return d, h, w


@dataclass(frozen=True)
class SyntheticSource:
    """The built-in synthetic data of one dimensionality.

    Attributes:
        name: What ``data`` says to use it (and the start of each sample's name).
        generate: ``(index, size, seed, num_classes) -> (array, mask)``.
        size: The size ``generate`` takes, from an image side or a volume's side(s).
        default_size: The size when none is given.
        count: Samples ``load_samples`` gives when ``n`` is None.
    """

    name: str
    generate: Callable[[int, Any, int, int], tuple[np.ndarray, np.ndarray]]
    size: Callable[[Any], Any]
    default_size: Any
    count: int


SYNTHETIC_SOURCES = {2: SyntheticSource(SYNTHETIC, synthetic_sample, int, 256, 16),
                     3: SyntheticSource(SYNTHETIC3D, synthetic_volume, volume_size, DEFAULT_VOLUME_SIZE, 8)}


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


def holds_nifti(data: str | os.PathLike) -> bool:
    """True when the image folder of ``data`` holds NIfTI files: a volume data set, whatever the model."""
    images = dataset_folder(data, "train") / "images"
    return images.is_dir() and any(p.name.lower().endswith(NIFTI_SUFFIXES) for p in images.iterdir())


def data_dims(data: str | os.PathLike) -> int:
    """3 for ``"synthetic3d"`` and folders of NIfTI files, else 2 (TIFF and .npy stacks: pass ``spatial_dims=3``)."""
    return 3 if is_synthetic3d(data) or (not is_synthetic(data) and holds_nifti(data)) else 2


def folder_pairs(folder: str | os.PathLike, spatial_dims: int = 2) -> list[tuple[str, Path, Path]]:
    """(name, image_path, mask_path) of a folder data set of images (volumes), sorted by name.

    Raises:
        UserError: The folder is missing, empty, or has unpaired files (one line listing them).
    """
    return raise_problems(scan_folder(folder, spatial_dims)).pairs


def read_pairs(pairs: list[tuple[str, Path, Path]], spatial_dims: int = 2) -> list[Sample]:
    """Reads (name, image_path, mask_path) pairs into (name, image, mask int64), checking that sizes agree."""
    spec = layout(spatial_dims)
    samples = []
    for name, image_path, mask_path in pairs:
        image, mask = spec.read_image(image_path), spec.read_mask(mask_path)
        if image.shape[:spatial_dims] != mask.shape:
            one_channel = ", with one channel of class ids" if mask.ndim != spatial_dims else ""
            raise UserError(f"{image_path}: {spec.item} {sides(image.shape[:spatial_dims])} vs mask "
                            f"{sides(mask.shape)}: a mask must match its {spec.item}'s {spec.axes}{one_channel}")
        samples.append((name, image, mask.astype(np.int64)))
    return samples


def synthetic_samples(source: str, generate: Callable[[int, Any, int, int], tuple[np.ndarray, np.ndarray]],
                      count: int, data_seed: int, size: Any, split: str, num_classes: int | None) -> list[Sample]:
    """``count`` raw synthetic samples ``(f"{source}-{split}-{i:04d}", array, mask int64)``.

    Args:
        source: ``SYNTHETIC`` or ``SYNTHETIC3D`` (the start of each name).
        generate: ``(index, size, seed, num_classes) -> (array, mask)``: ``synthetic_sample`` or
            ``synthetic_volume``.
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


def load_samples(data: str | os.PathLike, n: int | None = None, size=None, seed: int = 0, split: str = "val",
                 num_classes: int | None = None, spatial_dims: int | None = None) -> list[Sample]:
    """Raw samples for evaluation, calibration, verification and benchmarks.

    Args:
        data: ``"synthetic"``, ``"synthetic3d"`` or a folder data set.
        n: Number of samples; None gives all of a folder, or 16 synthetic images (8 volumes).
        size: Synthetic image side in pixels (default 256), or volume (D, H, W) or one side for a cube
            (default 48 x 48 x 48); folders keep their files' sizes.
        seed: Synthetic data seed; each split uses its own (``split_seed``).
        split: "train", "val", "calib" or "search": selects the synthetic seed, or the part of a
            train/val folder (see ``dataset_folder``).
        num_classes: Synthetic classes (2 to 4; None means 2). Ignored for folders.
        spatial_dims: 2 reads images, 3 volumes (``"synthetic"`` then means synthetic volumes, as
            ``"synthetic3d"``); None takes it from ``data`` (``data_dims``).

    Returns:
        List of (name, image (H, W) or (H, W, C) native dtype, mask (H, W) int64), sorted by
        name for folders; for volumes (name, volume (D, H, W[, C]), mask (D, H, W) int64).
    """
    dims = spatial_dims or data_dims(data)
    if n is not None and int(n) < 1:
        raise UserError(f"n={n}: ask for at least 1 {layout(dims).item}")
    source = SYNTHETIC_SOURCES[dims]
    if isinstance(data, str) and (data == source.name or is_synthetic(data)):  # "synthetic" in 3-D: volumes
        count = source.count if n is None else int(n)
        return synthetic_samples(source.name, source.generate, count, split_seed(seed, split),
                                 source.size(source.default_size if size is None else size), split, num_classes)
    pairs = folder_pairs(dataset_folder(data, split), dims)
    return read_pairs(pairs if n is None else pairs[: int(n)], dims)


def load_volume_samples(data: str | os.PathLike, n: int | None = None, size=DEFAULT_VOLUME_SIZE, seed: int = 0,
                        split: str = "val", num_classes: int | None = None) -> list[Sample]:
    """``load_samples`` of volumes: ``"synthetic3d"`` or a folder of volumes (NIfTI, TIFF stacks, .npy)."""
    return load_samples(data, n, size, seed, split, num_classes, spatial_dims=3)


def dataset_info(data: str | os.PathLike, num_classes: int | None = None) -> dict:
    """Facts a model needs about a data set.

    For a folder: ``in_channels`` comes from its first image; ``num_classes`` is the given
    value, else the number of names in ``classes.txt``, else the largest mask id + 1 (at
    least 2; reads every mask); ``class_names`` come from ``classes.txt`` or are
    ``["background", "class1", ...]``. A folder of volumes is checked whole (every volume read once).

    Returns:
        dict(num_classes=int, in_channels=int, class_names=list[str]).
    """
    if is_synthetic(data) or is_synthetic3d(data):
        count, in_channels, class_names = data_facts(None, num_classes)
    elif data_dims(data) == 3:
        report = check_folder(dataset_folder(data, "train"), num_classes, spatial_dims=3)
        count, in_channels, class_names = data_facts(report, num_classes)
    else:
        count, in_channels, class_names = _image_folder_facts(dataset_folder(data, "train"), num_classes)
    return {"num_classes": count, "in_channels": in_channels, "class_names": class_names}


def _image_folder_facts(folder: Path, num_classes: int | None) -> tuple[int, int, list[str]]:
    """``data_facts`` of an image folder without checking it: channels of the first image, masks read when needed."""
    spec = layout(2)
    pairs = folder_pairs(folder)
    first = spec.read_image(pairs[0][1])
    names = read_class_names(folder)
    if num_classes is None:
        num_classes = len(names) if names else max(2, max(int(spec.read_mask(m).max()) for _, _, m in pairs) + 1)
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


def check_data(data, spatial_dims: int, what: str = "--data", model: str | None = None) -> None:
    """UserError naming the fix when ``data`` holds images but the model is 3-D, or volumes but it is 2-D.

    ``model`` names the model in the message (e.g. ``unet3d-ds``); None says "the model".
    """
    name = f"{model} is" if model else "the model is"
    if spatial_dims == 3 and is_synthetic(data):
        raise UserError(f"{what} synthetic holds 2-D images but {name} 3-D: use {what} synthetic3d "
                        "(synthetic volumes), or a 2-D model such as --model unet-ds")
    if spatial_dims == 2 and is_synthetic3d(data):
        raise UserError(f"{what} synthetic3d holds volumes but {name} a 2-D model: use a 3-D model "
                        f"(--model unet3d-ds or unet3d), or {what} synthetic")
    if spatial_dims == 2 and data_dims(data) == 3:
        raise UserError(f"{what} {data} holds volumes (NIfTI files) but {name} 2-D: use a 3-D model "
                        "(--model unet3d-ds or unet3d)")
