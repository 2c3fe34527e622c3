"""Segment image files into mask PNGs (and overlays): the library behind ``edgeunet predict``.

For every input ``<stem>.<ext>`` it writes ``<out>/<stem>.png`` holding raw class ids (uint8,
machine-readable) and, when asked, ``<out>/<stem>_overlay.png``: the image in 8-bit gray or
RGB with each foreground class blended in a fixed color and outlined.

With a 3-D model the inputs are volumes (``.nii.gz``, ``.nii``, TIFF stacks, ``.npy``) and each mask
is written in its input's format under the same name: ``scan.nii.gz`` -> ``<out>/scan.nii.gz`` (uint8
class ids, with the input's affine and header), ``stack.tif`` -> ``<out>/stack.tif``; an overlay is a
montage of a few evenly spaced slices, mask over image (``runtime.volume_files`` reads and writes them).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from ..atomic import ensure_dir
from ..errors import MissingFileError, UserError
from .imageio import IMAGE_SUFFIXES, ImageReadError, file_stem, file_suffix, read_image, write_mask, write_rgb
from .volume_files import VOLUME_SUFFIXES, read_volume, write_volume

logger = logging.getLogger(__name__)

# Class colors (RGB), class 0 (background) is left uncolored; ids past the list wrap around.
PALETTE = np.array([
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
], dtype=np.uint8)
ALPHA = 0.45
MONTAGE_SLICES = 4
VOLUME_ONLY_SUFFIXES = (".nii", ".nii.gz")  # never a 2-D image


def scan_inputs(paths: list[str | os.PathLike], volumes: bool = False) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The image files named by ``paths``, and the folder entries passed over with the reason.

    Args:
        paths: Image files and/or folders; a folder contributes its files with an image
            suffix (``IMAGE_SUFFIXES``), sorted by name; hidden files, other files and
            sub-folders are skipped (not recursively scanned).
        volumes: Scan for volume files (a 3-D model) instead of images.

    Returns:
        ``(images, skipped)``: image paths in the order given, and ``(path, reason)`` pairs.

    Raises:
        MissingFileError: A path does not exist.
        UserError: A file has no image suffix, a folder holds no images, or nothing is left.
    """
    found: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    suffixes, kind = (VOLUME_SUFFIXES, "volume") if volumes else (IMAGE_SUFFIXES, "image")
    for path in map(Path, paths):
        if path.is_dir():
            images = []
            for entry in sorted(path.iterdir()):
                reason = _skip_reason(entry, suffixes, kind)
                if reason:
                    skipped.append((entry, reason))
                else:
                    images.append(entry)
            if not images:
                raise UserError(f"{path} holds no {kind}s: put {', '.join(suffixes)} files there")
            found.extend(images)
        elif path.is_file():
            _check_kind(path, volumes)
            if file_suffix(path) not in suffixes:
                raise UserError(f"{path} is not an {kind} file: give {', '.join(suffixes)} files or folders")
            found.append(path)
        else:
            raise MissingFileError(f"{path} does not exist: check the path")
    if not found:
        raise UserError("no input images: give image files or folders")
    return found, skipped


def _check_kind(path: Path, volumes: bool) -> None:
    """UserError naming the fix when a 2-D model is given a NIfTI volume or a 3-D model a 2-D image file."""
    if volumes and file_suffix(path) in IMAGE_SUFFIXES and file_suffix(path) not in VOLUME_SUFFIXES:
        raise UserError(f"{path} is a 2-D image and this is a 3-D model: give volumes "
                        f"({', '.join(VOLUME_SUFFIXES)}), or segment images with a 2-D model")
    if not volumes and file_suffix(path) in VOLUME_ONLY_SUFFIXES:
        raise UserError(f"{path} is a volume and this is a 2-D model: segment it with a 3-D model "
                        "(`edgeunet export` of a unet3d-ds checkpoint), or give 2-D images")


