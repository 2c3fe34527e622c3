"""Built-in synthetic data: fluorescence-microscopy-like nuclei with exact masks.

Nothing is downloaded. Each sample is drawn from ``numpy.random.default_rng([seed, index])``,
so the same (seed, index) always gives the same image, on any machine. A sample has:

* nuclei: filled ellipses of varied size, eccentricity, rotation and brightness, with a soft
  edge profile and smooth texture; some are placed touching or overlapping a neighbour (the
  one drawn last is on top, in the image and in the mask alike);
* debris: small bright specks that are not nuclei (class 0, never inside a nucleus);
* optics and camera: gaussian blur, uneven (low-frequency) illumination, a camera offset and
  Poisson-Gaussian noise; the image is uint16 in a 12-bit range (0..4095).

Classes: 0 background, 1 nucleus; with ``num_classes=3`` also 2 "elongated" (long thin
ellipses), with ``num_classes=4`` also 3 "mitotic" (small, very bright round nuclei).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir
from ..errors import UserError
from .io import write_image, write_mask

CLASS_NAMES = ("background", "nucleus", "elongated", "mitotic")
MAX_VALUE = 4095  # 12-bit camera range
# Per class: semi-major axis range (px), minor/major ratio range, brightness range (x nucleus level).
_SHAPES = {
    1: ((6.0, 13.0), (0.65, 1.0), (0.45, 1.0)),
    2: ((11.0, 18.0), (0.25, 0.42), (0.45, 1.0)),
    3: ((4.5, 6.5), (0.85, 1.0), (1.6, 2.2)),
}


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


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable gaussian blur of an (H, W) float32 array, reflecting at the borders."""
    radius = max(1, int(3.0 * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    h, w = image.shape
    padded = np.pad(image, radius, mode="reflect" if min(h, w) > radius else "edge")
    rows = sum(t * padded[:, k:k + w] for k, t in enumerate(taps))
    return sum(t * rows[k:k + h, :] for k, t in enumerate(taps)).astype(np.float32)


def _illumination(rng: np.random.Generator, size: int) -> np.ndarray:
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
    if int(size) < 8:
        raise UserError(f"synthetic size {size} is too small: use at least 8 pixels")
    layout = synthetic_layout(index, size, seed, num_classes)
    signal, mask = render_layout(layout, size)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 0x0971C5])
    half = (size + 1) // 2  # texture at half resolution: cheaper, and the optics blur it anyway
    texture = gaussian_blur(rng.standard_normal((half, half), dtype=np.float32), 0.75)
    texture = np.repeat(np.repeat(texture, 2, axis=0), 2, axis=1)[:size, :size]
    signal *= 1.0 + 0.4 * texture  # chromatin-like texture (blurred noise has std ~0.35)
    level = rng.uniform(900, 1800)  # nucleus brightness in camera units
    background = rng.uniform(80, 200)
    mean = (gaussian_blur(signal, rng.uniform(0.8, 1.6)) * level + background) * _illumination(rng, size)
    # Poisson-Gaussian noise in its usual Gaussian form: variance = gain * signal + read_noise^2
    # (accurate here: even the background holds dozens of photons per pixel).
    gain, read_noise = rng.uniform(1.5, 3.0), rng.uniform(4, 10)
    std = np.sqrt(gain * np.maximum(mean, 0) + read_noise**2)
    image = mean + 100.0 + std * rng.standard_normal((size, size), dtype=np.float32)
    return np.clip(np.rint(image), 0, MAX_VALUE).astype(np.uint16), mask


def write_synthetic(out_dir: str | os.PathLike, n: int = 200, size: int = 256, seed: int = 0,
                    num_classes: int = 2) -> Path:
    """Writes a synthetic data set: ``out_dir/images/*.png`` (16-bit), ``masks/*.png`` (8-bit), ``classes.txt``.

    The files are written into a staging folder beside ``out_dir`` that replaces it whole at the
    end (``edgeunet.atomic.atomic_dir``), so an interrupted run leaves no partial data set; files
    and folders get the permissions the umask gives (0644 and 0755 under umask 022).

    Args:
        out_dir: New (or empty) folder.
        n: Number of samples (``--num-images``).
        size: Height and width in pixels (``--img-size``).
        seed: Data-set seed (sample i is ``synthetic_sample(i, size, seed, num_classes)``).
        num_classes: 2 to 4, see the module docstring.

    Returns:
        ``out_dir`` as a Path.
    """
    out_dir = Path(out_dir)
    if int(n) < 1:
        raise UserError(f"--num-images {n}: ask for at least 1 image")
    if int(size) < 8:
        raise UserError(f"--img-size {size} is too small for synthetic images: use at least 8 pixels")
    names = synthetic_class_names(num_classes)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir} already exists and is not empty: choose another folder or remove it")
    width = max(4, len(str(n - 1)))
    with atomic_dir(out_dir) as tmp:
        for i in range(int(n)):
            image, mask = synthetic_sample(i, size, seed, num_classes)
            write_image(tmp / "images" / f"synth_{i:0{width}d}.png", image)
            write_mask(tmp / "masks" / f"synth_{i:0{width}d}.png", mask)
        (tmp / "classes.txt").write_text("\n".join(names) + "\n")
    return out_dir
