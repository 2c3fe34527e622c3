"""Checking a folder data set of images or volumes: every problem, each with the file it concerns.

Layout: ``DIR/images/<name>.<suffix>`` and ``DIR/masks/<name>.<suffix>`` (same name, any allowed suffix),
masks holding integer class ids 0..K-1; an optional ``DIR/classes.txt`` lists one class name per line
(background first) and fixes K. Images (``spatial_dims=2``) are .png/.jpg/.jpeg/.tif/.tiff/.npy with
.png/.tif/.tiff/.npy masks of their (H, W); volumes (``spatial_dims=3``) are .nii/.nii.gz, TIFF stacks or
.npy with masks of their (D, H, W). One code path checks both; what differs per dimensionality (the files,
how one is read, the words of the messages) is a row of ``LAYOUTS``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..runtime.imageio import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    ImageReadError,
    file_stem,
    file_suffix,
    list_files,
    read_image,
    read_mask,
)
from ..runtime.volume_files import VOLUME_SUFFIXES, read_volume

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
        sizes: Counter of image (H, W) (volumes: (D, H, W)).
        channels: Counter of image channel counts.
        dtypes: Counter of image dtype names.
        class_pixels: Pixel (volumes: voxel) count per class id over all readable masks.
        class_images: Number of masks holding each class id.
        class_names: Names from classes.txt, or None.
        item: What one sample is: ``"image"`` or ``"volume"``.
        unit: What its elements are: ``"pixel"`` or ``"voxel"``.
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
    item: str = "image"
    unit: str = "pixel"
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


def _volume_array(path: Path) -> np.ndarray:
    return read_volume(path).array


def _volume_problem(array: np.ndarray) -> str | None:
    """Why a readable volume cannot be used (a single slice: a 2-D image), or None."""
    if array.shape[0] == 1:
        return f"a single slice {array.shape[1:3]}: a 2-D image; train a 2-D model on it, or save the whole Z stack"
    return None


@dataclass(frozen=True)
class Layout:
    """What a folder data set of one dimensionality holds and how one of its files is read.

    Attributes:
        spatial_dims: 2 (images) or 3 (volumes).
        item: What one sample is, in messages: ``"image"`` or ``"volume"``.
        unit: What its elements are: ``"pixel"`` or ``"voxel"``.
        axes: The sides a mask shares with its image, in words.
        image_suffixes: Files of ``images/``.
        mask_suffixes: Files of ``masks/``.
        read_image: path -> array (ImageReadError when unreadable; ``read_image`` refuses channel-first images).
        read_mask: path -> class ids (ImageReadError when unreadable).
        image_problem: array -> why a readable image cannot be used, or None; None when every one can.
        constant_fix: What the warning about a constant image tells to do.
        synth_command: The command that makes an example data set.
        missing_mask: The problem of an image without a mask; ``{name}`` stands for its name.
        missing_image: The problem of a mask without an image.
    """

    spatial_dims: int
    item: str
    unit: str
    axes: str
    image_suffixes: tuple[str, ...]
    mask_suffixes: tuple[str, ...]
    read_image: Callable[[Path], np.ndarray]
    read_mask: Callable[[Path], np.ndarray]
    image_problem: Callable[[np.ndarray], str | None] | None
    constant_fix: str
    synth_command: str
    missing_mask: str
    missing_image: str


LAYOUTS = {
    2: Layout(2, "image", "pixel", "height and width", IMAGE_SUFFIXES, MASK_SUFFIXES, read_image, read_mask, None,
              "it shows nothing to segment; check the file or remove it", "edgeunet data synth DIR",
              "no mask (add masks/{name}.png)", "no image (add images/{name}.png or delete the mask)"),
    3: Layout(3, "volume", "voxel", "depth, height and width", VOLUME_SUFFIXES, VOLUME_SUFFIXES, _volume_array,
              _volume_array, _volume_problem, "check the file", "edgeunet data synth DIR --3d",
              "no mask (add masks/{name}.nii.gz)", "no volume (add it to images/ or delete the mask)"),
}


def layout(spatial_dims: int) -> Layout:
    """The ``LAYOUTS`` row of ``spatial_dims``; UserError for anything but 2 or 3."""
    if spatial_dims not in LAYOUTS:
        raise UserError(f"spatial_dims {spatial_dims!r}: use 2 (images) or 3 (volumes)")
    return LAYOUTS[spatial_dims]


def sides(shape) -> str:
    """(8, 12, 16) -> "8x12x16"."""
    return "x".join(str(int(n)) for n in shape)


def _index_files(sub: str, paths: list[Path], problems: list[Problem]) -> dict[str, Path]:
    """name -> file among the ``paths`` of subfolder ``sub``; a name used twice (a.png and a.tif) is a problem."""
    found: dict[str, Path] = {}
    for path in paths:
        name = file_stem(path)
        if name in found:
            problems.append(Problem(f"{sub}/{path.name}", f"same name as {sub}/{found[name].name} (keep one)"))
        else:
            found[name] = path
    return found


def _no_files(folder: Path, sub: str, spec: Layout) -> Problem:
    """The problem of an ``images/`` or ``masks/`` folder without a file of its kind."""
    suffixes = spec.image_suffixes if sub == "images" else spec.mask_suffixes
    if spec.spatial_dims == 2:
        return Problem(f"{sub}/", f"no {sub[:-1]} files ({', '.join(suffixes)})")
    flat = any(file_suffix(p) in IMAGE_SUFFIXES for p in (folder / sub).iterdir())
    hint = "; it holds 2-D images: train a 2-D model (e.g. --model unet-ds)" if flat else f" ({', '.join(suffixes)})"
    return Problem(f"{sub}/", f"no {spec.item} files{hint}")


def scan_folder(folder: str | os.PathLike, spatial_dims: int = 2) -> DatasetReport:
    """Pairs images (volumes) with masks by name without reading them; lists structural problems.

    Returns:
        A report with ``pairs`` and ``problems`` filled (missing folders, unpaired or duplicate files).
    """
    folder, spec = Path(folder), layout(spatial_dims)
    report = DatasetReport(folder, item=spec.item, unit=spec.unit)
    if not folder.is_dir():
        report.problems.append(Problem(str(folder), "folder not found: pass a folder holding images/ and masks/ "
                                       f"(or make one with `{spec.synth_command}`)"))
        return report
    for sub in ("images", "masks"):
        if not (folder / sub).is_dir():
            report.problems.append(Problem(f"{sub}/", f"subfolder missing: put the {sub} in {folder / sub}"))
    if report.problems:
        return report
    images = _index_files("images", list_files(folder / "images", spec.image_suffixes), report.problems)
    masks = _index_files("masks", list_files(folder / "masks", spec.mask_suffixes), report.problems)
    for sub, found in (("images", images), ("masks", masks)):
        if not found:
            report.problems.append(_no_files(folder, sub, spec))
    for name, path in images.items():
        if name not in masks and masks:
            report.problems.append(Problem(f"images/{path.name}", spec.missing_mask.format(name=name)))
    for name, path in masks.items():
        if name not in images and images:
            report.problems.append(Problem(f"masks/{path.name}", spec.missing_image.format(name=name)))
    report.pairs = [(name, images[name], masks[name]) for name in sorted(images) if name in masks]
    return report


def read_or_report(report: DatasetReport, where: str, read: Callable[[Path], np.ndarray],
                   path: Path) -> np.ndarray | None:
    """``read(path)``, or None with the reason recorded as a problem of ``where`` when the file is unreadable."""
    try:
        return read(path)
    except ImageReadError as exc:
        report.problems.append(Problem(where, exc.reason))
        return None


def record_array(report: DatasetReport, where: str, array: np.ndarray, size: tuple, constant_fix: str) -> None:
    """Counts an image's (or volume's) ``size`` and dtype; NaN/Inf values are a problem, a constant array a warning.

    Args:
        report: The report to fill (its ``item`` and ``unit`` name the array and its elements).
        where: The file, relative to the data set folder.
        array: The image or volume as read.
        size: Its (H, W) or (D, H, W).
        constant_fix: What the warning about a constant array tells to do.
    """
    report.sizes[size] += 1
    report.dtypes[array.dtype.name] += 1
    bad = int(array.size - np.count_nonzero(np.isfinite(array))) if array.dtype.kind == "f" else 0
    if bad:
        report.problems.append(Problem(where, f"{bad} NaN/Inf {report.unit}(s) of {array.size}: replace them "
                                       f"(e.g. np.nan_to_num) or remove the {report.item}"))
    elif array.size and array.min() == array.max():
        report.warnings.append(Problem(where, f"constant {report.item} (every {report.unit} is {array.flat[0]}): "
                                       f"{constant_fix}"))


def check_class_ids(report: DatasetReport, where: str, mask: np.ndarray, limit: int | None, from_names: bool) -> None:
    """Records the problems of one mask's class ids (negative, or ``>= limit``) and, unless negative, its histogram.

    Args:
        report: The report to fill.
        where: The mask's file, relative to the data set folder.
        mask: Integer class ids.
        limit: Class ids must be below it (None: no limit).
        from_names: The limit is the number of names in classes.txt (not --num-classes).
    """
    low, high = int(mask.min()), int(mask.max())
    if low < 0:
        report.problems.append(Problem(where, f"negative class id {low}: class ids must be 0..num_classes-1"))
        return
    if limit is not None and high >= limit:
        if from_names:
            message = (f"class id {high} but {CLASSES_FILE} names only {limit} classes (ids 0.."
                       f"{limit - 1}): add the missing names to {CLASSES_FILE} or fix the mask")
        else:
            message = f"class id {high} >= num_classes {limit} (use --num-classes {high + 1} or fix the mask)"
        report.problems.append(Problem(where, message))
    for cls, count in enumerate(np.bincount(mask.ravel().astype(np.int64, copy=False))):
        if count:
            report.class_pixels[cls] = report.class_pixels.get(cls, 0) + int(count)
            report.class_images[cls] = report.class_images.get(cls, 0) + 1
            report._first_mask.setdefault(cls, where)


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


def _check_image(report: DatasetReport, path: Path, spec: Layout) -> tuple[int, tuple[int, ...]] | None:
    """Reads one image (volume), records its facts and problems; returns (channels, spatial shape), or None
    when it is unusable."""
    where = f"images/{path.name}"
    array = read_or_report(report, where, spec.read_image, path)
    if array is None:
        return None
    problem = spec.image_problem(array) if spec.image_problem else None
    if problem:
        report.problems.append(Problem(where, problem))
        return None
    shape = array.shape[:spec.spatial_dims]
    record_array(report, where, array, shape, spec.constant_fix)
    return (1 if array.ndim == spec.spatial_dims else int(array.shape[-1])), shape


def _check_mask(report: DatasetReport, path: Path, spec: Layout, limit: int | None,
                from_names: bool) -> tuple[int, ...] | None:
    """Reads one mask, records its class histogram and problems; returns its shape (None if unusable)."""
    where = f"masks/{path.name}"
    mask = read_or_report(report, where, spec.read_mask, path)
    if mask is None:
        return None
    if mask.ndim != spec.spatial_dims or mask.dtype.kind not in "uib":  # (volumes: read_mask gives (H, W) ids)
        report.problems.append(Problem(where, f"{mask.dtype} {mask.shape} is not a (D, H, W) mask of integer "
                                       "class ids: save one channel of ids 0, 1, 2, ..."))
        return None
    check_class_ids(report, where, mask, limit, from_names)
    return mask.shape


def _check_pair(report: DatasetReport, image_path: Path, mask_path: Path, spec: Layout, limit: int | None,
                from_names: bool) -> int | None:
    """Reads one pair, records its facts and problems; returns the image's channel count (None if unusable)."""
    image = _check_image(report, image_path, spec)
    mask_shape = _check_mask(report, mask_path, spec, limit, from_names)
    if image is None:
        return None
    channels, shape = image
    if mask_shape is not None and tuple(mask_shape) != tuple(shape):
        report.problems.append(Problem(f"images/{image_path.name}", f"{spec.item} {sides(shape)} vs mask "
                                       f"{sides(mask_shape)} (masks/{mask_path.name}): a mask must match its "
                                       f"{spec.item}'s {spec.axes}"))
    return channels


