"""Image and mask files, read and written the same way in training and on the device: Pillow for PNG/JPEG,
tifffile for TIFF, numpy for .npy. The one reader and writer of images; ``edgeunet.data`` imports it from here.

``read_image`` gives (H, W) or (H, W, C) arrays in their native dtype (uint8, uint16, int16 or
float32), as the model's ``preprocess`` expects; ``read_mask`` gives (H, W) int64 class ids. Writes
(``write_image``, ``write_mask``, ``write_rgb``) are atomic (``edgeunet.atomic.atomic_path``: a
temporary file in the same folder, then a rename; permissions from the umask). Pillow reads 16-bit
RGB PNGs as 8-bit; store 16-bit color images as TIFF or .npy.
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
CHANNEL_FIRST_CHANNELS = (1, 3, 4)


def file_suffix(path: str | os.PathLike) -> str:
    """The lower-case suffix of ``path``, ``.nii.gz`` counted as one."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def file_stem(path: str | os.PathLike) -> str:
    """``path``'s name without its suffix (``scan.nii.gz`` -> ``scan``)."""
    name = Path(path).name
    return name[: len(name) - len(file_suffix(path))]


def list_files(folder: str | os.PathLike, suffixes: tuple[str, ...]) -> list[Path]:
    """Files in ``folder`` (not recursive, hidden files skipped) with one of ``suffixes`` (``file_suffix``), by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and file_suffix(p) in suffixes)


def channel_first_hint(shape: tuple[int, ...]) -> str | None:
    """The fix for an image array stored channel-first, or None when ``shape`` does not look like one.

    (C, H, W) with C in (1, 3, 4) and H, W > 4 is read as channel-first: as (H, W, C) it would be
    an image of 1, 3 or 4 rows with dozens of channels.
    """
    if len(shape) == 3 and shape[0] in CHANNEL_FIRST_CHANNELS and shape[1] > 4 and shape[2] > 4:
        return (f"shape {tuple(shape)} looks channel-first (C, H, W): save as (H, W, C), "
                "e.g. np.moveaxis(image, 0, -1)")
    return None


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
            Palette images become RGB; an alpha channel is kept (RGBA is 4 channels). A .npy array
            stored channel-first, (C, H, W), is refused with the fix (save it as (H, W, C)).

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
        raise ImageReadError(path, channel_first_hint(array.shape) or f"shape {array.shape} is not an (H, W) or "
                                   "(H, W, C<=4) image: save one 2D image per file")
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

    The values are the raw class ids (0, 1, 2, ...), machine-readable rather than pretty;
    ``runtime.predict.overlay`` makes a picture for people.

    Args:
        path: Output .png, .tif/.tiff or .npy file.
        mask: (H, W) integer array of non-negative class ids.

    Returns:
        The written path.
    """
    return write_image(path, mask_to_uint(mask))


def write_rgb(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Writes an (H, W, 3) uint8 picture as a PNG, atomically."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise UserError(f"expected an (H, W, 3) uint8 picture, got {rgb.dtype} {rgb.shape}")
    return write_image(path, rgb)
