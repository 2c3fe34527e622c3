"""The one preprocessing function of edgeunet: training, calibration and device inference call it.

It needs only numpy, so the torch-free runtime shares it with the toolkit. A preprocessing
spec is a small JSON-able dict stored in checkpoints and in ONNX metadata:

* ``{"mode": "percentile", "low": 1.0, "high": 99.8}`` (default): per image and channel,
  the low and high percentiles map to 0 and 1 (the usual normalization for fluorescence
  microscopy, robust to 8/12/16-bit data and to uneven exposure).
* ``{"mode": "scale", "mean": [...], "std": [...]}``: divide by the dtype's maximum (255 for
  uint8, 65535 for uint16, 1 for float) then subtract mean and divide by std per channel.

Volumes ((D, H, W) or (D, H, W, C), ``spatial_dims=3``) are normalized the same way per volume and
channel: the percentiles are those of the whole volume. ``volume_normalizer`` computes them once and
then normalizes any planes on demand, so a large volume never needs a float32 copy of itself
(the runtime streams slabs through it); ``preprocess`` applies it to the whole volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError

DEFAULT_PREPROCESSING = {"mode": "percentile", "low": 1.0, "high": 99.8}


def image_channels(image: np.ndarray) -> int:
    """Number of channels of an (H, W) or (H, W, C) image."""
    return 1 if image.ndim == 2 else int(image.shape[2])


def _check_array(array: np.ndarray, noun: str, layouts: str, ndims: tuple[int, int], in_channels: int,
                 channel_fix: str, ndim_fixes: dict[int, str]) -> None:
    """The checks of every model input, image or volume, in one order: an array, not empty, of a layout in
    ``layouts`` (``ndims``: without and with a channel axis, last), of a number dtype, with ``in_channels``
    channels and finite values. ``ndim_fixes``: dimension count -> message (``{shape}`` stands for the shape)
    for a wrong count that has a fix of its own."""
    if not isinstance(array, np.ndarray):
        raise UserError(f"expected a numpy array, got {type(array).__name__}: convert with np.asarray({noun})")
    if array.size == 0:
        raise UserError(f"the {noun} is empty (shape {array.shape}): pass {layouts} array")
    if array.ndim in ndim_fixes:
        raise UserError(ndim_fixes[array.ndim].format(shape=array.shape))
    if array.ndim not in ndims:
        raise UserError(f"expected {layouts} {noun}, got shape {array.shape}")
    if array.dtype.kind not in "uif" and array.dtype != bool:
        raise UserError(f"unsupported {noun} dtype {array.dtype}: use uint8, uint16 or float")
    channels = 1 if array.ndim == ndims[0] else int(array.shape[-1])
    if channels != in_channels:
        raise UserError(f"the {noun} has {channels} channel(s) but the model takes {in_channels}: {channel_fix}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise UserError(f"the {noun} contains NaN or infinite values: replace them (e.g. np.nan_to_num) first")


def check_image(image: np.ndarray, in_channels: int) -> None:
    """Raises UserError, naming the fix, when ``image`` cannot be fed to a model."""
    fix = "convert it to grayscale" if in_channels == 1 else f"give it {in_channels} channels"
    _check_array(image, "image", "an (H, W) or (H, W, C)", (2, 3), in_channels, fix, {})


def volume_channels(volume: np.ndarray) -> int:
    """Number of channels of a (D, H, W) or (D, H, W, C) volume."""
    return 1 if volume.ndim == 3 else int(volume.shape[3])


def check_volume(volume: np.ndarray, in_channels: int) -> None:
    """Raises UserError, naming the fix, when ``volume`` cannot be fed to a 3-D model."""
    fix = f"give a (D, H, W{', C' if in_channels > 1 else ''}) array with {in_channels} channel(s)"
    flat = ("this is a 3-D model and got a 2-D image of shape {shape}: give it a (D, H, W) volume (.nii.gz, "
            "TIFF stack, .npy), or segment 2-D images with a 2-D model")
    _check_array(volume, "volume", "a (D, H, W) or (D, H, W, C)", (3, 4), in_channels, fix, {2: flat})


@dataclass(frozen=True)
class VolumeNormalizer:
    """Normalizes planes of one volume with per-volume, per-channel statistics (see ``volume_normalizer``).

    Attributes:
        volume: The raw (D, H, W) or (D, H, W, C) volume (not copied).
        offset: (C,) float32 subtracted after scaling.
        divisor: (C,) float32 the result is divided by.
        scale: 1 / dtype maximum for ``scale`` mode, 1 for ``percentile``.
    """

    volume: np.ndarray
    offset: np.ndarray
    divisor: np.ndarray
    scale: float = 1.0

    @property
    def shape(self) -> tuple[int, ...]:
        """(C, D, H, W) of the normalized volume."""
        d, h, w = self.volume.shape[:3]
        return (volume_channels(self.volume), d, h, w)

    def planes(self, index) -> np.ndarray:
        """(C, n, H, W) float32 of the planes ``index`` (an int array or a slice) along D."""
        x = self.volume[index]
        x = x[..., None] if self.volume.ndim == 3 else x
        x = x.astype(np.float32)
        if self.scale != 1.0:
            x *= np.float32(self.scale)
        x -= self.offset
        x /= self.divisor
        return np.ascontiguousarray(np.moveaxis(x, -1, 0))


def volume_normalizer(volume: np.ndarray, spec: dict | None = None, in_channels: int | None = None) -> VolumeNormalizer:
    """The statistics of a (D, H, W[, C]) volume under ``spec``, computed once, for ``VolumeNormalizer.planes``.

    Percentiles are taken per channel over the whole volume from its raw values (no float copy).
    """
    spec = spec or DEFAULT_PREPROCESSING
    if in_channels is not None:
        check_volume(volume, in_channels)
    mode = spec.get("mode", "percentile")
    channels = volume_channels(volume)
    if mode == "percentile":
        q = [spec.get("low", 1.0), spec.get("high", 99.8)]
        if channels == 1 and volume.ndim == 3:
            lo, hi = (np.array([v]) for v in np.percentile(volume, q))
        else:
            lo, hi = np.stack([np.percentile(volume[..., c], q) for c in range(channels)], axis=1)
        return VolumeNormalizer(volume, lo.astype(np.float32), np.maximum(hi - lo, 1e-6).astype(np.float32))
    if mode == "scale":
        mean = np.broadcast_to(np.asarray(spec.get("mean", [0.0]), np.float32), (channels,)).copy()
        std = np.broadcast_to(np.asarray(spec.get("std", [1.0]), np.float32), (channels,)).copy()
        return VolumeNormalizer(volume, mean, std, 1.0 / dtype_max(volume.dtype))
    raise UserError(f"unknown preprocessing mode {mode!r}: use 'percentile' or 'scale'")


def dtype_max(dtype: np.dtype) -> float:
    """The value that maps to 1.0 when scaling: 255 (uint8), 65535 (uint16), 1 (float)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return float(np.iinfo(dtype).max)
    return 1.0


