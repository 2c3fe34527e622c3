"""Volume files: NIfTI (``.nii``, ``.nii.gz``) with nibabel, TIFF stacks with tifffile, ``.npy``; the one volume
reader and writer (training, checks, export and ``edgeunet predict`` with a 3-D model).

Axis order: a ``Volume.array`` is (D, H, W) or (D, H, W, C) with D the slowest axis, i.e.
(Z, Y, X): what a TIFF stack holds and what 3-D models take as (B, C, D, H, W). nibabel's arrays
are (X, Y, Z[, C]); they are transposed on reading and back on writing, so a round trip returns
the same file array. ``Volume.affine`` is kept exactly as in the file: it maps nibabel's voxel
indices (i, j, k) = (x, y, z) = (W, H, D) to world coordinates (``affine_dhw`` is the same map
over (D, H, W) indices). ``Volume.spacing`` is the voxel size in (D, H, W) order.

TIFF stacks take their spacing from ImageJ metadata (``spacing`` for Z, the X/Y resolution tags
for X and Y) or from tifffile's own JSON description; files without either have spacing 1.
``.npy`` has no metadata (spacing 1). TIFF and ``.npy`` volumes get the affine diag(x, y, z, 1).

Writes are atomic (``edgeunet.atomic.atomic_path``). Torch-free; nibabel is imported only for NIfTI files.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..errors import MissingFileError, UserError, require
from .imageio import ImageReadError, file_suffix

FORMATS = {".nii.gz": "nii.gz", ".nii": "nii", ".tif": "tiff", ".tiff": "tiff", ".npy": "npy"}
VOLUME_SUFFIXES = tuple(FORMATS)
NIBABEL_EXTRA = "volumes"  # pip install 'edgeunet[volumes]' brings nibabel
_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.int16, np.float32)  # what the ImageJ TIFF flavour holds
_TIFF_AXES = "ZYXC"
# Spacing units as TIFF files name them -> NIfTI's names.
_NIFTI_UNITS = {"mm": "mm", "micron": "micron", "um": "micron", "\u00b5m": "micron", "\\u00B5m": "micron",
                "meter": "meter", "m": "meter"}


@dataclass(frozen=True, eq=False)
class Volume:
    """A volume and the facts needed to write a result like it.

    Attributes:
        array: (D, H, W) or (D, H, W, C) array in the file's dtype.
        affine: (4, 4) float64 voxel-to-world map over (i, j, k) = (W, H, D) indices (NIfTI's own).
        spacing: Voxel size along (D, H, W), in ``unit``.
        unit: Spacing unit as the file names it ("mm", "micron", "um", ...; "" when unknown).
        header: nibabel header (NIfTI), dict of TIFF metadata (ImageJ or tifffile), or None (.npy).
        source_format: "nii.gz", "nii", "tiff" or "npy".
        path: The file read, if any.
    """

    array: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    unit: str = ""
    header: Any = None
    source_format: str = "npy"
    path: Path | None = field(default=None)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(D, H, W)."""
        return tuple(int(n) for n in self.array.shape[:3])

    @property
    def channels(self) -> int:
        return 1 if self.array.ndim == 3 else int(self.array.shape[3])

    @property
    def affine_dhw(self) -> np.ndarray:
        """The affine over (D, H, W) array indices: ``affine`` with its first three columns reversed."""
        return self.affine[:, [2, 1, 0, 3]]


def volume_format(path: str | os.PathLike) -> str:
    """"nii.gz", "nii", "tiff" or "npy" from the file name; UserError for anything else."""
    fmt = FORMATS.get(file_suffix(path))
    if fmt is None:
        raise UserError(f"{path}: unsupported volume file type: use one of {', '.join(VOLUME_SUFFIXES)}")
    return fmt


def spacing_affine(spacing: tuple[float, float, float]) -> np.ndarray:
    """diag(x, y, z, 1) for a (D, H, W) ``spacing``: the affine of a file without one."""
    d, h, w = (float(s) for s in spacing)
    return np.diag([w, h, d, 1.0])


def _checked(path: Path, array: np.ndarray) -> np.ndarray:
    if array.ndim not in (3, 4) or 0 in array.shape:
        raise ImageReadError(path, f"shape {array.shape} is not a (D, H, W) or (D, H, W, C) volume: "
                                   "save one volume per file")
    if array.dtype.kind not in "uibf":
        raise ImageReadError(path, f"unsupported dtype {array.dtype}: save integers or floats")
    return array


def read_volume(path: str | os.PathLike) -> Volume:
    """Reads a volume file.

    Args:
        path: ``.nii``/``.nii.gz``, ``.tif``/``.tiff`` (a multi-page stack; ImageJ hyperstacks
            with Z and C axes too) or ``.npy`` holding (D, H, W) or (D, H, W, C).

    Returns:
        A ``Volume`` with (D, H, W[, C]) ``array`` (see the module docstring for the axis order).

    Raises:
        MissingFileError: No such file.
        ImageReadError: Unsupported type, unreadable or truncated file, or not a volume.
        MissingExtraError: A NIfTI file without nibabel installed.
    """
    path = Path(path)
    fmt = volume_format(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist: check the path")
    reader = {"nii.gz": _read_nifti, "nii": _read_nifti, "tiff": _read_tiff, "npy": _read_npy}[fmt]
    return reader(path, fmt)


def _read_nifti(path: Path, fmt: str) -> Volume:
    nib = require("nibabel", NIBABEL_EXTRA)
    try:
        image = nib.load(path)
        data = np.asarray(image.dataobj)
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise ImageReadError(path, f"not a readable NIfTI file ({exc}): check that the file is complete "
                                   "or save it again as .nii.gz") from None
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0]  # NIfTI vector images are (X, Y, Z, 1, C)
    if data.ndim not in (3, 4):
        raise ImageReadError(path, f"shape {data.shape} is not an (X, Y, Z) or (X, Y, Z, C) NIfTI volume: "
                                   "save one volume per file")
    array = _checked(path, np.ascontiguousarray(data.transpose(2, 1, 0, *range(3, data.ndim))))
    x, y, z = (float(s) for s in image.header.get_zooms()[:3])
    unit = image.header.get_xyzt_units()[0]
    return Volume(array, np.asarray(image.affine, np.float64), (z, y, x), "" if unit == "unknown" else unit,
                  image.header.copy(), fmt, path)


def _read_tiff(path: Path, fmt: str) -> Volume:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            array, axes = series.asarray(), series.axes
            imagej = dict(tif.imagej_metadata or {})
            shaped = dict((tif.shaped_metadata or ({},))[0])
            tags = tif.pages[0].tags
            resolution = tuple(_per_pixel(tags.get(name)) for name in ("YResolution", "XResolution"))
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError) as exc:
        raise ImageReadError(path, f"not a readable TIFF file ({exc}): check that the file is complete "
                                   "or save it again") from None
    array = _checked(path, _tiff_to_zyxc(path, array, axes))
    meta = imagej or shaped
    spacing = (float(meta.get("spacing", 1.0)), *resolution)
    header = {"imagej": bool(imagej), **{k: v for k, v in meta.items() if isinstance(v, (str, int, float))}}
    return Volume(array, spacing_affine(spacing), spacing, str(meta.get("unit", "")), header, fmt, path)


