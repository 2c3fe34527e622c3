"""Preprocessing of volumes: the one ``edgeunet.runtime.preprocess.preprocess``, applied per volume.

``preprocess`` takes (H, W[, C]) images; a (D, H, W[, C]) volume is viewed as one (D*H, W[, C])
image, so percentiles (or the dtype scale) are taken over every voxel of a channel, and the
(C, D*H, W) result is reshaped to (C, D, H, W). Training, validation, calibration and device
inference of 3-D models all call ``preprocess_volume``, so they normalise alike. Numpy only.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..runtime.preprocess import preprocess


def volume_channels(volume: np.ndarray) -> int:
    """Channels of a (D, H, W) or (D, H, W, C) volume."""
    return 1 if volume.ndim == 3 else int(volume.shape[3])


def preprocess_volume(volume: np.ndarray, spec: dict | None = None, in_channels: int | None = None) -> np.ndarray:
    """Turns a volume into a 3-D model's input with the shared preprocessing.

    Args:
        volume: (D, H, W) or (D, H, W, C) array of uint8, uint16 or float.
        spec: Preprocessing spec (see ``edgeunet.runtime.preprocess``); None means the default.
        in_channels: When given, the channel count is checked against it.

    Returns:
        (C, D, H, W) float32 array.

    Raises:
        UserError: Not a volume, wrong channel count, NaN/Inf voxels or an unsupported dtype.
    """
    if not isinstance(volume, np.ndarray) or volume.ndim not in (3, 4) or volume.size == 0:
        shape = getattr(volume, "shape", None)
        raise UserError(f"expected a (D, H, W) or (D, H, W, C) volume, got shape {shape}")
    d, h, w = volume.shape[:3]
    flat = volume.reshape(d * h, w, *volume.shape[3:])
    x = preprocess(flat, spec, in_channels)  # (C, D*H, W)
    return x.reshape(x.shape[0], d, h, w)
