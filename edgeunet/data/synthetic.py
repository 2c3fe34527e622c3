"""Built-in synthetic data: fluorescence-microscopy-like nuclei with exact masks, as images or as volumes.

Nothing is downloaded. Each sample is drawn from ``numpy.random.default_rng([seed, index])``,
so the same (seed, index, size) always gives the same sample, on any machine. A sample has:

* nuclei: filled ellipses (``synthetic_sample``, 2-D) or ellipsoids of varied 3-D orientation
  (``synthetic_volume``, 3-D) of varied size, eccentricity and brightness, with a soft edge profile
  and smooth texture; some are placed touching or overlapping a neighbour (the one drawn last is on
  top, in the image and in the mask alike);
* debris: small bright specks that are not nuclei (class 0, never inside a nucleus);
* optics and camera: gaussian blur (in 3-D wider along Z, the axial point-spread function), uneven
  (low-frequency) illumination (in 3-D fading with depth), a camera offset and Poisson-Gaussian noise;
  values are uint16 in a 12-bit range (0..4095).

Classes: 0 background, 1 nucleus; with ``num_classes=3`` also 2 "elongated" (long thin
nuclei), with ``num_classes=4`` also 3 "mitotic" (small, very bright round nuclei). Volumes are
(D, H, W) = (Z, Y, X) with isotropic voxels. ``write_synthetic`` writes a folder data set of either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir
from ..errors import UserError
from ..runtime.imageio import write_image, write_mask
from ..runtime.volume_files import FORMATS, write_volume

CLASS_NAMES = ("background", "nucleus", "elongated", "mitotic")
MAX_VALUE = 4095  # 12-bit camera range
MIN_SIDE = 8  # smallest image (volume) side, in pixels (voxels)
# Per class: semi-major axis range (px), minor/major ratio range, brightness range (x nucleus level).
_SHAPES = {
    1: ((6.0, 13.0), (0.65, 1.0), (0.45, 1.0)),
    2: ((11.0, 18.0), (0.25, 0.42), (0.45, 1.0)),
    3: ((4.5, 6.5), (0.85, 1.0), (1.6, 2.2)),
}
# Volumes, per class: semi-axis range (voxels) of the longest axis, ratio range of the two others, brightness range.
_SHAPES_3D = {
    1: ((5.0, 10.0), (0.65, 1.0), (0.45, 1.0)),
    2: ((8.0, 14.0), (0.3, 0.45), (0.45, 1.0)),
    3: ((3.5, 5.0), (0.85, 1.0), (1.6, 2.2)),
}
# File formats of ``write_synthetic`` per dimensionality: format -> suffix (the first is the default).
FILE_FORMATS = {2: {"png": ".png"}, 3: {fmt: suffix for suffix, fmt in reversed(FORMATS.items())}}


@dataclass(frozen=True)
class SyntheticLayout:
    """The objects of one synthetic sample, in pixels.

    Attributes:
        nuclei: (N, 7) float64 rows of (center_y, center_x, semi_major, semi_minor, angle_rad,
            brightness, class_id), in drawing order (later rows are on top).
        debris: (M, 4) float64 rows of (center_y, center_x, radius, brightness).
    """

    nuclei: np.ndarray
    debris: np.ndarray


def synthetic_class_names(num_classes: int = 2) -> list[str]:
    """Class names of the synthetic data, e.g. ``["background", "nucleus"]`` for 2 classes."""
    _check_num_classes(num_classes)
    return list(CLASS_NAMES[:num_classes])


def _check_num_classes(num_classes: int) -> None:
    if not 2 <= int(num_classes) <= len(CLASS_NAMES):
        raise UserError(f"synthetic data has 2 to {len(CLASS_NAMES)} classes, not {num_classes}: "
                        f"pick --num-classes between 2 and {len(CLASS_NAMES)}")


def _rng(index: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 0x5EED])


def synthetic_layout(index: int, size: int = 256, seed: int = 0, num_classes: int = 2) -> SyntheticLayout:
    """The nuclei and debris of sample ``index`` (the geometry ``synthetic_sample`` draws)."""
    _check_num_classes(num_classes)
    rng = _rng(index, seed)
    density = rng.uniform(0.22, 0.38)  # fraction of the area covered by nuclei
    count = max(1, int(rng.poisson(density * size * size / (np.pi * 9.5 * 8.0))))
    classes = rng.choice(np.arange(1, num_classes), size=count, p=_class_weights(num_classes))
    rows = []
    for cls in classes:
        (a_lo, a_hi), (r_lo, r_hi), (b_lo, b_hi) = _SHAPES[int(cls)]
        a = rng.uniform(a_lo, a_hi)
        b = a * rng.uniform(r_lo, r_hi)
        if rows and rng.random() < 0.3:  # touch or overlap an earlier nucleus
            cy, cx, pa = rows[rng.integers(len(rows))][:3]
            direction = rng.uniform(0, 2 * np.pi)
            dist = (pa + b) * rng.uniform(0.75, 1.05)
            center = (cy + dist * np.sin(direction), cx + dist * np.cos(direction))
        else:
            center = rng.uniform(-4, size + 4, size=2)
        rows.append((center[0], center[1], a, b, rng.uniform(0, np.pi), rng.uniform(b_lo, b_hi), float(cls)))
    n_debris = int(rng.poisson(size * size / 4096.0 * 1.5))
    debris = np.column_stack([rng.uniform(0, size, n_debris), rng.uniform(0, size, n_debris),
                              rng.uniform(0.8, 2.2, n_debris), rng.uniform(0.8, 1.8, n_debris)])
    return SyntheticLayout(np.asarray(rows, dtype=np.float64).reshape(-1, 7), debris.reshape(-1, 4))


def _class_weights(num_classes: int) -> np.ndarray:
    weights = np.array([1.0, 0.5, 0.35][: num_classes - 1])
    return weights / weights.sum()


def _ellipse(row: np.ndarray, size: int):
    """Bounding-box slices and (h, w) normalized radius squared (<1 inside) of one ellipse."""
    cy, cx, a, b, theta = row[:5]
    y0, y1 = max(0, int(cy - a - 1)), min(size, int(cy + a + 2))
    x0, x1 = max(0, int(cx - a - 1)), min(size, int(cx + a + 2))
    if y0 >= y1 or x0 >= x1:
        return None
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
    cos, sin = np.cos(theta), np.sin(theta)
    u = (xx * cos + yy * sin) / a
    v = (-xx * sin + yy * cos) / b
    return (slice(y0, y1), slice(x0, x1)), u * u + v * v


def render_layout(layout: SyntheticLayout, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws a layout without optics or noise.

    Returns:
        (signal (H, W) float32 in nucleus-brightness units, mask (H, W) uint8 class ids).
    """
    signal = np.zeros((size, size), np.float32)
    mask = np.zeros((size, size), np.uint8)
    for row in layout.nuclei:
        found = _ellipse(row, size)
        if found is None:
            continue
        box, r2 = found
        inside = r2 < 1.0
        signal[box][inside] = (row[5] * (1.0 - 0.35 * r2 * r2))[inside]  # brighter center, soft edge
        mask[box][inside] = int(row[6])
    for cy, cx, radius, brightness in layout.debris:
        found = _ellipse(np.array([cy, cx, radius, radius, 0.0]), size)
        if found is None:
            continue
        box, r2 = found
        speck = (r2 < 1.0) & (mask[box] == 0)  # debris never lies on a nucleus
        signal[box][speck] = brightness
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


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable gaussian blur of an (H, W) float32 array, reflecting at the borders (rows, then columns)."""
    return blur_axis(blur_axis(image, sigma, 1), sigma, 0)


def _illumination_2d(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth (H, W) multiplicative field in about [0.55, 1.15]: a tilt plus a broad spot."""
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    gy, gx = rng.uniform(-0.35, 0.35, size=2)
    cy, cx = rng.uniform(-0.5, 0.5, size=2)
    width = 2 * rng.uniform(0.25, 0.5) ** 2
    column = 1.0 + gy * grid[:, None]
    row = gx * grid[None, :]
    # The spot is separable: exp(-(dy^2 + dx^2) / w) = exp(-dy^2 / w) * exp(-dx^2 / w).
    spot = (rng.uniform(0.0, 0.25) * np.exp(-((grid - cy) ** 2) / width)[:, None]
            * np.exp(-((grid - cx) ** 2) / width)[None, :])
    field = column + row + spot
    return np.clip(field * (1.1 / field.max()), 0.55, 1.15).astype(np.float32, copy=False)


