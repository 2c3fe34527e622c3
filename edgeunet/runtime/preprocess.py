"""The one preprocessing function of edgeunet: training, calibration and device inference call it.

It needs only numpy, so the torch-free runtime shares it with the toolkit. A preprocessing
spec is a small JSON-able dict stored in checkpoints and in ONNX metadata:

* ``{"mode": "percentile", "low": 1.0, "high": 99.8}`` (default): per image and channel,
  the low and high percentiles map to 0 and 1 (the usual normalization for fluorescence
  microscopy, robust to 8/12/16-bit data and to uneven exposure).
* ``{"mode": "scale", "mean": [...], "std": [...]}``: divide by the dtype's maximum (255 for
  uint8, 65535 for uint16, 1 for float) then subtract mean and divide by std per channel.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

DEFAULT_PREPROCESSING = {"mode": "percentile", "low": 1.0, "high": 99.8}


def image_channels(image: np.ndarray) -> int:
    """Number of channels of an (H, W) or (H, W, C) image."""
    return 1 if image.ndim == 2 else int(image.shape[2])


def check_image(image: np.ndarray, in_channels: int) -> None:
    """Raises ValueError, naming the fix, when ``image`` cannot be fed to a model."""
    if not isinstance(image, np.ndarray):
        raise UserError(f"expected a numpy array, got {type(image).__name__}: convert with np.asarray(image)")
    if image.size == 0:
        raise UserError(f"the image is empty (shape {image.shape}): pass an (H, W) or (H, W, C) array")
    if image.ndim not in (2, 3):
        raise UserError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    if image.dtype.kind not in "uif" and image.dtype != bool:
        raise UserError(f"unsupported image dtype {image.dtype}: use uint8, uint16 or float")
    channels = image_channels(image)
    if channels != in_channels:
        hint = "convert it to grayscale" if in_channels == 1 else f"give it {in_channels} channels"
        raise UserError(f"the image has {channels} channel(s) but the model takes {in_channels}: {hint}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise UserError("the image contains NaN or infinite values: replace them (e.g. np.nan_to_num) first")


def dtype_max(dtype: np.dtype) -> float:
    """The value that maps to 1.0 when scaling: 255 (uint8), 65535 (uint16), 1 (float)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return float(np.iinfo(dtype).max)
    return 1.0


def preprocess(image: np.ndarray, spec: dict | None = None, in_channels: int | None = None) -> np.ndarray:
    """Turns an image into the model's input.

    Args:
        image: (H, W) or (H, W, C) array of uint8, uint16 or float.
        spec: Preprocessing spec (see module docstring); None means DEFAULT_PREPROCESSING.
        in_channels: When given, the channel count is checked against it.

    Returns:
        (C, H, W) float32 array.
    """
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
