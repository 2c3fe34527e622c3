"""What checking a folder data set of images (``validate``) or of volumes (``validate3d``) shares.

Both layouts are ``DIR/images/<name>.<suffix>`` with ``DIR/masks/<name>.<suffix>`` and an optional
``DIR/classes.txt``; the report, the pairing by name, the class-id checks and the class histogram,
the gap and channel-majority checks are one code path. Only reading and checking one image or one
volume differs, and comes in as ``check_pair``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..runtime.imageio import ImageReadError

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
    """What ``validate_folder`` (or ``validate_volume_folder``) found.

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


def new_report(folder: Path, synth_command: str, item: str = "image", unit: str = "pixel") -> DatasetReport:
    """A report of ``folder``, holding a problem already when the folder or its images/ or masks/ is missing.

    Args:
        folder: The data set folder.
        synth_command: The command that makes an example data set, named when the folder is missing.
        item: ``DatasetReport.item``.
        unit: ``DatasetReport.unit``.
    """
    report = DatasetReport(folder, item=item, unit=unit)
    if not folder.is_dir():
        report.problems.append(Problem(str(folder), "folder not found: pass a folder holding images/ and masks/ "
                                       f"(or make one with `{synth_command}`)"))
        return report
    for sub in ("images", "masks"):
        if not (folder / sub).is_dir():
            report.problems.append(Problem(f"{sub}/", f"subfolder missing: put the {sub} in {folder / sub}"))
    return report


def index_files(sub: str, paths: Iterable[Path], name_of: Callable[[Path], str],
                problems: list[Problem]) -> dict[str, Path]:
    """name -> file among the ``paths`` of subfolder ``sub``; a name used twice (a.png and a.tif) is a problem."""
    found: dict[str, Path] = {}
    for path in paths:
        name = name_of(path)
        if name in found:
            problems.append(Problem(f"{sub}/{path.name}", f"same name as {sub}/{found[name].name} (keep one)"))
        else:
            found[name] = path
    return found


def pair_files(report: DatasetReport, images: dict[str, Path], masks: dict[str, Path], no_mask: str,
               no_image: str) -> None:
    """Fills ``report.pairs`` (sorted by name); a file without its partner is a problem.

    Args:
        report: The report to fill.
        images: name -> image file.
        masks: name -> mask file.
        no_mask: Message for an image without a mask; ``{name}`` stands for its name.
        no_image: Message for a mask without an image; ``{name}`` stands for its name.
    """
    for name, path in images.items():
        if name not in masks and masks:
            report.problems.append(Problem(f"images/{path.name}", no_mask.format(name=name)))
    for name, path in masks.items():
        if name not in images and images:
            report.problems.append(Problem(f"masks/{path.name}", no_image.format(name=name)))
    report.pairs = [(name, images[name], masks[name]) for name in sorted(images) if name in masks]


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


CheckPair = Callable[[DatasetReport, Path, Path, "int | None", bool], "int | None"]


def check_pairs(report: DatasetReport, num_classes: int | None, check_pair: CheckPair) -> DatasetReport:
    """Reads every pair of a scanned report with ``check_pair`` and adds the data-set-wide problems.

    Args:
        report: A report with ``pairs`` (from a scan of an existing folder).
        num_classes: When given (or fixed by classes.txt), class ids must be below it.
        check_pair: ``(report, image_path, mask_path, limit, from_names) -> channels``: reads one pair and
            records its facts and problems; returns its channel count, or None when the image is unusable.

    Returns:
        ``report``, with the class names, facts and every problem.
    """
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
        channels = check_pair(report, image_path, mask_path, limit, from_names)
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


def raise_problems(report: DatasetReport) -> DatasetReport:
    """``report`` itself when it lists no problem, else UserError: one line listing them."""
    if report.problems:
        raise UserError(report.error_message())
    return report
