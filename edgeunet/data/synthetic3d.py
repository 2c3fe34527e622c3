"""Built-in synthetic volumes: a confocal-like stack of nuclei with exact 3-D masks.

The 3-D sibling of ``edgeunet.data.synthetic`` (same classes, same look): nothing is downloaded
and each volume is drawn from ``numpy.random.default_rng([seed, index])``, so the same
(seed, index, size) gives the same volume on any machine. A volume has:

* nuclei: filled ellipsoids of varied size, elongation, 3-D orientation and brightness, with a
  soft edge and smooth texture; some touch or overlap a neighbour (the one drawn last is on
  top, in the volume and in the mask alike);
* debris: small bright specks that are not nuclei (class 0, never inside a nucleus);
* optics and camera: a gaussian blur that is wider along Z (the axial point-spread function),
  uneven illumination (a lateral tilt and spot) that fades with depth, a camera offset and
  Poisson-Gaussian noise; values are uint16 in a 12-bit range (0..4095).

Arrays are (D, H, W) = (Z, Y, X) with isotropic voxels. Classes as in 2-D: 0 background,
1 nucleus; with ``num_classes=3`` also 2 "elongated", with 4 also 3 "mitotic".
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir
from ..errors import UserError
from .synthetic import MAX_VALUE, synthetic_class_names
from .volumes import FORMATS, write_volume

MIN_SIDE = 8
# Per class: semi-axis range (voxels) of the longest axis, ratio range of the two others, brightness range.
_SHAPES = {
    1: ((5.0, 10.0), (0.65, 1.0), (0.45, 1.0)),
    2: ((8.0, 14.0), (0.3, 0.45), (0.45, 1.0)),
    3: ((3.5, 5.0), (0.85, 1.0), (1.6, 2.2)),
}
_SUFFIX = {fmt: suffix for suffix, fmt in reversed(FORMATS.items())}  # "tiff" -> ".tif"


def _check_size(size) -> tuple[int, int, int]:
    try:
        d, h, w = (int(n) for n in size)
    except (TypeError, ValueError):
        raise UserError(f"synthetic volume size {size!r} must be three sides (D, H, W), e.g. (32, 64, 64)") from None
    if min(d, h, w) < MIN_SIDE:
        raise UserError(f"synthetic volume size {(d, h, w)} is too small: use at least {MIN_SIDE} voxels per side")
    return d, h, w


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3-D rotation (QR of a gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _nuclei(rng: np.random.Generator, shape: tuple[int, int, int], num_classes: int) -> list[tuple]:
    """(center (3,), semi-axes (3,), rotation (3, 3), brightness, class) per nucleus, in drawing order."""
    density = rng.uniform(0.18, 0.30)  # fraction of the volume inside nuclei (before overlaps)
    count = max(1, int(rng.poisson(density * np.prod(shape) / (4 / 3 * np.pi * 7.5 * 6.0 * 6.0))))
    weights = np.array([1.0, 0.5, 0.35][: num_classes - 1])
    classes = rng.choice(np.arange(1, num_classes), size=count, p=weights / weights.sum())
    nuclei = []
    for cls in classes:
        (a_lo, a_hi), (r_lo, r_hi), (b_lo, b_hi) = _SHAPES[int(cls)]
        a = rng.uniform(a_lo, a_hi)
        axes = np.array([a, a * rng.uniform(r_lo, r_hi), a * rng.uniform(r_lo, r_hi)])
        if nuclei and rng.random() < 0.3:  # touch or overlap an earlier nucleus
            center0, axes0 = nuclei[rng.integers(len(nuclei))][:2]
            direction = rng.standard_normal(3)
            direction /= np.linalg.norm(direction)
            center = center0 + direction * (axes0.max() + axes.min()) * rng.uniform(0.75, 1.05)
        else:
            center = rng.uniform(-3, np.array(shape) + 3)
        nuclei.append((center, axes, _rotation(rng), rng.uniform(b_lo, b_hi), int(cls)))
    return nuclei


def _ellipsoid(center, axes, rotation, shape):
    """Bounding-box slices and normalized radius squared (< 1 inside) of one ellipsoid; None if outside."""
    reach = axes.max() + 1
    lo = [max(0, int(c - reach)) for c in center]
    hi = [min(n, int(c + reach) + 2) for c, n in zip(center, shape)]
    if any(a >= b for a, b in zip(lo, hi)):
        return None
    grids = np.meshgrid(*[np.arange(a, b, dtype=np.float32) + 0.5 - c for a, b, c in zip(lo, hi, center)],
                        indexing="ij", sparse=True)
    r2 = sum(((sum(rotation[k, i] * grids[k] for k in range(3))) / axes[i]) ** 2 for i in range(3))
    return tuple(slice(a, b) for a, b in zip(lo, hi)), r2


def _render(rng: np.random.Generator, shape: tuple[int, int, int], num_classes: int):
    """(signal (D, H, W) float32 in nucleus-brightness units, mask (D, H, W) uint8) without optics."""
    signal, mask = np.zeros(shape, np.float32), np.zeros(shape, np.uint8)
    for center, axes, rotation, brightness, cls in _nuclei(rng, shape, num_classes):
        found = _ellipsoid(center, axes, rotation, shape)
        if found is not None:
            box, r2 = found
            inside = r2 < 1.0
            signal[box][inside] = (brightness * (1.0 - 0.35 * r2 * r2))[inside]  # brighter center, soft edge
            mask[box][inside] = cls
    n_debris = int(rng.poisson(np.prod(shape) / 65536.0 * 12))
    for _ in range(n_debris):
        center, radius = rng.uniform(0, shape), rng.uniform(0.8, 2.0)
        found = _ellipsoid(center, np.full(3, radius), np.eye(3), shape)
        if found is not None:
            box, r2 = found
            speck = (r2 < 1.0) & (mask[box] == 0)  # debris never lies on a nucleus
            signal[box][speck] = rng.uniform(0.8, 1.8)
    return signal, mask


def blur_axis(volume: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """Gaussian blur of a float32 array along one axis, reflecting at the borders."""
    radius = max(1, int(3.0 * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    n = volume.shape[axis]
    pad = [(0, 0)] * volume.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(volume, pad, mode="reflect" if n > radius else "edge")
    out = np.zeros_like(volume)
    for k, t in enumerate(taps):
        out += t * np.take(padded, np.arange(k, k + n), axis=axis)
    return out


def _illumination(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Smooth (D, H, W) multiplicative field: a lateral tilt and spot, fading with depth (0.45..1.15)."""
    d, h, w = shape
    gy, gx = (((np.arange(n, dtype=np.float32) + 0.5) / n - 0.5) for n in (h, w))
    ty, tx = rng.uniform(-0.35, 0.35, size=2)
    cy, cx = rng.uniform(-0.5, 0.5, size=2)
    width = 2 * rng.uniform(0.25, 0.5) ** 2
    spot = rng.uniform(0.0, 0.25) * np.exp(-((gy - cy) ** 2) / width)[:, None] * np.exp(-((gx - cx) ** 2) / width)
    lateral = 1.0 + ty * gy[:, None] + tx * gx[None, :] + spot
    lateral = np.clip(lateral * (1.1 / lateral.max()), 0.55, 1.15)
    depth = np.exp(np.log(rng.uniform(0.7, 0.95)) * np.arange(d, dtype=np.float32) / max(1, d - 1))
    return (depth[:, None, None] * lateral[None]).astype(np.float32)