def preprocess(image: np.ndarray, spec: dict | None = None, in_channels: int | None = None,
               spatial_dims: int = 2) -> np.ndarray:
    """Turns an image (or a volume) into the model's input.

    Args:
        image: (H, W) or (H, W, C) array of uint8, uint16 or float; with ``spatial_dims=3`` a
            (D, H, W) or (D, H, W, C) volume.
        spec: Preprocessing spec (see module docstring); None means DEFAULT_PREPROCESSING.
        in_channels: When given, the channel count is checked against it.
        spatial_dims: 2 (images) or 3 (volumes: statistics per volume and channel).

    Returns:
        (C, H, W) float32 array, or (C, D, H, W) for volumes.
    """
    if spatial_dims == 3:
        return volume_normalizer(image, spec, in_channels).planes(slice(None))
    spec = spec or DEFAULT_PREPROCESSING
    if in_channels is not None:
        check_image(image, in_channels)
    x = image if image.ndim == 3 else image[:, :, None]
    mode = spec.get("mode", "percentile")
    if mode == "percentile":
        x = x.astype(np.float32, copy=False)
        flat = x.reshape(-1, x.shape[2])
        lo, hi = np.percentile(flat, [spec.get("low", 1.0), spec.get("high", 99.8)], axis=0)
        span = np.maximum(hi - lo, 1e-6)
        x = (x - lo.astype(np.float32)) / span.astype(np.float32)
    elif mode == "scale":
        x = x.astype(np.float32) / dtype_max(image.dtype)
        mean = np.asarray(spec.get("mean", [0.0]), dtype=np.float32)
        std = np.asarray(spec.get("std", [1.0]), dtype=np.float32)
        x = (x - mean) / std
    else:
        raise UserError(f"unknown preprocessing mode {mode!r}: use 'percentile' or 'scale'")
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
