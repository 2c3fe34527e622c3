"""Image files, read the same way in training and on the device: Pillow for PNG/JPEG, tifffile
for TIFF, numpy for .npy; nothing of the toolkit but the atomic writer, so the torch-free runtime owns it and
``edgeunet.data.io`` builds on it.

``read_image`` gives (H, W) or (H, W, C) arrays in their native dtype (uint8, uint16, int16 or
float32), as the model's ``preprocess`` expects; ``write_mask`` and ``write_rgb`` write PNGs
atomically with ``edgeunet.atomic.atomic_path`` (permissions from the umask). Pillow reads 16-bit RGB
PNGs as 8-bit; store 16-bit color images as TIFF or .npy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import MissingFileError, UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
_TIFF_SUFFIXES = (".tif", ".tiff")


class ImageReadError(UserError):
    """A file could not be read as an image or mask; ``reason`` is the message without the path."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"cannot read {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def _load_pil(path: Path, as_mask: bool) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        mode = im.mode
        if mode == "P" and not as_mask:
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode == "1":
            im = im.convert("L")  # 0/255 for images; masks map it to 0/1 below
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
        elif mode.startswith("I;16"):
            return np.asarray(im).astype(np.uint16)
        array = np.asarray(im)
    if mode == "1" and as_mask:
        array = (array > 0).astype(np.uint8)
    if array.dtype == np.int32 and array.size and array.min() >= 0 and array.max() <= 65535:
        array = array.astype(np.uint16)  # 16-bit PNGs that Pillow opens in mode "I"
    if as_mask and mode in ("LA", "RGBA", "PA"):
        array = array[..., :-1]  # the alpha channel carries no class ids
        if mode == "PA":
            array = array[..., 0]
    return array


def _load_tiff(path: Path) -> np.ndarray:
    import tifffile

    array = tifffile.imread(path)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[0] <= 4 < array.shape[2]:
        array = np.moveaxis(array, 0, -1)  # planar (C, H, W) storage -> (H, W, C)
    return array


def _load(path: Path, as_mask: bool) -> np.ndarray:
    suffix = path.suffix.lower()
    allowed = MASK_SUFFIXES if as_mask else IMAGE_SUFFIXES
    if suffix not in allowed:
        raise ImageReadError(path, f"unsupported file type {suffix!r}: use one of {', '.join(allowed)}")
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist: check the path")
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix in _TIFF_SUFFIXES:
            array = _load_tiff(path)
        else:
            array = _load_pil(path, as_mask)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(path, f"not a valid {suffix} file ({exc})") from exc
    return np.asarray(array)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file.

    Args:
        path: A .png, .jpg/.jpeg, .tif/.tiff or .npy file; gray or color, 8 or 16 bit, or float.
            Palette images become RGB; an alpha channel is kept (RGBA is 4 channels).

    Returns:
        (H, W) or (H, W, C) array of uint8, uint16, int16 (signed data such as CT slices in Hounsfield
        units) or float32 (other dtypes are converted: bool -> uint8, float64 -> float32, small
        non-negative integers -> uint8/uint16, negative ones -> int16).

    Raises:
        ImageReadError: The file is unreadable or its shape/dtype is not an image.
        FileNotFoundError: The file does not exist.
    """
    path = Path(path)
    array = _load(path, as_mask=False)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] > 4) or min(array.shape[:2], default=0) == 0:
        raise ImageReadError(path, f"shape {array.shape} is not an (H, W) or (H, W, C<=4) image: "
                                   "save one 2D image per file")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "f":
        array = array.astype(np.float32, copy=False)
    elif array.dtype.kind in "ui" and array.dtype not in (np.uint8, np.uint16):
        lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if lo < 0:  # signed data, e.g. CT in Hounsfield units: its sign is what ``--normalize auto`` reads
            if lo < -32768 or hi > 32767:
                raise ImageReadError(path, f"{array.dtype} values {lo}..{hi} do not fit int16: save as float32 or "
                                           "rescale")
            return array.astype(np.int16, copy=False)
        if hi > 65535:
            raise ImageReadError(path, f"{array.dtype} values {lo}..{hi} do not fit uint16: save as float32 or rescale")
        array = array.astype(np.uint8 if hi <= 255 else np.uint16)
    elif array.dtype.kind not in "ui":
        raise ImageReadError(path, f"unsupported dtype {array.dtype}: save as uint8, uint16 or float32")
    return array


def _atomic_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
    return Path(path)


def mask_to_uint(mask: np.ndarray) -> np.ndarray:
    """Checks an (H, W) array of class ids and gives it the smallest fitting dtype (uint8 or uint16)."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype.kind not in "uib":
        raise UserError(f"a mask must be an (H, W) integer array, got {mask.dtype} {mask.shape}: pass class ids")
    if mask.size and int(mask.min()) < 0:
        raise UserError("a mask cannot hold negative class ids: use 0..num_classes-1")
    top = int(mask.max()) if mask.size else 0
    if top > 65535:
        raise UserError(f"class id {top} does not fit a 16-bit mask: use fewer than 65536 classes")
    return mask.astype(np.uint8 if top <= 255 else np.uint16)


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
    return _atomic_png(path, mask_to_uint(mask))


def write_rgb(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Writes an (H, W, 3) uint8 picture as a PNG, atomically."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise UserError(f"expected an (H, W, 3) uint8 picture, got {rgb.dtype} {rgb.shape}")
    return _atomic_png(path, rgb)
