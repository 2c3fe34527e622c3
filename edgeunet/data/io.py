"""Reading and writing images and masks: Pillow for PNG/JPEG, tifffile for TIFF, numpy for .npy.

Images come back in their native dtype (uint8, uint16, int16 or float32) as (H, W) or (H, W, C);
masks come back as (H, W) int64 class ids. Writes go through ``edgeunet.atomic`` (a temporary
file in the same folder, then a rename, permissions from the umask), so a crash never leaves a
half-written file behind.

Pillow reads 16-bit RGB PNGs as 8-bit; store 16-bit color images as TIFF or .npy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError
from ..runtime.imageio import (  # noqa: F401  (re-exported: one reader for training and devices)
    _TIFF_SUFFIXES,
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    ImageReadError,
    _load,
    mask_to_uint,
)
from ..runtime.imageio import read_image as _read_image

CHANNEL_FIRST_CHANNELS = (1, 3, 4)


def channel_first_hint(shape: tuple[int, ...]) -> str | None:
    """The fix for an image array stored channel-first, or None when ``shape`` does not look like one.

    (C, H, W) with C in (1, 3, 4) and H, W > 4 is read as channel-first: as (H, W, C) it would be
    an image of 1, 3 or 4 rows with dozens of channels.
    """
    if len(shape) == 3 and shape[0] in CHANNEL_FIRST_CHANNELS and shape[1] > 4 and shape[2] > 4:
        return (f"shape {tuple(shape)} looks channel-first (C, H, W): save as (H, W, C), "
                "e.g. np.moveaxis(image, 0, -1)")
    return None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image as ``edgeunet.runtime.imageio.read_image`` does (one reader for training and devices).

    A .npy array stored channel-first, (C, H, W), is refused with the fix (save it as (H, W, C))
    rather than described as an image of C rows.

    Returns:
        (H, W) or (H, W, C) array of uint8, uint16, int16 or float32.

    Raises:
        ImageReadError: The file is unreadable or its shape/dtype is not an image.
    """
    try:
        return _read_image(path)
    except ImageReadError:
        hint = channel_first_hint(_stored_shape(Path(path)))
        if hint:
            raise ImageReadError(Path(path), hint) from None
        raise


def _stored_shape(path: Path) -> tuple[int, ...]:
    """The array shape in a .npy header (PNG/JPEG cannot be channel-first; TIFF planar files are read as such)."""
    if path.suffix.lower() != ".npy":
        return ()
    try:
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    except (OSError, ValueError):
        return ()


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Reads a mask of integer class ids.

    Args:
        path: A .png, .tif/.tiff or .npy file. Palette ("P") and gray PNGs keep their indices;
            a mask with identical channels (e.g. a gray mask saved as RGB) is reduced to one.

    Returns:
        (H, W) int64 array of class ids (not range-checked here; see ``validate_folder``).

    Raises:
        ImageReadError: Unreadable file, differing channels, or non-integer values.
    """
    path = Path(path)
    array = _load(path, as_mask=True)
    if array.ndim == 3 and array.shape[0] == 1 and min(array.shape[1:]) > 4 and array.shape[2] != 1:
        raise ImageReadError(path, f"shape {array.shape} looks channel-first (1, H, W): save the mask as (H, W), "
                             "e.g. mask[0]")
    if array.ndim == 3:
        if not (array == array[:, :, :1]).all():
            raise ImageReadError(path, "mask channels differ: save masks as one channel of class ids (0, 1, 2, ...)")
        array = array[:, :, 0]
    if array.ndim != 2 or min(array.shape) == 0:
        raise ImageReadError(path, f"shape {array.shape} is not an (H, W) mask: save one 2D mask per file")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not (array == np.round(array)).all():
            raise ImageReadError(path, "mask has non-integer values: save class ids as integers (0, 1, 2, ...)")
    elif array.dtype.kind not in "uib":
        raise ImageReadError(path, f"unsupported mask dtype {array.dtype}: save class ids as uint8")
    return array.astype(np.int64)


def _write_array(path: Path, suffix: str, array: np.ndarray) -> None:
    """Writes ``array`` to ``path`` in the format of ``suffix`` (the temporary path has its own)."""
    if suffix == ".npy":
        with open(path, "wb") as f:
            np.save(f, array, allow_pickle=False)
    elif suffix in _TIFF_SUFFIXES:
        import tifffile

        tifffile.imwrite(path, array, photometric="rgb" if array.ndim == 3 and array.shape[2] in (3, 4) else None)
    else:
        from PIL import Image

        Image.fromarray(array).save(path, format="PNG")


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Writes an image atomically as .png, .tif/.tiff or .npy (chosen by the suffix).

    Args:
        path: Output file.
        image: (H, W) uint8/uint16 or (H, W, 2|3|4) uint8 for PNG; (H, W) or (H, W, C<=4) of any
            image dtype for TIFF/.npy.

    Returns:
        The written path.
    """
    path, image = Path(path), np.asarray(image)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".npy") + _TIFF_SUFFIXES:
        raise UserError(f"cannot write {path}: use a .png, .tif or .npy file name")
    hint = channel_first_hint(image.shape)
    if hint:
        raise UserError(f"cannot write {path}: {hint}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
        raise UserError(f"cannot write an image of shape {image.shape}: pass (H, W) or (H, W, C) with C <= 4")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if suffix == ".png":
        if not (image.dtype == np.uint8 or (image.dtype == np.uint16 and image.ndim == 2)):
            raise UserError(f"PNG holds uint8 gray/RGB/RGBA or uint16 gray, not {image.dtype} {image.shape}: "
                            "convert the image or write .tif/.npy")
    with atomic_path(path) as tmp:
        _write_array(tmp, suffix, np.ascontiguousarray(image))
    return path


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Writes a mask of class ids atomically (8-bit PNG for ids < 256, 16-bit up to 65535).

    Args:
        path: Output .png, .tif/.tiff or .npy file.
        mask: (H, W) integer array of non-negative class ids.

    Returns:
        The written path.
    """
    return write_image(path, mask_to_uint(mask))


def list_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files in ``folder`` (not recursive, hidden files skipped) with one of ``suffixes``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes)
