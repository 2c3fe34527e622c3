"""Minimal image files for the device runtime: Pillow, tifffile and numpy, nothing of the toolkit.

``read_image`` gives (H, W) or (H, W, C) arrays in their native dtype (uint8, uint16 or
float32), as the model's ``preprocess`` expects; ``write_mask`` and ``write_rgb`` write PNGs
atomically (a temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode.startswith("I;16"):
            return np.asarray(im).astype(np.uint16)
        if im.mode in ("1", "LA"):
            im = im.convert("L")
        elif im.mode in ("P", "PA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")  # alpha carries no image content
        array = np.asarray(im)
    if array.dtype == np.int32 and array.size and array.min() >= 0 and array.max() <= 65535:
        array = array.astype(np.uint16)  # 16-bit PNGs that Pillow opens in mode "I"
    return array


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    array = tifffile.imread(path)
    if array.ndim == 3 and array.shape[0] <= 4 < array.shape[2]:
        array = np.moveaxis(array, 0, -1)  # planar (C, H, W) storage -> (H, W, C)
    return array


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads one image file for segmentation.

    Args:
        path: A .png, .jpg/.jpeg, .tif/.tiff or .npy file: gray or color, 8/16-bit or float.
            Palette and RGBA images become RGB; a single channel axis is dropped.

    Returns:
        (H, W) or (H, W, C) array of uint8, uint16 or float32 (bool becomes uint8 0/255,
        other floats float32).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Unsupported suffix, unreadable file, or not a 2-D image; the message names the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"{path} is not an image file: use one of {', '.join(IMAGE_SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: check the path")
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            array = _read_tiff(path)
        else:
            array = _read_pil(path)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{path} is not a readable {suffix} image ({exc}): re-save it as PNG, TIFF or .npy") from None
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    elif array.ndim == 3 and array.shape[0] == 1:
        array = array[0]  # a one-page TIFF stack
    if array.ndim not in (2, 3) or min(array.shape[:2], default=0) == 0:
        raise ValueError(f"{path} holds an array of shape {array.shape}, not an (H, W) or (H, W, C) image: save one 2-D image per file")
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    if array.dtype.kind not in "ui":
        raise ValueError(f"{path} has dtype {array.dtype}: save images as uint8, uint16 or float32")
    return array


def _atomic_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.png", dir=path.parent)
    os.close(fd)
    try:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Writes class ids as a PNG, atomically: 8-bit for ids < 256, else 16-bit.

    The values are the raw class ids (0, 1, 2, ...), machine-readable rather than pretty;
    ``overlay`` makes a picture for people.

    Args:
        path: Output .png file.
        mask: (H, W) non-negative integer array.

    Returns:
        The written path.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype.kind not in "uib":
        raise ValueError(f"a mask must be an (H, W) integer array, got {mask.dtype} {mask.shape}: pass class ids")
    top = int(mask.max()) if mask.size else 0
    if mask.size and int(mask.min()) < 0 or top > 65535:
        raise ValueError(f"class ids must be in 0..65535 to fit a PNG, got {int(mask.min())}..{top}")
    return _atomic_png(path, mask.astype(np.uint8 if top <= 255 else np.uint16))


def write_rgb(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Writes an (H, W, 3) uint8 picture as a PNG, atomically."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 picture, got {rgb.dtype} {rgb.shape}")
    return _atomic_png(path, rgb)
