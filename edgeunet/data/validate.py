"""Checking a folder data set: every problem, each with the file it concerns.

Layout: ``DIR/images/<name>.<png|jpg|jpeg|tif|tiff|npy>`` and ``DIR/masks/<name>.<png|tif|tiff|npy>``
(same name, any allowed suffix), masks holding integer class ids 0..K-1. An optional
``DIR/classes.txt`` lists one class name per line (background first); it fixes K.
"""

from __future__ import annotations

import os
from pathlib import Path

from .folder_check import (
    CLASSES_FILE,
    SHOWN_PROBLEMS,
    DatasetReport,
    Problem,
    check_class_ids,
    check_pairs,
    index_files,
    new_report,
    pair_files,
    problems_message,
    raise_problems,
    read_class_names,
    read_or_report,
    record_array,
)
from .io import IMAGE_SUFFIXES, MASK_SUFFIXES, channel_first_hint, list_files, read_image, read_mask

__all__ = ["CLASSES_FILE", "SHOWN_PROBLEMS", "DatasetReport", "Problem", "check_folder", "problems_message",
           "read_class_names", "scan_folder", "validate_folder"]


def scan_folder(folder: str | os.PathLike) -> DatasetReport:
    """Pairs images with masks by name without reading them; lists structural problems.

    Returns:
        A report with ``pairs`` and ``problems`` filled (missing folders, unpaired files).
    """
    folder = Path(folder)
    report = new_report(folder, "edgeunet data synth DIR")
    if report.problems:
        return report
    images = index_files("images", list_files(folder / "images", IMAGE_SUFFIXES), _stem, report.problems)
    masks = index_files("masks", list_files(folder / "masks", MASK_SUFFIXES), _stem, report.problems)
    if not images:
        report.problems.append(Problem("images/", f"no image files ({', '.join(IMAGE_SUFFIXES)})"))
    if not masks:
        report.problems.append(Problem("masks/", f"no mask files ({', '.join(MASK_SUFFIXES)})"))
    pair_files(report, images, masks, "no mask (add masks/{name}.png)",
               "no image (add images/{name}.png or delete the mask)")
    return report


def _stem(path: Path) -> str:
    return path.stem


def _check_image(report: DatasetReport, path: Path) -> tuple[int, tuple[int, int]] | None:
    """Reads one image, records its facts and problems; returns (channels, (H, W)), or None if unusable."""
    where = f"images/{path.name}"
    image = read_or_report(report, where, read_image, path)
    if image is None:
        return None
    hint = channel_first_hint(image.shape)
    if hint:
        report.problems.append(Problem(where, hint))
        return None
    record_array(report, where, image, image.shape[:2], "it shows nothing to segment; check the file or remove it")
    return (1 if image.ndim == 2 else image.shape[2]), image.shape[:2]


def _check_mask(report: DatasetReport, path: Path, num_classes: int | None, from_names: bool) -> tuple | None:
    """Reads one mask, records its class histogram and problems; returns its (H, W) (None if unreadable)."""
    where = f"masks/{path.name}"
    mask = read_or_report(report, where, read_mask, path)
    if mask is None:
        return None
    check_class_ids(report, where, mask, num_classes, from_names)
    return mask.shape


def _check_pair(report: DatasetReport, image_path: Path, mask_path: Path, num_classes: int | None,
                from_names: bool = False) -> int | None:
    """Reads one pair, records its facts and problems; returns the image's channel count."""
    image = _check_image(report, image_path)
    mask_shape = _check_mask(report, mask_path, num_classes, from_names)
    if image is None:
        return None
    channels, (h, w) = image
    if mask_shape is not None and mask_shape != (h, w):
        mh, mw = mask_shape
        report.problems.append(Problem(f"images/{image_path.name}", f"image {h}x{w} vs mask {mh}x{mw} "
                                       f"(masks/{mask_path.name}): a mask must match its image's height and width"))
    return channels


def validate_folder(folder: str | os.PathLike, num_classes: int | None = None) -> DatasetReport:
    """Reads every image and mask of a folder data set and lists every problem.

    Problems: missing folder or subfolders, no files, image without mask and mask without
    image, duplicate names, unreadable (e.g. truncated) files, channel-first arrays, NaN/Inf
    pixels, image/mask size mismatch, negative class ids, class ids >= num_classes (or beyond
    the names of classes.txt), class ids that skip values when nothing fixes the class count
    (0, 1, 7 would train 8 classes), and images whose channel count differs from the majority.
    Warnings: constant images. Every pixel of every file is read.

    Args:
        folder: Data set folder (``images/``, ``masks/``, optional ``classes.txt``).
        num_classes: When given (or fixed by classes.txt), class ids must be below it.

    Returns:
        A DatasetReport; ``report.problems`` is empty when the data set is usable.
    """
    report = scan_folder(folder)
    if not Path(folder).is_dir():
        return report
    return check_pairs(report, num_classes, _check_pair)


def check_folder(folder: str | os.PathLike, num_classes: int | None = None) -> DatasetReport:
    """Like ``validate_folder`` but raises UserError, one line listing the problems, if there are any."""
    return raise_problems(validate_folder(folder, num_classes))
