"""The torch part of ``augment``: the rotated/scaled crop (and its matrix), Gaussian blur, simulated low resolution.

Each works on 2-D and 3-D arrays alike (``grid_sample``, shifted sums along each axis, ``interpolate``)
and returns numpy arrays; ``augment`` imports this module only when a policy needs it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def spatial_matrix(angles: tuple[float, ...], scale: float = 1.0) -> np.ndarray:
    """(dims, dims) map from an output pixel's offset to its source offset, both in (D,) H, W order.

    Args:
        angles: Degrees; 2-D: (a,), turning (H, W) as ``np.rot90(axes=(H, W))`` does at 90; 3-D: about the D, H
            and W axes, turning (H, W), (D, W) and (D, H) in that sense.
        scale: Magnification (2: the centre shown twice as large).
    """
    dims = 2 if len(angles) == 1 else 3
    planes = [(0, 1)] if dims == 2 else [(1, 2), (0, 2), (0, 1)]
    matrix = np.eye(dims)
    for angle, (a, b) in zip(angles, planes):
        turn, (cos, sin) = np.eye(dims), (math.cos(math.radians(angle)), math.sin(math.radians(angle)))
        turn[a, a], turn[a, b], turn[b, a], turn[b, b] = cos, sin, -sin, cos
        matrix = matrix @ turn
    return matrix / scale


def _reflect(points: torch.Tensor, n: int) -> torch.Tensor:
    """Pixel coordinates folded into [0, n - 1] by reflection about the edge pixels (numpy's "reflect")."""
    if n == 1:
        return torch.zeros_like(points)
    period = 2 * (n - 1)
    points = points.abs().remainder(period)
    return torch.where(points > n - 1, period - points, points)


def resample_crop(x: np.ndarray, mask: np.ndarray, centre, size: tuple[int, ...],
                  matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Samples a crop of ``size`` around ``centre`` through ``matrix`` from the full image and mask.

    Output pixel ``o`` shows source point ``centre + matrix @ (o - (size - 1) / 2)`` (pixel coordinates,
    (D,) H, W order); points past an edge are reflected about the edge pixel (numpy's "reflect", as the
    unrotated crop pads). Only the box of source pixels the crop reads is resampled, so the cost does not
    grow with the image.

    Args:
        x: (C, *shape) float32 full image or volume.
        mask: (*shape) integer labels (ids below 2**24, exact in float32).
        centre: Source point of the crop's centre, in pixels.
        size: (*size) of the crop.
        matrix: (dims, dims) output offset -> source offset (``spatial_matrix``).

    Returns:
        (C, *size) float32 image (linear interpolation) and (*size) mask of ``mask``'s dtype (nearest: only
        source labels).
    """
    dims = len(size)
    offsets = [(torch.arange(n, dtype=torch.float32) - (n - 1) / 2).view([-1 if i == a else 1 for i in range(dims)])
               for a, n in enumerate(size)]
    grid, box = torch.empty((1, *size, dims)), []
    for j in range(dims):  # source coordinate j of every output pixel, folded into the image
        points = _reflect(sum(float(matrix[j, i]) * offsets[i] for i in range(dims)) + float(centre[j]), mask.shape[j])
        low, high = math.floor(points.min()), math.ceil(points.max())
        box.append(slice(low, high + 1))
        # align_corners=True: -1 and 1 are the centres of the box's edge pixels; grid_sample wants (W, H, D) order
        grid[..., dims - 1 - j] = 2 * (points - low) / max(high - low, 1) - 1
    image = torch.from_numpy(np.ascontiguousarray(x[(slice(None), *box)], dtype=np.float32))[None]
    labels = torch.from_numpy(mask[tuple(box)].astype(np.float32))[None, None]
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
    out_mask = F.grid_sample(labels, grid, mode="nearest", padding_mode="border", align_corners=True)[0, 0]
    return out.numpy(), out_mask.numpy().astype(mask.dtype)


def gaussian_blur(channel: np.ndarray, sigmas) -> np.ndarray:
    """(*spatial) float32 ``channel`` blurred by a Gaussian of ``sigmas`` (pixels, one per axis).

    Separable: a 1-D kernel reaching 3 sigma along each axis in turn, as a weighted sum of shifted copies
    (faster on CPU than a convolution with one channel); edges reflected like numpy's "reflect".
    """
    t = torch.from_numpy(np.ascontiguousarray(channel, dtype=np.float32))
    for axis, sigma in enumerate(sigmas):
        radius, n = max(1, math.ceil(3 * float(sigma))), t.shape[axis]
        weights = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / float(sigma)) ** 2)
        weights /= weights.sum()
        padded = t.index_select(axis, _reflect(torch.arange(-radius, n + radius), n))
        blurred = weights[0] * padded.narrow(axis, 0, n)
        for shift in range(1, 2 * radius + 1):
            blurred += weights[shift] * padded.narrow(axis, shift, n)
        t = blurred
    return t.numpy()


def low_resolution(channel: np.ndarray, zoom: float) -> np.ndarray:
    """(*spatial) float32 ``channel`` down-sampled by ``zoom`` (nearest) and up-sampled back (linear)."""
    t = torch.from_numpy(np.ascontiguousarray(channel, dtype=np.float32))[None, None]
    small = [max(1, round(n * zoom)) for n in channel.shape]
    mode = "bilinear" if channel.ndim == 2 else "trilinear"
    down = F.interpolate(t, size=small, mode="nearest-exact")
    return F.interpolate(down, size=channel.shape, mode=mode, align_corners=False)[0, 0].numpy()