def _skip_reason(entry: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES, kind: str = "image") -> str | None:
    """Why a folder entry is not segmented, or None for an image (volume) file."""
    if entry.name.startswith("."):
        return "hidden file"
    if entry.is_dir():
        return "sub-folder not scanned"
    if file_suffix(entry) not in suffixes:
        return f"non-{kind} file"
    if not entry.is_file():
        return "not a regular file"
    return None


def collect_inputs(paths: list[str | os.PathLike], volumes: bool = False) -> list[Path]:
    """The image (volume) files named by ``paths`` (see ``scan_inputs``; the skipped entries are dropped)."""
    return scan_inputs(paths, volumes)[0]


def output_paths(inputs: list[Path], out_dir: Path, volumes: bool = False) -> list[Path]:
    """``<out_dir>/<stem>.png`` for each input (volumes: ``<out_dir>/<name>``, same format); raises UserError
    on clashes with each other or an input."""
    outputs = [out_dir / (p.name if volumes else f"{p.stem}.png") for p in inputs]
    seen: dict[Path, Path] = {}
    for source, target in zip(inputs, outputs):
        if target in seen:
            raise UserError(f"{seen[target]} and {source} would both be written to {target}: "
                            "predict them into separate --out folders")
        seen[target] = source
    resolved_inputs = {p.resolve() for p in inputs}
    for target in outputs:
        if target.resolve() in resolved_inputs or overlay_path(target).resolve() in resolved_inputs:
            raise UserError(f"writing {target} would overwrite an input image: choose another --out folder")
    return outputs


