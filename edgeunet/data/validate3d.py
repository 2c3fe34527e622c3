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

from ..runtime.imageio import IMAGE_SUFFIXES
from . import folder_check
from .folder_check import DatasetReport, Problem
from .volume_sources import list_volume_files, volume_name
from .volumes import VOLUME_SUFFIXES, read_volume


def scan_volume_folder(folder: str | os.PathLike) -> DatasetReport:
    """Pairs volumes with masks by name without reading them; lists structural problems."""
    folder = Path(folder)
    report = folder_check.new_report(folder, "edgeunet data synth DIR --3d", item="volume", unit="voxel")
    if report.problems:
        return report
    images, masks = (folder_check.index_files(sub, list_volume_files(folder / sub), volume_name, report.problems)
                     for sub in ("images", "masks"))
    for sub, found in (("images", images), ("masks", masks)):
        if not found:
            flat = any(p.suffix.lower() in IMAGE_SUFFIXES for p in (folder / sub).iterdir())
            hint = ("; it holds 2-D images: train a 2-D model (e.g. --model unet-ds)" if flat
                    else f" ({', '.join(VOLUME_SUFFIXES)})")
            report.problems.append(Problem(f"{sub}/", f"no volume files{hint}"))
    folder_check.pair_files(report, images, masks, "no mask (add masks/{name}.nii.gz)",
               "no volume (add it to images/ or delete the mask)")
    return report


def _read_array(path: Path) -> np.ndarray:
    return read_volume(path).array


def _check_volume(report: DatasetReport, path: Path):
    """Reads one volume; records its facts and problems; returns (channels, (D, H, W)) or None."""
    where = f"images/{path.name}"
    array = folder_check.read_or_report(report, where, _read_array, path)
    if array is None:
        return None
    if array.shape[0] == 1:
        report.problems.append(Problem(where, f"a single slice {array.shape[1:3]}: a 2-D image; train a 2-D model "
                                       "on it, or save the whole Z stack"))
        return None
    folder_check.record_array(report, where, array, array.shape[:3], "check the file")
    return (1 if array.ndim == 3 else int(array.shape[3])), array.shape[:3]


def _check_mask(report: DatasetReport, path: Path, limit: int | None, from_names: bool):
    """Reads one mask; records its class histogram and problems; returns its shape (None if unreadable)."""
    where = f"masks/{path.name}"
    mask = folder_check.read_or_report(report, where, _read_array, path)
    if mask is None:
        return None
    if mask.ndim != 3 or mask.dtype.kind not in "uib":
        report.problems.append(Problem(where, f"{mask.dtype} {mask.shape} is not a (D, H, W) mask of integer "
                                       "class ids: save one channel of ids 0, 1, 2, ..."))
        return None
    folder_check.check_class_ids(report, where, mask, limit, from_names)
    return mask.shape


def _check_volume_pair(report: DatasetReport, image_path: Path, mask_path: Path, limit: int | None,
                       from_names: bool) -> int | None:
    """Reads one volume and its mask, records their facts and problems; returns the volume's channel count."""
    facts, mask_shape = _check_volume(report, image_path), _check_mask(report, mask_path, limit, from_names)
    if facts is None:
        return None
    channels, shape = facts
    if mask_shape is not None and tuple(mask_shape) != tuple(shape):
        report.problems.append(Problem(f"images/{image_path.name}", f"volume {_dhw(shape)} vs mask "
                                       f"{_dhw(mask_shape)} (masks/{mask_path.name}): a mask must have its "
                                       "volume's depth, height and width"))
    return channels


def validate_volume_folder(folder: str | os.PathLike, num_classes: int | None = None) -> DatasetReport:
    """Reads every volume and mask of a folder and lists every problem (see the module docstring)."""
    report = scan_volume_folder(folder)
    if not Path(folder).is_dir():
        return report
    return folder_check.check_pairs(report, num_classes, _check_volume_pair)


def _dhw(shape) -> str:
    return "x".join(str(int(n)) for n in shape)


def check_volume_folder(folder: str | os.PathLike, num_classes: int | None = None) -> DatasetReport:
    """Like ``validate_volume_folder`` but raises UserError, one line listing the problems, if there are any."""
    return folder_check.raise_problems(validate_volume_folder(folder, num_classes))


def volume_folder_pairs(folder: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """(name, volume_path, mask_path) of a volume folder, sorted by name; UserError on structural problems."""
    return folder_check.raise_problems(scan_volume_folder(folder)).pairs
