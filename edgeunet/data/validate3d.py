"""Checking a folder of volumes: the checks of ``edgeunet.data.validate``, per volume.

Layout: ``DIR/images/<name>.<nii|nii.gz|tif|tiff|npy>`` and ``DIR/masks/<name>.<...>`` (same name,
any volume suffix), each mask (D, H, W) class ids of its volume's shape; optional ``classes.txt``.
Problems: missing folders or files, unpaired or duplicate names, unreadable files, single-slice
"volumes" (2-D images: train a 2-D model), NaN/Inf voxels, volume/mask shape mismatch, negative or
too-large class ids, class ids with gaps, channel counts that differ. Warnings: constant volumes.
The report is a ``DatasetReport``; its ``sizes`` count (D, H, W).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..runtime.imageio import IMAGE_SUFFIXES
from .validate import CLASSES_FILE, DatasetReport, Problem, _check_gaps, read_class_names
from .volume_sources import list_volume_files, volume_name
from .volumes import VOLUME_SUFFIXES, ImageReadError, read_volume


def _index(folder: Path, sub: str, problems: list[Problem]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in list_volume_files(folder / sub):
        name = volume_name(path)
        if name in found:
            problems.append(Problem(f"{sub}/{path.name}", f"same name as {sub}/{found[name].name} (keep one)"))
        else:
            found[name] = path
    return found


def scan_volume_folder(folder: str | os.PathLike) -> DatasetReport:
    """Pairs volumes with masks by name without reading them; lists structural problems."""
    folder = Path(folder)
    report = DatasetReport(folder)
    if not folder.is_dir():
        report.problems.append(Problem(str(folder), "folder not found: pass a folder holding images/ and masks/ "
                                       "(or make one with `edgeunet data synth DIR --3d`)"))
        return report
    missing = [sub for sub in ("images", "masks") if not (folder / sub).is_dir()]
    for sub in missing:
        report.problems.append(Problem(f"{sub}/", f"subfolder missing: put the {sub} in {folder / sub}"))
    if missing:
        return report
    images, masks = _index(folder, "images", report.problems), _index(folder, "masks", report.problems)
    for sub, found in (("images", images), ("masks", masks)):
        if not found:
            flat = any(p.suffix.lower() in IMAGE_SUFFIXES for p in (folder / sub).iterdir())
            hint = ("; it holds 2-D images: train a 2-D model (e.g. --model unet-ds)" if flat
                    else f" ({', '.join(VOLUME_SUFFIXES)})")
            report.problems.append(Problem(f"{sub}/", f"no volume files{hint}"))
    for name, path in images.items():
        if name not in masks and masks:
            report.problems.append(Problem(f"images/{path.name}", f"no mask (add masks/{name}.nii.gz)"))
    for name, path in masks.items():
        if name not in images and images:
            report.problems.append(Problem(f"masks/{path.name}", "no volume (add it to images/ or delete the mask)"))
    report.pairs = [(name, images[name], masks[name]) for name in sorted(images) if name in masks]
    return report


def _check_volume(report: DatasetReport, path: Path):
    """Reads one volume; records its facts and problems; returns (channels, (D, H, W)) or None."""
    where = f"images/{path.name}"
    try:
        array = read_volume(path).array
    except ImageReadError as exc:
        report.problems.append(Problem(where, exc.reason))
        return None
    if array.shape[0] == 1:
        report.problems.append(Problem(where, f"a single slice {array.shape[1:3]}: a 2-D image; train a 2-D model "
                                       "on it, or save the whole Z stack"))
        return None
    report.sizes[array.shape[:3]] += 1
    report.dtypes[array.dtype.name] += 1
    bad = int(array.size - np.count_nonzero(np.isfinite(array))) if array.dtype.kind == "f" else 0
    if bad:
        report.problems.append(Problem(where, f"{bad} NaN/Inf voxel(s) of {array.size}: replace them "
                                       "(e.g. np.nan_to_num) or remove the volume"))
    elif array.size and array.min() == array.max():
        report.warnings.append(Problem(where, f"constant volume (every voxel is {array.flat[0]}): check the file"))
    return (1 if array.ndim == 3 else int(array.shape[3])), array.shape[:3]


def _check_mask(report: DatasetReport, path: Path, limit: int | None, from_names: bool):
    """Reads one mask; records its class histogram and problems; returns its shape (None if unreadable)."""
    where = f"masks/{path.name}"
    try:
        mask = read_volume(path).array
    except ImageReadError as exc:
        report.problems.append(Problem(where, exc.reason))
        return None
    if mask.ndim != 3 or mask.dtype.kind not in "uib":
        report.problems.append(Problem(where, f"{mask.dtype} {mask.shape} is not a (D, H, W) mask of integer "
                                       "class ids: save one channel of ids 0, 1, 2, ..."))
        return None
    low, high = int(mask.min()), int(mask.max())
    if low < 0:
        report.problems.append(Problem(where, f"negative class id {low}: class ids must be 0..num_classes-1"))
        return mask.shape
    if limit is not None and high >= limit:
        fix = (f"add the missing names to {CLASSES_FILE} or fix the mask" if from_names
               else f"use --num-classes {high + 1} or fix the mask")
        report.problems.append(Problem(where, f"class id {high} >= num_classes {limit} ({fix})"))
    for cls, count in enumerate(np.bincount(mask.ravel().astype(np.int64))):
        if count:
            report.class_pixels[cls] = report.class_pixels.get(cls, 0) + int(count)
            report.class_images[cls] = report.class_images.get(cls, 0) + 1
            report._first_mask.setdefault(cls, where)
    return mask.shape


def validate_volume_folder(folder: str | os.PathLike, num_classes: int | None = None) -> DatasetReport:
    """Reads every volume and mask of a folder and lists every problem (see the module docstring)."""
    report = scan_volume_folder(folder)
    if not Path(folder).is_dir():
        return report
    try:
        report.class_names = read_class_names(folder)
    except UserError as exc:
        report.problems.append(Problem(CLASSES_FILE, str(exc).split(": ", 1)[-1]))
    if report.class_names and num_classes is not None and len(report.class_names) != num_classes:
        report.problems.append(Problem(CLASSES_FILE, f"lists {len(report.class_names)} classes but num_classes is "
                                       f"{num_classes}: make them agree"))
    from_names = num_classes is None and bool(report.class_names)
    limit = len(report.class_names) if from_names else num_classes
    channels_by_file = {}
    for _, image_path, mask_path in report.pairs:
        facts, mask_shape = _check_volume(report, image_path), _check_mask(report, mask_path, limit, from_names)
        if facts is None:
            continue
        channels, shape = facts
        report.channels[channels] += 1
        channels_by_file[image_path.name] = channels
        if mask_shape is not None and tuple(mask_shape) != tuple(shape):
            report.problems.append(Problem(f"images/{image_path.name}", f"volume {_dhw(shape)} vs mask "
                                           f"{_dhw(mask_shape)} (masks/{mask_path.name}): a mask must have its "
                                           "volume's depth, height and width"))
    if limit is None:
        _check_gaps(report)
    for name, channels in channels_by_file.items():
        if channels != report.in_channels:
            report.problems.append(Problem(f"images/{name}", f"{channels} channel(s) but most volumes have "
                                           f"{report.in_channels}: give all volumes the same channel count"))
    return report


def _dhw(shape) -> str:
    return "x".join(str(int(n)) for n in shape)


def check_volume_folder(folder: str | os.PathLike, num_classes: int | None = None) -> DatasetReport:
    """Like ``validate_volume_folder`` but raises UserError, one line listing the problems, if there are any."""
    report = validate_volume_folder(folder, num_classes)
    if report.problems:
        raise UserError(report.error_message())
    return report


def volume_folder_pairs(folder: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """(name, volume_path, mask_path) of a volume folder, sorted by name; UserError on structural problems."""
    report = scan_volume_folder(folder)
    if report.problems:
        raise UserError(report.error_message())
    return report.pairs
