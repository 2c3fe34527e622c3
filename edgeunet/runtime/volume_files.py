"""Volume files for ``edgeunet predict`` with a 3-D model: NIfTI, TIFF stacks and .npy in, the same format out.

``scan.nii.gz`` -> ``<out>/scan.nii.gz`` (uint8 class ids, with the input's affine and header),
``stack.tif`` -> ``<out>/stack.tif``, ``vol.npy`` -> ``<out>/vol.npy``; with overlays also
``<out>/<stem>_overlay.png``: a montage of a few evenly spaced slices, mask over image. Reading
and writing go through ``edgeunet.data.volumes`` (torch-free: numpy, tifffile, nibabel for NIfTI).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MONTAGE_SLICES = 4
VOLUME_ONLY_SUFFIXES = (".nii", ".nii.gz")  # never a 2-D image


def volume_suffixes() -> tuple[str, ...]:
    from ..data.volumes import VOLUME_SUFFIXES

    return tuple(VOLUME_SUFFIXES)


def file_suffix(path: Path) -> str:
    """The lower-case suffix of ``path``, ``.nii.gz`` counted as one."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def file_stem(path: Path) -> str:
    """``path``'s name without its suffix (``scan.nii.gz`` -> ``scan``)."""
    return path.name[: len(path.name) - len(file_suffix(path))]


def is_volume_file(path: Path) -> bool:
    """Whether ``path`` can only be a volume (NIfTI)."""
    return file_suffix(path) in VOLUME_ONLY_SUFFIXES


def mask_target(path: Path, out_dir: Path) -> Path:
    """``<out_dir>/<name of path>``: the mask of a volume keeps its format and file name."""
    return out_dir / path.name


def montage(volume: np.ndarray, mask: np.ndarray, slices: int = MONTAGE_SLICES) -> np.ndarray:
    """(H, n x W, 3) uint8 picture: ``slices`` evenly spaced slices of (D, H, W[, C]) ``volume`` with their
    mask colored over them (``predict.overlay``), side by side with a 4 px gap; the slices with the most
    foreground are favoured when the volume has fewer planes than asked."""
    from .predict import overlay

    depth = volume.shape[0]
    picks = np.unique(np.linspace(0, depth - 1, num=min(slices, depth) + 2)[1:-1].round().astype(int))
    if picks.size == 0:
        picks = np.array([int(np.argmax((mask > 0).reshape(depth, -1).sum(1)))])
    pictures = [overlay(volume[z], mask[z]) for z in picks]
    gap = np.full((pictures[0].shape[0], 4, 3), 255, np.uint8)
    parts = [p for picture in pictures for p in (picture, gap)][:-1]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def segment_volume_file(segmenter, path: Path, overlays: bool):
    """(mask, montage or None, segmentation time in ns, the Volume read) of one volume file."""
    import time

    from ..data.volumes import read_volume
    from ..errors import UserError

    volume = read_volume(path)
    start = time.perf_counter_ns()
    try:
        mask = segmenter(volume.array)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    elapsed = time.perf_counter_ns() - start
    return mask, montage(volume.array, mask) if overlays else None, elapsed, volume


def write_volume_mask(target: Path, mask: np.ndarray, like) -> None:
    """Writes ``mask`` (D, H, W) to ``target`` in its format, with ``like``'s affine and header (atomic)."""
    from ..data.volumes import write_volume

    write_volume(target, mask, like=like)