def synthetic_volume(index: int, size=(32, 64, 64), seed: int = 0,
                     num_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic nuclei volume and its mask, the same for the same (seed, index, size).

    Args:
        index: Volume number; any non-negative int.
        size: (D, H, W) in voxels, each at least 8.
        seed: Data-set seed; different seeds give different data sets.
        num_classes: 2 (background, nucleus), 3 (+ elongated) or 4 (+ mitotic).

    Returns:
        (volume (D, H, W) uint16 in 0..4095, mask (D, H, W) uint8 class ids).
    """
    shape = _check_size(size)
    synthetic_class_names(num_classes)  # validates num_classes with the 2-D data's message
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 0x3D5EED])
    signal, mask = _render(rng, shape, num_classes)
    half = tuple((n + 1) // 2 for n in shape)  # texture at half resolution; the optics blur it anyway
    texture = rng.standard_normal(half, dtype=np.float32)
    for axis in range(3):
        texture = blur_axis(texture, 0.75, axis)
    texture = texture.repeat(2, 0).repeat(2, 1).repeat(2, 2)[: shape[0], : shape[1], : shape[2]]
    signal *= 1.0 + 0.5 * texture  # chromatin-like texture
    lateral_sigma = rng.uniform(0.7, 1.3)
    blurred = blur_axis(signal, lateral_sigma * rng.uniform(1.5, 2.5), 0)  # the axial PSF is longer
    for axis in (1, 2):
        blurred = blur_axis(blurred, lateral_sigma, axis)
    level, background = rng.uniform(900, 1800), rng.uniform(80, 200)
    mean = (blurred * level + background) * _illumination(rng, shape)
    gain, read_noise = rng.uniform(1.5, 3.0), rng.uniform(4, 10)
    std = np.sqrt(gain * np.maximum(mean, 0) + read_noise**2)
    volume = mean + 100.0 + std * rng.standard_normal(shape, dtype=np.float32)
    return np.clip(np.rint(volume), 0, MAX_VALUE).astype(np.uint16), mask


def write_synthetic_volumes(out_dir: str | os.PathLike, n: int = 20, size=(32, 64, 64), seed: int = 0,
                            fmt: str = "nii.gz", num_classes: int = 2) -> Path:
    """Writes ``out_dir/images/synth_0000<suffix>``, ``masks/synth_0000<suffix>`` and ``classes.txt``.

    The set is built in a staging folder beside ``out_dir`` and swapped in whole
    (``edgeunet.atomic.atomic_dir``): an interrupted run leaves no partial data set.

    Args:
        out_dir: New (or empty) folder.
        n: Number of volumes.
        size: (D, H, W) of every volume.
        seed: Data-set seed (volume i is ``synthetic_volume(i, size, seed, num_classes)``).
        fmt: "nii.gz", "nii", "tiff" or "npy".
        num_classes: 2 to 4.

    Returns:
        ``out_dir`` as a Path.
    """
    out_dir = Path(out_dir)
    if fmt not in _SUFFIX:
        raise UserError(f"unknown volume format {fmt!r}: use one of {', '.join(_SUFFIX)}")
    if int(n) < 1:
        raise UserError(f"n={n}: ask for at least 1 volume")
    shape, names = _check_size(size), synthetic_class_names(num_classes)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir} already exists and is not empty: choose another folder or remove it")
    width = max(4, len(str(int(n) - 1)))
    with atomic_dir(out_dir) as tmp:
        for i in range(int(n)):
            volume, mask = synthetic_volume(i, shape, seed, num_classes)
            name = f"synth_{i:0{width}d}{_SUFFIX[fmt]}"
            write_volume(tmp / "images" / name, volume)
            write_volume(tmp / "masks" / name, mask)
        (tmp / "classes.txt").write_text("\n".join(names) + "\n")
    return out_dir
