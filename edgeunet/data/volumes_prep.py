"""Preprocessing of volumes: the one ``edgeunet.runtime.preprocess.preprocess``, applied per volume.

Statistics (percentiles, or mean and std) are taken per channel over every voxel of the volume,
the spec's own numbers (``ct``, ``scale``) are applied as they are; the result is (C, D, H, W).
Training, validation, calibration and device inference of 3-D models all normalise through
``edgeunet.runtime.preprocess.volume_normalizer``, so they normalise alike. Numpy only.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..runtime.preprocess import preprocess


def preprocess_volume(volume: np.ndarray, spec: dict | None = None, in_channels: int | None = None) -> np.ndarray:
    """Turns a volume into a 3-D model's input with the shared preprocessing.

    Args:
        volume: (D, H, W) or (D, H, W, C) array of uint8, uint16, int16 or float.
        spec: Preprocessing spec (see ``edgeunet.runtime.preprocess``); None means the default.
        in_channels: When given, the channel count is checked against it.

    Returns:
        (C, D, H, W) float32 array.

    Raises:
        UserError: Not a volume, wrong channel count, NaN/Inf voxels, an unsupported dtype or a bad spec.
    """
    if not isinstance(volume, np.ndarray) or volume.ndim not in (3, 4) or volume.size == 0:
        shape = getattr(volume, "shape", None)
        raise UserError(f"expected a (D, H, W) or (D, H, W, C) volume, got shape {shape}")
    return preprocess(volume, spec, in_channels, spatial_dims=3)
