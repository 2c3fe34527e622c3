"""N-D sliding-window inference (2-D images, 3-D volumes) with Gaussian importance blending. Torch-free.

Like MONAI's ``sliding_window_inference`` (``runtime.tiling.run_tiled`` is its 2-D front): the
(C, *spatial) input is cut into windows on the grid of the model's size multiple, overlapping by
``overlap``; each window's softmax is weighted by a Gaussian that is highest at the window center,
where the network sees the most context, and accumulated into one (K, *spatial) float32 sum plus one
(*spatial) weight sum.

Padding follows the runtime's one rule (``pad_to_shape``: reflection at the high end of each
axis, up to the size multiple; ``tiling.pad_to`` is its 2-D form) but is never materialized for
the whole input: a window that crosses the end of an axis gathers its reflected voxels itself,
and only the part of a window inside the input is accumulated.

Memory, in bytes, with N = prod(spatial), V = prod(window), B = ``batch``, C channels, K classes:
the two accumulators, 4 * (K + 1) * N (4 * K * N without ``normalize``), plus per model call at
most 4 * B * V * (2 * C + 2 * K + 2) for the gathered and stacked windows, the logits and the
softmax temporaries, plus 8 * V for the window weights, plus what ``run`` allocates inside.
Nothing else scales with the input: 1 x 128^3 voxels, 2 classes, 64^3 windows take 35 MB.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from itertools import product

import numpy as np

from ..errors import UserError
from ..sizes import check_multiple, round_up

RunFn = Callable[[np.ndarray], np.ndarray]  # (B, C, *window) float32 -> (B, K, *window) float32 logits
BLENDS = ("gaussian", "constant")
# Gaussian window sigma as a fraction of the window side (MONAI's default sigma_scale).
SIGMA_SCALE = 0.125
# Floor of the 2-D window so border pixels covered by a single window still count (see ``importance_window``).
MIN_WEIGHT = 1e-3


def softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """Numerically stable float32 softmax along ``axis``."""
    z = logits - logits.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z.astype(np.float32, copy=False)


def mirror_sets(spatial_dims: int) -> list[tuple[int, ...]]:
    """Every combination of mirrored spatial axes of a (B, C, *spatial) batch, the identity first: 4 in 2-D,
    8 in 3-D (nnU-Net's test-time mirroring)."""
    axes = range(2, 2 + spatial_dims)
    return [tuple(a for a, on in zip(axes, flags, strict=True) if on) for flags in product((False, True),
                                                                                            repeat=spatial_dims)]


def mirrored(run: RunFn) -> RunFn:
    """``run`` with test-time mirroring: the batch and its mirror images along every combination of spatial axes
    (``mirror_sets``) each run, their softmax mirrored back and averaged. Returns the log of the mean
    probability, so that every caller's softmax of it is that mean (and its argmax the averaged prediction).
    It costs 4x (2-D) or 8x (3-D) the model calls."""

    def run_mirrored(x: np.ndarray) -> np.ndarray:
        total = None
        flips = mirror_sets(x.ndim - 2)
        for axes in flips:
            probs = softmax(run(np.ascontiguousarray(np.flip(x, axes)) if axes else x), axis=1)
            probs = np.flip(probs, axes) if axes else probs
            total = probs.copy() if total is None else np.add(total, probs, out=total)
        total /= len(flips)
        return np.log(np.maximum(total, np.finfo(np.float32).tiny), out=total)

    return run_mirrored


def tile_starts(length: int, tile: int, overlap: float, multiple: int = 1) -> list[int]:
    """Start offsets of windows of size ``tile`` covering ``[0, length)``, overlapping by about ``overlap``.

    Offsets are multiples of ``multiple`` (``length`` and ``tile`` should be too), so every
    window sees the same down-sampling grid as the whole input would; strides are spread evenly
    and the last window ends exactly at ``length``.
    """
    if length <= tile:
        return [0]
    steps = -(-(length - tile) // max(1, int(tile * (1.0 - overlap)))) + 1
    units = (length - tile) // multiple
    return [round(i * units / (steps - 1)) * multiple for i in range(steps)]


def reflect_indices(start: int, stop: int, length: int) -> np.ndarray:
    """Indices into an axis of ``length`` for positions ``start..stop-1`` of its reflect-padded form.

    Position p >= length maps where ``np.pad(mode="reflect")`` takes it from (the reflection is
    periodic with period 2 * (length - 1); a length-1 axis repeats its one element).
    """
    positions = np.arange(start, stop)
    if length == 1:
        return np.zeros_like(positions)
    period = 2 * (length - 1)
    folded = np.mod(positions, period)
    return np.where(folded >= length, period - folded, folded)


def pad_to_shape(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Pads a (C, *spatial) array at the high end of each axis to (C, *shape) by reflection.

    Reflection keeps image statistics at the border (numpy repeats the reflection when the pad is longer
    than the axis, and repeats the single element of a length-1 axis). ``tiling.pad_to`` is the 2-D form.
    Returns ``x`` itself when no padding is needed.
    """
    pads = [int(n) - int(m) for n, m in zip(shape, x.shape[1:])]
    if len(shape) != x.ndim - 1 or min(pads, default=0) < 0:
        raise UserError(f"cannot pad shape {x.shape[1:]} to {tuple(shape)}: crop instead")
    if not any(pads):
        return x
    return np.pad(x, [(0, 0)] + [(0, p) for p in pads], mode="reflect")


@lru_cache(maxsize=16)
def importance_window(window: tuple[int, ...], blend: str = "gaussian") -> np.ndarray:
    """(*window) float32 weights: a Gaussian (sigma = SIGMA_SCALE x side, 1 at the center) or ones
    for ``constant``. Read-only (cached).

    The Gaussian is floored at MIN_WEIGHT ** (ndim / 2) so that voxels covered by a single window
    still count: in 2-D MIN_WEIGHT (``tiling.gaussian_window``), in 3-D the same
    per-axis level (3e-5). A 1e-3 floor in 3-D would give a window's unreliable edges, where the
    product of three small factors falls below it, ten times the share of the 2-D floor.
    """
    if blend == "constant":
        weights = np.ones(window, np.float32)
    else:
        weights = np.ones((), np.float32)
        for n in window:
            centered = np.arange(n, dtype=np.float32) - (n - 1) / 2.0
            weights = np.multiply.outer(weights, np.exp(-0.5 * (centered / np.float32(SIGMA_SCALE * n)) ** 2))
        np.maximum(weights, np.float32(MIN_WEIGHT ** (len(window) / 2)), out=weights)
    weights.flags.writeable = False  # shared between threads through the cache
    return weights


def _per_axis(value, ndim: int, what: str) -> tuple[int, ...]:
    values = (int(value),) * ndim if np.isscalar(value) else tuple(int(v) for v in value)
    if len(values) != ndim:
        raise UserError(f"{what} {tuple(values)} has {len(values)} sides for a {ndim}-D input: give {ndim}")
    return values


def _gather(x: np.ndarray, starts: tuple[int, ...], window: tuple[int, ...]) -> np.ndarray:
    """The (C, *window) window at ``starts`` of the reflect-padded ``x`` (a view when it lies inside)."""
    spatial = x.shape[1:]
    if all(s + w <= n for s, w, n in zip(starts, window, spatial)):
        return x[(slice(None),) + tuple(slice(s, s + w) for s, w in zip(starts, window))]
    indices = [reflect_indices(s, s + w, n) for s, w, n in zip(starts, window, spatial)]
    return x[(slice(None),) + np.ix_(*indices)]


def _plan(shape: tuple[int, ...], window, multiple, overlap: float, batch: int, blend: str):
    """Checked (window, multiple, padded spatial shape) of a sliding-window run over a (C, *spatial) input."""
    ndim = len(shape) - 1
    if ndim < 1 or 0 in shape:
        raise UserError(f"sliding_window takes a (C, *spatial) array, got shape {tuple(shape)}")
    multiple, window = _per_axis(multiple, ndim, "multiple"), _per_axis(window, ndim, "window")
    for side, m in zip(window, multiple):
        check_multiple(side, m, "window")
    if not 0.0 <= overlap < 1.0:
        raise UserError(f"overlap {overlap} must be in [0, 1), e.g. 0.5")
    if int(batch) < 1 or blend not in BLENDS:
        raise UserError(f"batch {batch} must be >= 1 and blend one of {', '.join(BLENDS)} (got {blend!r})")
    # Windows lie on the grid of the input padded to the multiple (as tiling.run_tiled pads it).
    padded = tuple(round_up(n, m) for n, m in zip(shape[1:], multiple))
    return tuple(min(w, p) for w, p in zip(window, padded)), multiple, padded


def _weighted_softmax(run: RunFn, windows: list[np.ndarray], num_classes: int, window: tuple[int, ...],
                      weights: np.ndarray) -> np.ndarray:
    """(B, K, *window) float32 softmax of one model call on the B stacked ``windows``, times ``weights``."""
    logits = run(np.stack(windows))
    if logits.shape != (len(windows), num_classes, *window):
        raise UserError(f"the model returned shape {logits.shape} for {len(windows)} windows of {window}: "
                        f"expected {(len(windows), num_classes, *window)} (check num_classes)")
    probs = softmax(logits, axis=1)
    probs *= weights
    return probs


def _overlap(starts: tuple[int, ...], window: tuple[int, ...], spatial: tuple[int, ...]) -> tuple[tuple, tuple]:
    """(inside, target): the part of the window at ``starts`` that lies in the input, as slices of the window
    and of the input (a window crossing the end of an axis holds reflected values beyond it)."""
    inside = tuple(slice(0, min(w, n - s)) for s, w, n in zip(starts, window, spatial))
    return inside, tuple(slice(s, s + r.stop) for s, r in zip(starts, inside))


def sliding_window(x: np.ndarray, run: RunFn, num_classes: int, window: tuple[int, ...] | int, overlap: float = 0.5,
                   multiple: tuple[int, ...] | int = 1, batch: int = 1, blend: str = "gaussian",
                   normalize: bool = True) -> np.ndarray:
    """Runs ``run`` over a (C, *spatial) input window by window and blends the softmax.

    Args:
        x: (C, H, W) or (C, D, H, W) float32 preprocessed input of any size.
        run: Model call, (B, C, *window) -> (B, K, *window) logits.
        num_classes: K.
        window: Window size per spatial axis (one int: the same on every axis), each a multiple
            of ``multiple``; axes shorter than a window run whole (padded to the multiple).
        overlap: Fraction of a window shared with its neighbour along each axis, in [0, 1).
        multiple: The model's size multiple per axis (``ModelConfig.size_multiples``), or one int.
        batch: Windows per model call.
        blend: ``gaussian`` (importance weights, no seams) or ``constant`` (plain average).
        normalize: Divide by the accumulated weight so the result sums to 1 over K; the argmax is
            the same either way, so mask-only callers skip it (and its (*spatial) buffer).

    Returns:
        (K, *spatial) float32 blended probabilities (weighted sums if not ``normalize``).
    """
    spatial = x.shape[1:]
    window, multiple, padded = _plan(x.shape, window, multiple, overlap, batch, blend)
    weights = importance_window(window, blend)
    probs = np.zeros((num_classes, *spatial), np.float32)
    total = np.zeros(spatial, np.float32) if normalize else None
    boxes = list(product(*[tile_starts(p, w, overlap, m) for p, w, m in zip(padded, window, multiple)]))
    for first in range(0, len(boxes), int(batch)):
        group = boxes[first:first + int(batch)]
        windows = [_gather(x, starts, window) for starts in group]
        for starts, p in zip(group, _weighted_softmax(run, windows, num_classes, window, weights)):
            inside, target = _overlap(starts, window, spatial)
            probs[(slice(None),) + target] += p[(slice(None),) + inside]
            if total is not None:
                total[target] += weights[inside]
    if total is not None:
        probs /= total
    return probs


def argmax_into(scores: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Writes the class of the highest score of (K, *spatial) ``scores`` into ``out`` (*spatial).

    Like ``np.argmax(scores, 0)`` (ties go to the lower id) without its int64 temporary.
    """
    best = scores[0].copy()
    out[...] = 0
    for k in range(1, len(scores)):
        better = scores[k] > best
        out[better] = k
        np.maximum(best, scores[k], out=best)
    return out


def _source_planes(x, index: np.ndarray) -> np.ndarray:
    """(C, n, *rest) float32 planes ``index`` along the first spatial axis of an array or a lazy source."""
    return x.planes(index) if hasattr(x, "planes") else np.asarray(x[:, index], np.float32)


def sliding_window_mask(x, run: RunFn, num_classes: int, window: tuple[int, ...] | int, overlap: float = 0.5,
                        multiple: tuple[int, ...] | int = 1, batch: int = 1, blend: str = "gaussian",
                        dtype=np.uint8) -> np.ndarray:
    """The argmax of ``sliding_window``, streamed along the first spatial axis: class ids, not probabilities.

    Windows run slab by slab (one row of window starts along the first axis at a time); the class
    scores live in one (K, window[0], *rest) buffer that moves along, and each plane is reduced to its
    class ids as soon as no later window covers it. Memory, with N = prod(spatial) and S = window[0]
    x prod(rest): the mask (N bytes for uint8), 4 * K * S for the buffer, 4 * C * S for the slab's input
    planes, and the per-call window terms of ``sliding_window``; nothing holds K or C values per voxel.
    Same ids as ``np.argmax(sliding_window(x, ...), 0)`` (same sums, in the same order).

    Args:
        x: (C, *spatial) float32 array, or a lazy source with ``shape`` and ``planes(index) -> (C, n, *rest)``
            (e.g. ``preprocess.VolumeNormalizer``, which normalizes only the planes asked for).
        run, num_classes, window, overlap, multiple, batch, blend: As for ``sliding_window``.
        dtype: Mask dtype (uint8 up to 256 classes).

    Returns:
        (*spatial) class ids.
    """
    shape = tuple(x.shape)
    window, multiple, padded = _plan(shape, window, multiple, overlap, batch, blend)
    spatial, depth = shape[1:], window[0]
    weights = importance_window(window, blend)
    mask = np.empty(spatial, dtype)
    scores = np.zeros((num_classes, depth, *spatial[1:]), np.float32)
    rest = list(product(*[tile_starts(p, w, overlap, m) for p, w, m in zip(padded[1:], window[1:], multiple[1:])]))
    base = 0  # the plane scores[:, 0] holds
    for z in tile_starts(padded[0], depth, overlap, multiple[0]):
        if z > base:  # planes before z are complete
            done = min(z, spatial[0]) - base
            argmax_into(scores[:, :done], mask[base:base + done])
            keep = depth - (z - base)
            for plane in range(max(keep, 0)):  # plane by plane: no temporary of the buffer
                scores[:, plane] = scores[:, plane + z - base]
            scores[:, max(keep, 0):] = 0
            base = z
        slab = _source_planes(x, reflect_indices(z, z + depth, spatial[0]))
        planes = slice(0, min(depth, spatial[0] - z))
        for first in range(0, len(rest), int(batch)):
            group = rest[first:first + int(batch)]
            windows = [_gather(slab, (0, *starts), window) for starts in group]
            for starts, p in zip(group, _weighted_softmax(run, windows, num_classes, window, weights)):
                inside, target = _overlap(starts, window[1:], spatial[1:])
                scores[(slice(None), planes) + target] += p[(slice(None), planes) + inside]
    argmax_into(scores[:, :spatial[0] - base], mask[base:])
    return mask