def _check_side(size) -> int:
    if int(size) < MIN_SIDE:
        raise UserError(f"synthetic image size {size} is too small: use at least {MIN_SIDE} pixels (--img-size)")
    return int(size)


def synthetic_sample(index: int, size: int = 256, seed: int = 0,
                     num_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic fluorescence image and its mask, the same for the same (seed, index).

    Args:
        index: Sample number; any non-negative int.
        size: Height and width in pixels.
        seed: Data-set seed; different seeds give different data sets.
        num_classes: 2 (background, nucleus), 3 (+ elongated) or 4 (+ mitotic).

    Returns:
        (image (size, size) uint16 in 0..4095, mask (size, size) uint8 class ids).
    """
    size = _check_side(size)
    layout = synthetic_layout(index, size, seed, num_classes)
    signal, mask = render_layout(layout, size)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 0x0971C5])
    half = (size + 1) // 2  # texture at half resolution: cheaper, and the optics blur it anyway
    texture = gaussian_blur(rng.standard_normal((half, half), dtype=np.float32), 0.75)
    texture = np.repeat(np.repeat(texture, 2, axis=0), 2, axis=1)[:size, :size]
    signal *= 1.0 + 0.4 * texture  # chromatin-like texture (blurred noise has std ~0.35)
    level = rng.uniform(900, 1800)  # nucleus brightness in camera units
    background = rng.uniform(80, 200)
    mean = (gaussian_blur(signal, rng.uniform(0.8, 1.6)) * level + background) * _illumination_2d(rng, size)
    # Poisson-Gaussian noise in its usual Gaussian form: variance = gain * signal + read_noise^2
    # (accurate here: even the background holds dozens of photons per pixel).
    gain, read_noise = rng.uniform(1.5, 3.0), rng.uniform(4, 10)
    std = np.sqrt(gain * np.maximum(mean, 0) + read_noise**2)
    image = mean + 100.0 + std * rng.standard_normal((size, size), dtype=np.float32)
    return np.clip(np.rint(image), 0, MAX_VALUE).astype(np.uint16), mask


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
    classes = rng.choice(np.arange(1, num_classes), size=count, p=_class_weights(num_classes))
    nuclei = []
    for cls in classes:
        (a_lo, a_hi), (r_lo, r_hi), (b_lo, b_hi) = _SHAPES_3D[int(cls)]
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


def _illumination_3d(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
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
    mean = (blurred * level + background) * _illumination_3d(rng, shape)
    gain, read_noise = rng.uniform(1.5, 3.0), rng.uniform(4, 10)
    std = np.sqrt(gain * np.maximum(mean, 0) + read_noise**2)
    volume = mean + 100.0 + std * rng.standard_normal(shape, dtype=np.float32)
    return np.clip(np.rint(volume), 0, MAX_VALUE).astype(np.uint16), mask


def write_synthetic(out_dir: str | os.PathLike, n: int = 200, size=None, seed: int = 0, num_classes: int = 2,
                    spatial_dims: int = 2, fmt: str | None = None) -> Path:
    """Writes a synthetic data set: ``out_dir/images/synth_0000<suffix>``, ``masks/...`` and ``classes.txt``.

    Images are 16-bit PNGs with 8-bit PNG masks; volumes are written in ``fmt``. The files are written
    into a staging folder beside ``out_dir`` that replaces it whole at the end (``edgeunet.atomic.atomic_dir``),
    so an interrupted run leaves no partial data set; files and folders get the permissions the umask gives
    (0644 and 0755 under umask 022).

    Args:
        out_dir: New (or empty) folder.
        n: Number of samples (``--num-images``).
        size: Image side in pixels (``--img-size``, default 256), or volume (D, H, W) (default 32 x 64 x 64).
        seed: Data-set seed (sample i is ``synthetic_sample(i, size, seed, num_classes)``, or ``synthetic_volume``).
        num_classes: 2 to 4, see the module docstring.
        spatial_dims: 2 for images, 3 for volumes.
        fmt: File format (``FILE_FORMATS``): "png" for images; "nii.gz" (default), "nii", "tiff" or "npy" for
            volumes.

    Returns:
        ``out_dir`` as a Path.
    """
    out_dir = Path(out_dir)
    if spatial_dims == 3:
        item, generate, write_array, write_ids = "volume", synthetic_volume, write_volume, write_volume
        size = _check_size((32, 64, 64) if size is None else size)
    else:
        item, generate, write_array, write_ids = "image", synthetic_sample, write_image, write_mask
        size = _check_side(256 if size is None else size)
    formats = FILE_FORMATS[spatial_dims]
    fmt = fmt or next(iter(formats))
    if fmt not in formats:
        raise UserError(f"unknown {item} format {fmt!r}: use one of {', '.join(formats)}")
    if int(n) < 1:
        raise UserError(f"--num-images {n}: ask for at least 1 {item}")
    names = synthetic_class_names(num_classes)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir} already exists and is not empty: choose another folder or remove it")
    width = max(4, len(str(int(n) - 1)))
    with atomic_dir(out_dir) as tmp:
        for i in range(int(n)):
            array, mask = generate(i, size, seed, num_classes)
            name = f"synth_{i:0{width}d}{formats[fmt]}"
            write_array(tmp / "images" / name, array)
            write_ids(tmp / "masks" / name, mask)
        (tmp / "classes.txt").write_text("\n".join(names) + "\n")
    return out_dir


def write_synthetic_volumes(out_dir: str | os.PathLike, n: int = 20, size=(32, 64, 64), seed: int = 0,
                            fmt: str = "nii.gz", num_classes: int = 2) -> Path:
    """``write_synthetic`` of volumes: ``n`` volumes of (D, H, W) ``size``, as "nii.gz", "nii", "tiff" or "npy"."""
    return write_synthetic(out_dir, n, size, seed, num_classes, spatial_dims=3, fmt=fmt)
