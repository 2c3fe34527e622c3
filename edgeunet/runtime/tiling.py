"""Any image size on a fixed-stride network: pad to the size multiple, or slide overlapping tiles.

The 2-D front of ``runtime.window``. Small images are padded (bottom and right, by reflection) to a
multiple of the model's size multiple, run whole and cropped back. Images larger than a tile run tile
by tile, like MONAI's ``sliding_window_inference``: each tile's softmax is weighted by a Gaussian window
that is highest at the tile center, where the network sees the most context, and accumulated into one
(K, H, W) float32 buffer plus one (H, W) weight plane. Overlaps therefore blend smoothly (no seams),
and memory beyond those two buffers is a few tiles' worth, whatever the image size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..sizes import round_up
from .window import importance_window, pad_to_shape, sliding_window, softmax

RunFn = Callable[[np.ndarray], np.ndarray]  # (B, C, h, w) float32 -> (B, K, h, w) float32 logits


def pad_to(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pads a (C, H, W) array at the bottom and right to (C, height, width) by reflection (``pad_to_shape``).

    Returns:
        (C, height, width) array; ``x`` itself when no padding is needed.
    """
    return pad_to_shape(x, (height, width))


def pad_to_multiple(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Pads a (C, H, W) array so that H and W are multiples of ``multiple``.

    Returns:
        (padded (C, H', W') array, original (H, W)); ``crop(y, *original)`` undoes it.
    """
    height, width = x.shape[1:]
    return pad_to(x, round_up(height, multiple), round_up(width, multiple)), (height, width)


def crop(y: np.ndarray, height: int, width: int) -> np.ndarray:
    """The top-left (..., height, width) part of ``y``: undoes ``pad_to``."""
    return y[..., :height, :width]


def gaussian_window(height: int, width: int) -> np.ndarray:
    """(height, width) float32 weights, 1 at the center, falling off as a Gaussian (read-only, cached)."""
    return importance_window((int(height), int(width)))


def run_whole(x: np.ndarray, run: RunFn, multiple: int) -> np.ndarray:
    """Runs one (C, H, W) image in one piece: pad to the size multiple, run, crop.

    Returns:
        (K, H, W) float32 softmax probabilities.
    """
    padded, (height, width) = pad_to_multiple(x, multiple)
    logits = run(padded[None])[0]
    return np.ascontiguousarray(crop(softmax(logits, axis=0), height, width))


def run_tiled(
    x: np.ndarray,
    run: RunFn,
    num_classes: int,
    tile: int,
    overlap: float,
    multiple: int,
    tile_batch: int = 4,
    normalize: bool = True,
) -> np.ndarray:
    """Runs one (C, H, W) image by sliding-window tiling with Gaussian blending.

    Args:
        x: (C, H, W) float32 preprocessed image of any size.
        run: Model call, (B, C, h, w) -> (B, K, h, w) logits; h and w are multiples of ``multiple``.
        num_classes: K.
        tile: Tile side in pixels, a multiple of ``multiple``.
        overlap: Fraction of a tile shared with its neighbour, in [0, 1).
        multiple: The model's size multiple (2 ** depth x space_to_depth).
        tile_batch: Tiles per model call.
        normalize: Divide by the accumulated weight so the result sums to 1 over K; the argmax
            is the same either way, so mask-only callers skip it.

    Returns:
        (K, H, W) float32 blended probabilities (unnormalized weighted sums if not ``normalize``).
    """
    # One implementation for 2-D and 3-D (``window.sliding_window``): windows on the grid of the image
    # padded to the size multiple, gathered with reflection where they cross the border, so neither
    # the padded image nor a padded accumulator is ever materialized.
    return sliding_window(x, run, num_classes, tile, overlap, multiple, batch=tile_batch, normalize=normalize)
