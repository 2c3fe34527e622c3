"""Segment image files into mask PNGs (and overlays): the library behind ``edgeunet predict``.

For every input ``<stem>.<ext>`` it writes ``<out>/<stem>.png`` holding raw class ids (uint8,
machine-readable) and, when asked, ``<out>/<stem>_overlay.png``: the image in 8-bit gray or
RGB with each foreground class blended in a fixed color and outlined.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from ..errors import MissingFileError, UserError
from .imageio import IMAGE_SUFFIXES, read_image, write_mask, write_rgb

logger = logging.getLogger(__name__)

# Class colors (RGB), class 0 (background) is left uncolored; ids past the list wrap around.
PALETTE = np.array([
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
], dtype=np.uint8)
ALPHA = 0.45


def collect_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """The image files named by ``paths``: files as given, folders scanned (not recursively).

    Args:
        paths: Image files and/or folders; a folder contributes its files with an image
            suffix (``IMAGE_SUFFIXES``), hidden files skipped, sorted by name.

    Returns:
        Image paths in the order given.

    Raises:
        FileNotFoundError: A path does not exist.
        ValueError: A file has no image suffix, a folder holds no images, or nothing is left.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                            and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise UserError(f"{path} holds no images: put {', '.join(IMAGE_SUFFIXES)} files there")
            found.extend(images)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise UserError(f"{path} is not an image file: give {', '.join(IMAGE_SUFFIXES)} files or folders")
            found.append(path)
        else:
            raise MissingFileError(f"{path} does not exist: check the path")
    if not found:
        raise UserError("no input images: give image files or folders")
    return found


def output_paths(inputs: list[Path], out_dir: Path) -> list[Path]:
    """``<out_dir>/<stem>.png`` for each input; raises ValueError on clashes with each other or an input."""
    outputs = [out_dir / f"{p.stem}.png" for p in inputs]
    seen: dict[Path, Path] = {}
    for source, target in zip(inputs, outputs):
        if target in seen:
            raise UserError(f"{seen[target]} and {source} would both be written to {target}: predict them into separate --out folders")
        seen[target] = source
    resolved_inputs = {p.resolve() for p in inputs}
    for target in outputs:
        if target.resolve() in resolved_inputs or target.with_name(f"{target.stem}_overlay.png").resolve() in resolved_inputs:
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


def predict_files(segmenter, inputs: list[str | os.PathLike], out_dir: str | os.PathLike,
                  overlays: bool = False, progress: bool = False) -> dict:
    """Segments image files and writes their masks (and overlays) into ``out_dir``.

    Args:
        segmenter: A ``Segmenter``.
        inputs: Image files and/or folders (see ``collect_inputs``).
        out_dir: Output folder, created if needed; nothing is written elsewhere.
        overlays: Also write ``<stem>_overlay.png``.
        progress: Show a tqdm progress bar on stderr.

    Returns:
        Summary: ``images`` (count), ``mean_ms`` (segmentation time per image, preprocessing
        included, file I/O excluded), ``out_dir`` and ``masks`` (written paths).

    Raises:
        ValueError: An input cannot be read as an image or does not fit the model; the
            message names the file.
    """
    from tqdm import tqdm

    paths = collect_inputs(inputs)
    out_dir = Path(out_dir)
    targets = output_paths(paths, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total_ns = 0
    for path, target in tqdm(list(zip(paths, targets)), desc="predict", unit="image", disable=None if progress else True):
        image = read_image(path)
        start = time.perf_counter_ns()
        try:
            mask = segmenter(image)
        except ValueError as exc:
            raise UserError(f"{path}: {exc}") from None
        total_ns += time.perf_counter_ns() - start
        write_mask(target, mask)
        if overlays:
            write_rgb(target.with_name(f"{target.stem}_overlay.png"), overlay(image, mask))
        logger.info("%s -> %s", path, target)
    return {"images": len(paths), "mean_ms": total_ns / 1e6 / len(paths), "out_dir": str(out_dir),
            "masks": [str(t) for t in targets]}
