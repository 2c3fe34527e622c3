"""Reading and writing images and masks: Pillow for PNG/JPEG, tifffile for TIFF, numpy for .npy.

Images come back in their native dtype (uint8, uint16 or float32) as (H, W) or (H, W, C);
masks come back as (H, W) int64 class ids. Writes are atomic: a temporary file in the same
folder, then ``os.replace``, so a crash never leaves a half-written file behind.

Pillow reads 16-bit RGB PNGs as 8-bit; store 16-bit color images as TIFF or .npy.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
_PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
_TIFF_SUFFIXES = (".tif", ".tiff")


class ImageReadError(ValueError):
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
        raise FileNotFoundError(f"{path} does not exist: check the path")
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
        (H, W) or (H, W, C) array of uint8, uint16 or float32 (other dtypes are converted:
        bool -> uint8, float64 -> float32, small integers -> uint8/uint16).

    Raises:
        ImageReadError: The file is unreadable or its shape/dtype is not an image.
        FileNotFoundError: The file does not exist.
    """
    path = Path(path)
    array = _load(path, as_mask=False)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] > 4) or min(array.shape[:2], default=0) == 0:
        raise ImageReadError(path, f"shape {array.shape} is not an (H, W) or (H, W, C<=4) image: save one 2D image per file")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "f":
        array = array.astype(np.float32, copy=False)
    elif array.dtype.kind in "ui" and array.dtype not in (np.uint8, np.uint16):
        lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise ImageReadError(path, f"{array.dtype} values {lo}..{hi} do not fit uint16: save as float32 or rescale")
        array = array.astype(np.uint8 if hi <= 255 else np.uint16)
    elif array.dtype.kind not in "ui":
        raise ImageReadError(path, f"unsupported dtype {array.dtype}: save as uint8, uint16 or float32")
    return array


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


def _atomic_write(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_array(path: Path, array: np.ndarray) -> None:
    suffix = path.suffix.lower()
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
        raise ValueError(f"cannot write {path}: use a .png, .tif or .npy file name")
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
        raise ValueError(f"cannot write an image of shape {image.shape}: pass (H, W) or (H, W, C) with C <= 4")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if suffix == ".png":
        if not (image.dtype == np.uint8 or (image.dtype == np.uint16 and image.ndim == 2)):
            raise ValueError(f"PNG holds uint8 gray/RGB/RGBA or uint16 gray, not {image.dtype} {image.shape}: "
                             "convert the image or write .tif/.npy")
    return _atomic_write(path, lambda tmp: _write_array(tmp, np.ascontiguousarray(image)))


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Writes a mask of class ids atomically (8-bit PNG for ids < 256, 16-bit PNG up to 65535).

    Args:
        path: Output .png, .tif/.tiff or .npy file.
        mask: (H, W) integer array of non-negative class ids.

    Returns:
        The written path.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype.kind not in "uib":
        raise ValueError(f"a mask must be an (H, W) integer array, got {mask.dtype} {mask.shape}: pass class ids")
    top = int(mask.max()) if mask.size else 0
    if mask.size and int(mask.min()) < 0:
        raise ValueError("a mask cannot hold negative class ids: use 0..num_classes-1")
    if top > 65535:
        raise ValueError(f"class id {top} does not fit a 16-bit mask: use fewer than 65536 classes")
    return write_image(path, mask.astype(np.uint8 if top <= 255 else np.uint16))


def list_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files in ``folder`` (not recursive, hidden files skipped) with one of ``suffixes``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes)
