"""Checking a folder data set: every problem, each with the file it concerns.

Layout: ``DIR/images/<name>.<png|jpg|jpeg|tif|tiff|npy>`` and ``DIR/masks/<name>.<png|tif|tiff|npy>``
(same name, any allowed suffix), masks holding integer class ids 0..K-1. An optional
``DIR/classes.txt`` lists one class name per line (background first); it fixes K.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from .io import IMAGE_SUFFIXES, MASK_SUFFIXES, ImageReadError, channel_first_hint, list_files, read_image, read_mask

CLASSES_FILE = "classes.txt"
SHOWN_PROBLEMS = 5  # problems spelled out in a one-line error message


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a data set: ``file`` is relative to the data set folder."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class DatasetReport:
    """What ``validate_folder`` found.

    Attributes:
        folder: The data set folder.
        pairs: (name, image_path, mask_path) of every complete pair, sorted by name.
        problems: Every problem found; empty when the data set is usable.
        warnings: Things that train but are likely mistakes (constant images).
        sizes: Counter of image (H, W).
        channels: Counter of image channel counts.
        dtypes: Counter of image dtype names.
        class_pixels: Pixel count per class id over all readable masks.
        class_images: Number of masks holding each class id.
        class_names: Names from classes.txt, or None.
    """

    folder: Path
    pairs: list[tuple[str, Path, Path]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)
    channels: Counter = field(default_factory=Counter)
    dtypes: Counter = field(default_factory=Counter)
    class_pixels: dict[int, int] = field(default_factory=dict)
    class_images: dict[int, int] = field(default_factory=dict)
    class_names: list[str] | None = None
    _first_mask: dict[int, str] = field(default_factory=dict, repr=False)  # class id -> first mask holding it

    @property
    def in_channels(self) -> int:
        """The most common image channel count (1 when nothing was readable)."""
        return self.channels.most_common(1)[0][0] if self.channels else 1

    @property
    def num_classes(self) -> int:
        """len(classes.txt) when present, else the largest class id found + 1, at least 2."""
        if self.class_names:
            return len(self.class_names)
        return max([2] + [c + 1 for c in self.class_pixels])

    @property
    def size_range(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """((smallest H, smallest W), (largest H, largest W)) over the images, or None."""
        if not self.sizes:
            return None
        heights, widths = [h for h, _ in self.sizes], [w for _, w in self.sizes]
        return (min(heights), min(widths)), (max(heights), max(widths))

    def error_message(self) -> str:
        """The problems as one line (see ``problems_message``)."""
        return problems_message(self.folder, self.problems)


def problems_message(folder: str | os.PathLike, problems: list[Problem], limit: int = SHOWN_PROBLEMS) -> str:
    """One line: ``dataset DIR has 3 problems: a.png: no mask (...); ... (+N more; run ...)``."""
    count = len(problems)
    text = "; ".join(str(p) for p in problems[:limit])
    more = f" (+{count - limit} more; run `edgeunet data check {folder}` to list all)" if count > limit else ""
    return f"dataset {folder} has {count} problem{'s' if count != 1 else ''}: {text}{more}"


def read_class_names(folder: str | os.PathLike) -> list[str] | None:
    """Class names from ``folder/classes.txt`` (one per line, blank lines ignored), or None."""
    path = Path(folder) / CLASSES_FILE
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) < 2:
        raise UserError(f"{path} lists {len(names)} class name(s): list at least 2 (background first), one per line")
    return names


def _index(folder: Path, sub: str, suffixes: tuple[str, ...], problems: list[Problem]) -> dict[str, Path]:
    """name -> file in ``folder/sub``; a name used twice (a.png and a.tif) is a problem."""
    found: dict[str, Path] = {}
    for path in list_files(folder / sub, suffixes):
        if path.stem in found:
            problems.append(Problem(f"{sub}/{path.name}", f"same name as {sub}/{found[path.stem].name} (keep one)"))
        else:
            found[path.stem] = path
    return found


def scan_folder(folder: str | os.PathLike) -> DatasetReport:
    """Pairs images with masks by name without reading them; lists structural problems.

    Returns:
        A report with ``pairs`` and ``problems`` filled (missing folders, unpaired files).
    """
    folder = Path(folder)
    report = DatasetReport(folder)
    if not folder.is_dir():
        report.problems.append(Problem(str(folder), "folder not found: pass a folder holding images/ and masks/ "
                                       "(or make one with `edgeunet data synth DIR`)"))
        return report
    missing = [sub for sub in ("images", "masks") if not (folder / sub).is_dir()]
    for sub in missing:
        report.problems.append(Problem(f"{sub}/", f"subfolder missing: put the {sub} in {folder / sub}"))
    if missing:
        return report
    images = _index(folder, "images", IMAGE_SUFFIXES, report.problems)
    masks = _index(folder, "masks", MASK_SUFFIXES, report.problems)
    if not images:
        report.problems.append(Problem("images/", f"no image files ({', '.join(IMAGE_SUFFIXES)})"))
    if not masks:
        report.problems.append(Problem("masks/", f"no mask files ({', '.join(MASK_SUFFIXES)})"))
    for name, path in images.items():
        if name not in masks and masks:
            report.problems.append(Problem(f"images/{path.name}", f"no mask (add masks/{name}.png)"))
    for name, path in masks.items():
        if name not in images and images:
            report.problems.append(Problem(f"masks/{path.name}",
                                           f"no image (add images/{name}.png or delete the mask)"))
    report.pairs = [(name, images[name], masks[name]) for name in sorted(images) if name in masks]
    return report


def _check_image(report: DatasetReport, path: Path) -> tuple[int, tuple[int, int]] | None:
    """Reads one image, records its facts and problems; returns (channels, (H, W)), or None if unusable."""
    where = f"images/{path.name}"
    try:
        image = read_image(path)
    except ImageReadError as exc:
        report.problems.append(Problem(where, exc.reason))
        return None
    hint = channel_first_hint(image.shape)
    if hint:
        report.problems.append(Problem(where, hint))
        return None
    report.sizes[image.shape[:2]] += 1
    report.dtypes[image.dtype.name] += 1
    bad = int(image.size - np.count_nonzero(np.isfinite(image))) if image.dtype.kind == "f" else 0
    if bad:
        report.problems.append(Problem(where, f"{bad} NaN/Inf pixel(s) of {image.size}: replace them "
                                       "(e.g. np.nan_to_num) or remove the image"))
    elif image.size and image.min() == image.max():
        report.warnings.append(Problem(where, f"constant image (every pixel is {image.flat[0]}): it shows nothing "
                                       "to segment; check the file or remove it"))
    return (1 if image.ndim == 2 else image.shape[2]), image.shape[:2]


def _check_mask(report: DatasetReport, path: Path, num_classes: int | None, from_names: bool) -> tuple | None:
    """Reads one mask, records its class histogram and problems; returns its (H, W) (None if unreadable)."""
    where = f"masks/{path.name}"
    try:
        mask = read_mask(path)
    except ImageReadError as exc:
        report.problems.append(Problem(where, exc.reason))
        return None
    low, high = int(mask.min()), int(mask.max())
    if low < 0:
        report.problems.append(Problem(where, f"negative class id {low}: class ids must be 0..num_classes-1"))
        return mask.shape
    if num_classes is not None and high >= num_classes:
        if from_names:
            message = (f"class id {high} but {CLASSES_FILE} names only {num_classes} classes (ids 0.."
                       f"{num_classes - 1}): add the missing names to {CLASSES_FILE} or fix the mask")
        else:
            message = f"class id {high} >= num_classes {num_classes} (use --num-classes {high + 1} or fix the mask)"
        report.problems.append(Problem(where, message))
    for cls, count in enumerate(np.bincount(mask.ravel())):
        if count:
            report.class_pixels[cls] = report.class_pixels.get(cls, 0) + int(count)
            report.class_images[cls] = report.class_images.get(cls, 0) + 1
            report._first_mask.setdefault(cls, where)
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


def _check_gaps(report: DatasetReport) -> None:
    """Class ids that skip values (0, 1, 7) with nothing else fixing the class count would train 8 classes."""
    if not report.class_pixels:
        return
    top = max(report.class_pixels)
    missing = [c for c in range(1, top) if c not in report.class_pixels]
    if not missing:
        return
    gap = _ranges(missing)
    for cls in sorted(c for c in report.class_pixels if c > missing[0]):
        report.problems.append(Problem(
            report._first_mask[cls],
            f"class id {cls} (in {report.class_images[cls]} mask(s)) but no mask holds {gap}: renumber the classes "
            f"0..{len(report.class_pixels) - 1} without gaps, or list all {top + 1} class names in {CLASSES_FILE}"))


def _ranges(ids: list[int]) -> str:
    """[2, 3, 4, 6] -> "ids 2-4, 6"."""
    spans, start, prev = [], ids[0], ids[0]
    for cur in ids[1:]:
        if cur != prev + 1:
            spans.append((start, prev))
            start = cur
        prev = cur
    spans.append((start, prev))
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return ("id " if len(ids) == 1 else "ids ") + text


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
        channels = _check_pair(report, image_path, mask_path, limit, from_names)
        if channels is not None:
            report.channels[channels] += 1
            channels_by_file[image_path.name] = channels
    if limit is None:
        _check_gaps(report)
    majority = report.in_channels
    for name, channels in channels_by_file.items():
        if channels != majority:
            report.problems.append(Problem(f"images/{name}", f"{channels} channel(s) but most images have "
                                           f"{majority}: give all images the same channel count"))
    return report


def check_folder(folder: str | os.PathLike, num_classes: int | None = None) -> DatasetReport:
    """Like ``validate_folder`` but raises UserError, one line listing the problems, if there are any."""
    report = validate_folder(folder, num_classes)
    if report.problems:
        raise UserError(report.error_message())
    return report