def _per_pixel(tag) -> float:
    """Voxel size from a TIFF resolution tag (pixels per unit, as a fraction); 1 when absent."""
    if tag is None:
        return 1.0
    num, den = tag.value
    return float(den) / float(num) if num and den else 1.0


def _tiff_to_zyxc(path: Path, array: np.ndarray, axes: str) -> np.ndarray:
    """A tifffile series array with ``axes`` (e.g. ZYX, ZCYX, IYX, YXS) as (Z, Y, X[, C])."""
    axes = axes.upper().replace("S", "C")
    keep = [i for i, a in enumerate(axes) if array.shape[i] > 1 or a in "ZYX"]
    array, axes = array.reshape([array.shape[i] for i in keep]), "".join(axes[i] for i in keep)
    if "Z" not in axes:
        stack = [a for a in axes if a not in "YXC"]
        if len(stack) == 1 and stack[0] in "IQ":  # an untyped page sequence: the slices
            axes = axes.replace(stack[0], "Z")
        elif not stack:
            array, axes = array[None], "Z" + axes  # one page: a volume of one slice
    extra = [a for a in axes if a not in _TIFF_AXES]
    if extra or len(set(axes)) != len(axes) or not {"Y", "X"} <= set(axes):
        raise ImageReadError(path, f"TIFF axes {axes} (shape {array.shape}) are not a Z stack: save one volume "
                                   "per file, with Z (slices), Y, X and at most one channel axis")
    return np.ascontiguousarray(np.transpose(array, [axes.index(a) for a in _TIFF_AXES if a in axes]))