def to_display(image: np.ndarray) -> np.ndarray:
    """An image as (H, W, 3) uint8 for people to look at.

    uint8 images are kept; others are stretched between their 1st and 99.8th percentiles.
    One or two channels show the first as gray; three or more show the first three as RGB.
    """
    rgb = image[:, :, :3] if image.ndim == 3 and image.shape[2] >= 3 else (image if image.ndim == 2 else image[:, :, 0])
    if rgb.dtype != np.uint8:
        x = rgb.astype(np.float32)
        lo, hi = np.percentile(x, [1.0, 99.8])
        rgb = (np.clip((x - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(rgb[:, :, None], 3, axis=2) if rgb.ndim == 2 else rgb)


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = ALPHA, contours: bool = True) -> np.ndarray:
    """Colors the foreground classes of ``mask`` over ``image``.

    Args:
        image: (H, W) or (H, W, C) image, any dtype.
        mask: (H, W) class ids.
        alpha: Opacity of the class colors.
        contours: Draw class borders in full color.

    Returns:
        (H, W, 3) uint8 picture.
    """
    picture = to_display(image).astype(np.float32)
    colors = PALETTE[np.where(mask > 0, (mask - 1) % (len(PALETTE) - 1) + 1, 0)].astype(np.float32)
    foreground = (mask > 0)[:, :, None]
    picture = np.where(foreground, (1.0 - alpha) * picture + alpha * colors, picture)
    if contours:
        edge = np.zeros(mask.shape, bool)
        edge[1:, :] |= mask[1:, :] != mask[:-1, :]
        edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
        edge &= mask > 0
        picture[edge] = colors[edge]
    return (picture + 0.5).astype(np.uint8)


def montage(volume: np.ndarray, mask: np.ndarray, slices: int = MONTAGE_SLICES) -> np.ndarray:
    """(H, n x W, 3) uint8 picture: up to ``slices`` evenly spaced slices of (D, H, W[, C]) ``volume`` with
    their mask colored over them (``overlay``), side by side with a 4 px gap."""
    depth = volume.shape[0]
    picks = np.unique(np.linspace(0, depth - 1, num=min(slices, depth) + 2)[1:-1].round().astype(int))
    pictures = [overlay(volume[z], mask[z]) for z in picks]
    gap = np.full((pictures[0].shape[0], 4, 3), 255, np.uint8)
    parts = [p for picture in pictures for p in (picture, gap)][:-1]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def check_targets(targets: list[Path], out_dir: Path, overlays: bool) -> None:
    """Refuses, before any work, outputs that cannot be written: an ``--out`` that is a file, a
    target that is a folder, a folder that cannot be created or written."""
    for target in targets:
        for path in (target, overlay_path(target)) if overlays else (target,):
            if path.is_dir():
                raise UserError(f"{path} is a folder, where a mask would be written: move it or choose another --out")
    ensure_dir(out_dir)


def overlay_path(mask_path: Path) -> Path:
    """``<out>/<stem>_overlay.png`` beside ``<out>/<stem>.png`` (or ``<out>/<stem>.nii.gz``)."""
    return mask_path.with_name(f"{file_stem(mask_path)}_overlay.png")


def _segment(segmenter, path: Path, overlays: bool, volumes: bool):
    """(mask, overlay or montage or None, segmentation time in ns, the Volume read or None) of one image
    (volume) file; UserError names the file."""
    volume = read_volume(path) if volumes else None
    image = volume.array if volumes else read_image(path)
    start = time.perf_counter_ns()
    try:
        mask = segmenter(image)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    elapsed = time.perf_counter_ns() - start
    picture = (montage if volumes else overlay)(image, mask) if overlays else None
    return mask, picture, elapsed, volume


def _failure(path: Path, exc: UserError) -> str:
    """One line ``<file>: <reason>`` for an image that failed."""
    if isinstance(exc, ImageReadError):
        return f"{path}: cannot read it: {exc.reason}"
    return str(exc) if str(path) in str(exc) else f"{path}: {exc}"


def predict_files(segmenter, inputs: list[str | os.PathLike], out_dir: str | os.PathLike, overlays: bool = False,
                  progress: bool = False, stop_on_error: bool = True, on_error=None) -> dict:
    """Segments image files and writes their masks (and overlays) into ``out_dir``.

    Each image's files are written atomically once it is segmented, so an image that fails
    leaves nothing behind.

    Args:
        segmenter: A ``Segmenter``.
        inputs: Image files and/or folders (see ``scan_inputs``).
        out_dir: Output folder, created if needed; nothing is written elsewhere.
        overlays: Also write ``<stem>_overlay.png``.
        progress: Show a tqdm progress bar on stderr.
        stop_on_error: Raise at the first image that cannot be read or segmented; False goes
            on with the next image and reports the failures in the summary.
        on_error: Called as ``on_error(path, message)`` for each failed image when going on.

    Returns:
        Summary: ``images`` (count written), ``mean_ms`` (segmentation time per written image,
        preprocessing included, file I/O excluded; None when none was), ``out_dir``, ``masks``
        (written paths), ``failed`` and ``skipped`` (lists of ``{"path", "reason"}``).

    Raises:
        UserError: Bad inputs or outputs (before any work), or with ``stop_on_error`` an image
            that cannot be read or does not fit the model; the message names the file.
    """
    from tqdm import tqdm

    volumes = bool(getattr(getattr(segmenter, "metadata", None), "is_3d", False))
    paths, skipped = scan_inputs(inputs, volumes)
    out_dir = Path(out_dir)
    targets = output_paths(paths, out_dir, volumes)
    check_targets(targets, out_dir, overlays)
    total_ns, written, failed = 0, [], []
    for path, target in tqdm(list(zip(paths, targets)), desc="predict", unit="image",
                             disable=None if progress else True):
        try:
            mask, picture, elapsed, volume = _segment(segmenter, path, overlays, volumes)
        except UserError as exc:
            if stop_on_error:
                raise
            message = _failure(path, exc)
            failed.append({"path": str(path), "reason": message})
            logger.info("failed: %s", message)
            if on_error:
                on_error(path, message)
            continue
        total_ns += elapsed
        if volumes:
            write_volume(target, mask, like=volume)
        else:
            write_mask(target, mask)
        if picture is not None:
            write_rgb(overlay_path(target), picture)
        written.append(str(target))
        logger.info("%s -> %s", path, target)
    return {"images": len(written), "mean_ms": total_ns / 1e6 / len(written) if written else None,
            "out_dir": str(out_dir), "masks": written, "failed": failed,
            "skipped": [{"path": str(p), "reason": reason} for p, reason in skipped]}