def validate_folder(folder: str | os.PathLike, num_classes: int | None = None, spatial_dims: int = 2) -> DatasetReport:
    """Reads every image (volume) and mask of a folder data set and lists every problem.

    Problems: missing folder or subfolders, no files, image without mask and mask without
    image, duplicate names, unreadable (e.g. truncated) files, channel-first arrays (single-slice
    "volumes": 2-D images), NaN/Inf pixels, image/mask size mismatch, negative class ids, class ids
    >= num_classes (or beyond the names of classes.txt), class ids that skip values when nothing
    fixes the class count (0, 1, 7 would train 8 classes), and images whose channel count differs
    from the majority. Warnings: constant images. Every pixel of every file is read.

    Args:
        folder: Data set folder (``images/``, ``masks/``, optional ``classes.txt``).
        num_classes: When given (or fixed by classes.txt), class ids must be below it.
        spatial_dims: 2 for images, 3 for volumes (``LAYOUTS``).

    Returns:
        A DatasetReport; ``report.problems`` is empty when the data set is usable. Its ``sizes`` count
        (H, W) (volumes: (D, H, W)).
    """
    spec = layout(spatial_dims)
    report = scan_folder(folder, spatial_dims)
    if not Path(folder).is_dir():
        return report
    try:
        report.class_names = read_class_names(report.folder)
    except UserError as exc:
        report.problems.append(Problem(CLASSES_FILE, str(exc).split(": ", 1)[-1]))
    if report.class_names and num_classes is not None and len(report.class_names) != num_classes:
        report.problems.append(Problem(CLASSES_FILE, f"lists {len(report.class_names)} classes but num_classes is "
                                       f"{num_classes}: make them agree"))
    from_names = num_classes is None and bool(report.class_names)
    limit = len(report.class_names) if from_names else num_classes
    channels_by_file = {}
    for _, image_path, mask_path in report.pairs:
        channels = _check_pair(report, image_path, mask_path, spec, limit, from_names)
        if channels is not None:
            report.channels[channels] += 1
            channels_by_file[image_path.name] = channels
    if limit is None:
        _check_gaps(report)
    majority, items = report.in_channels, f"{report.item}s"
    for name, channels in channels_by_file.items():
        if channels != majority:
            report.problems.append(Problem(f"images/{name}", f"{channels} channel(s) but most {items} have "
                                           f"{majority}: give all {items} the same channel count"))
    return report


def check_folder(folder: str | os.PathLike, num_classes: int | None = None, spatial_dims: int = 2) -> DatasetReport:
    """Like ``validate_folder`` but raises UserError, one line listing the problems, if there are any."""
    return raise_problems(validate_folder(folder, num_classes, spatial_dims))


def raise_problems(report: DatasetReport) -> DatasetReport:
    """``report`` itself when it lists no problem, else UserError: one line listing them."""
    if report.problems:
        raise UserError(report.error_message())
    return report