def _read_npy(path: Path, fmt: str) -> Volume:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ImageReadError(path, f"not a readable .npy file ({exc}): save the array with numpy.save") from None
    return Volume(_checked(path, np.asarray(array)), spacing_affine((1.0, 1.0, 1.0)), source_format=fmt, path=path)


def write_volume(path: str | os.PathLike, array: np.ndarray, like: Volume | None = None) -> Path:
    """Writes a (D, H, W) or (D, H, W, C) array atomically, in the format the file name says.

    Args:
        path: Output file (``.nii.gz``, ``.nii``, ``.tif``/``.tiff`` or ``.npy``); name it like
            the input (same suffix) to write a mask in the input's format.
        array: The volume or mask; masks should be uint8 (uint16 past 255 classes); bool is
            written as uint8.
        like: The volume read (``read_volume``) whose affine, header and spacing the output
            carries: a NIfTI header is kept whole (dtype and scaling set for ``array``).

    Returns:
        ``path``.
    """
    path, array = Path(path), np.asarray(array)
    fmt = volume_format(path)
    if array.ndim not in (3, 4) or 0 in array.shape:
        raise UserError(f"cannot write {path}: shape {array.shape} is not a (D, H, W) or (D, H, W, C) volume")
    if like is not None and like.shape != array.shape[:3]:
        raise UserError(f"cannot write {path}: shape {array.shape[:3]} differs from the input's {like.shape}: "
                        "write the mask of that volume, at its size")
    array = array.astype(np.uint8) if array.dtype == bool else array
    writer = {"nii.gz": _write_nifti, "nii": _write_nifti, "tiff": _write_tiff, "npy": _write_npy}[fmt]
    with atomic_path(path, suffix=f".{fmt}") as tmp:  # nibabel picks the format from the suffix
        writer(tmp, array, like, fmt)
    return path


def _write_npy(tmp: Path, array: np.ndarray, like: Volume | None, fmt: str) -> None:
    with open(tmp, "wb") as f:  # a file object: np.save would append .npy to the temporary name
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def _write_nifti(tmp: Path, array: np.ndarray, like: Volume | None, fmt: str) -> None:
    nib = require("nibabel", NIBABEL_EXTRA)
    header = like.header.copy() if like is not None and like.source_format in ("nii", "nii.gz") else None
    affine = like.affine if like is not None else spacing_affine((1.0, 1.0, 1.0))
    kind = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    image = kind(array.transpose(2, 1, 0, *range(3, array.ndim)), affine, header)
    image.header.set_data_dtype(array.dtype)
    image.header.set_slope_inter(1.0, 0.0)  # the values as given: a mask is never rescaled
    if header is None:
        d, h, w = like.spacing if like is not None else (1.0, 1.0, 1.0)
        image.header.set_zooms((w, h, d, *image.header.get_zooms()[3:]))
        image.header.set_xyzt_units(_NIFTI_UNITS.get(like.unit if like is not None else "", "unknown"))
    if like is not None and array.dtype != like.array.dtype:
        image.header["cal_min"], image.header["cal_max"] = 0.0, 0.0  # the input's display range is not a mask's
    nib.save(image, tmp)  # ``write_volume`` names the temporary file with the format's suffix


def _write_tiff(tmp: Path, array: np.ndarray, like: Volume | None, fmt: str) -> None:
    import tifffile

    d, h, w = like.spacing if like is not None else (1.0, 1.0, 1.0)
    unit = like.unit if like is not None else ""
    data, axes = (array, "ZYX") if array.ndim == 3 else (np.moveaxis(array, 3, 1), "ZCYX")
    metadata = {"axes": axes, "spacing": float(d), **({"unit": unit} if unit else {})}
    imagej = array.dtype.type in _IMAGEJ_DTYPES and (like is None or like.source_format != "tiff"
                                                     or like.header.get("imagej", True))
    tifffile.imwrite(tmp, np.ascontiguousarray(data), imagej=imagej, resolution=(1.0 / w, 1.0 / h),
                     metadata=metadata, photometric="minisblack")
