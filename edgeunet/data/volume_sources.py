"""Where volumes come from: the built-in ``"synthetic3d"`` data or a folder of volumes.

The 3-D side of ``edgeunet.data.sources``: a volume folder has the same layout (``DIR/images``,
``DIR/masks``, optional ``classes.txt``, or ``DIR/train``/``DIR/val`` parts) with ``.nii``/``.nii.gz``,
multi-page TIFF stacks or ``.npy`` files read by ``edgeunet.data.volumes``; each mask has its
volume's (D, H, W). Samples are raw (name, volume (D, H, W[, C]) native dtype, mask (D, H, W) int64);
callers preprocess them with ``edgeunet.data.volumes_prep.preprocess_volume``.
Synthetic volumes take the split seeds of ``edgeunet.data.sources.split_seed``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from .sources import SYNTHETIC3D, dataset_folder, is_synthetic3d, split_seed, synthetic_samples
from .volumes import VOLUME_SUFFIXES, read_volume

DEFAULT_VOLUME_SIZE = (48, 48, 48)  # synthetic volumes' (D, H, W) when none is given
DEFAULT_SYNTHETIC_VOLUMES = 8  # samples load_volume_samples("synthetic3d") gives when n is None
NIFTI_SUFFIXES = (".nii", ".nii.gz")

VolumeSample = tuple[str, np.ndarray, np.ndarray]  # (name, raw volume (D, H, W[, C]), mask (D, H, W) int64)


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


def volume_name(path: Path) -> str:
    """The file name without its volume suffix (``a.nii.gz`` -> ``a``)."""
    lower = path.name.lower()
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def list_volume_files(folder: Path) -> list[Path]:
    """Volume files in ``folder`` (not recursive, hidden files skipped), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name.lower().endswith(VOLUME_SUFFIXES))


def holds_nifti(data: str | os.PathLike) -> bool:
    """True when the image folder of ``data`` holds NIfTI files: a volume data set, whatever the model."""
    images = dataset_folder(data, "train") / "images"
    return images.is_dir() and any(p.name.lower().endswith(NIFTI_SUFFIXES) for p in images.iterdir())


def read_volume_pairs(pairs: list[tuple[str, Path, Path]]) -> list[VolumeSample]:
    """Reads (name, volume_path, mask_path) into (name, volume, mask int64), checking that shapes agree."""
    samples = []
    for name, image_path, mask_path in pairs:
        volume, mask = read_volume(image_path).array, read_volume(mask_path).array
        if mask.ndim != 3 or volume.shape[:3] != mask.shape:
            raise UserError(f"{image_path}: volume {volume.shape[:3]} vs mask {mask.shape}: a mask must have its "
                            "volume's (D, H, W) and one channel of class ids")
        samples.append((name, volume, mask.astype(np.int64)))
    return samples


def load_volume_samples(data: str | os.PathLike, n: int | None = None, size=DEFAULT_VOLUME_SIZE, seed: int = 0,
                        split: str = "val", num_classes: int | None = None) -> list[VolumeSample]:
    """Raw volume samples for validation, calibration, verification and benchmarks.

    Args:
        data: ``"synthetic3d"`` or a folder of volumes.
        n: Number of samples; None gives all of a folder, or 8 synthetic ones.
        size: Synthetic (D, H, W), or one side for a cube (folders keep their volumes' shapes).
        seed: Synthetic data seed; each split uses its own (``split_seed``).
        split: "train", "val", "calib" or "search".
        num_classes: Synthetic classes (2 to 4; None means 2). Ignored for folders.

    Returns:
        List of (name, volume (D, H, W[, C]) native dtype, mask (D, H, W) int64).
    """
    if n is not None and int(n) < 1:
        raise UserError(f"n={n}: ask for at least 1 volume")
    if is_synthetic3d(data):
        from .synthetic3d import synthetic_volume

        count = DEFAULT_SYNTHETIC_VOLUMES if n is None else int(n)
        return synthetic_samples(SYNTHETIC3D, synthetic_volume, count, split_seed(seed, split), volume_size(size),
                                 split, num_classes)
    from .validate3d import volume_folder_pairs

    pairs = volume_folder_pairs(dataset_folder(data, split))
    return read_volume_pairs(pairs if n is None else pairs[: int(n)])
