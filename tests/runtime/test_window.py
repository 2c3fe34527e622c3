"""N-D sliding window: the same padding and weights as the 2-D tiler, the direct result for pointwise
models, the whole-volume result of a conv-like model away from the borders, and bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from edgeunet.errors import UserError
from edgeunet.runtime.tiling import gaussian_window, pad_to, run_tiled, softmax
from edgeunet.runtime.window import importance_window, pad_to_shape, reflect_indices, sliding_window
from edgeunet.sizes import round_up


def pointwise(batch: np.ndarray) -> np.ndarray:
    """(B, 1, *s) -> (B, 3, *s) logits that depend on each voxel alone."""
    return np.concatenate([batch, 2 * batch - 1, -batch], axis=1).astype(np.float32)


def box(batch: np.ndarray, radius: int = 2) -> np.ndarray:
    """Mean over a (2r+1)^n neighbourhood of each spatial position, reflecting at the window's borders."""
    out = batch
    for axis in range(2, batch.ndim):
        pad = [(0, 0)] * batch.ndim
        pad[axis] = (radius, radius)
        padded, n = np.pad(out, pad, mode="reflect"), out.shape[axis]
        out = sum(np.take(padded, np.arange(k, k + n), axis=axis) for k in range(2 * radius + 1)) / (2 * radius + 1)
    return out


def conv_like(batch: np.ndarray) -> np.ndarray:
    """(B, 2, *s) -> (B, 3, *s): a 5-voxel box filter of channel 0 and channel 1 as is."""
    smooth = box(batch[:, :1])
    return np.concatenate([4 * smooth, -4 * smooth, batch[:, 1:]], axis=1).astype(np.float32)


def direct(x: np.ndarray, run, multiple: tuple[int, ...]) -> np.ndarray:
    """The whole input in one call: padded to the multiple, run, softmax, cropped."""
    padded = pad_to_shape(x, tuple(round_up(n, m) for n, m in zip(x.shape[1:], multiple)))
    probs = softmax(run(padded[None]), axis=1)[0]
    return probs[(slice(None),) + tuple(slice(0, n) for n in x.shape[1:])]


def test_reflect_indices_are_numpy_reflect_padding():
    for length in range(1, 9):
        for pad in range(0, 25):
            expected = np.pad(np.arange(length), (0, pad), mode="reflect")
            assert np.array_equal(reflect_indices(0, length + pad, length), expected), (length, pad)
    assert np.array_equal(reflect_indices(3, 9, 5), np.pad(np.arange(5), (0, 4), mode="reflect")[3:9])


def test_pad_to_shape_is_the_2d_pad_rule_in_n_d():
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    assert np.array_equal(pad_to_shape(x, (16, 8)), pad_to(x, 16, 8))
    volume = np.arange(2 * 3 * 4 * 1, dtype=np.float32).reshape(2, 3, 4, 1)
    assert np.array_equal(pad_to_shape(volume, (4, 8, 4)), np.pad(volume, ((0, 0), (0, 1), (0, 4), (0, 3)), "reflect"))
    assert pad_to_shape(volume, (3, 4, 1)) is volume
    with pytest.raises(UserError, match="cannot pad shape"):
        pad_to_shape(volume, (2, 4, 1))


def test_2d_weights_are_the_tilers():
    assert np.array_equal(importance_window((32, 48)), gaussian_window(32, 48))


@pytest.mark.parametrize("shape, window, multiple", [
    ((1, 37, 50), (16, 16), (8, 8)),
    ((1, 21, 30, 19), (8, 16, 8), (4, 4, 4)),
    ((1, 5, 3, 9), (8, 8, 8), (2, 4, 4)),  # smaller than a window: padded and run whole
])
@pytest.mark.parametrize("batch, blend", [(1, "gaussian"), (3, "gaussian"), (2, "constant")])
def test_pointwise_model_gives_the_direct_result(shape, window, multiple, batch, blend):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    out = sliding_window(x, pointwise, 3, window, 0.5, multiple, batch=batch, blend=blend)
    assert out.shape == (3, *shape[1:]) and out.dtype == np.float32
    np.testing.assert_allclose(out, direct(x, pointwise, multiple), rtol=1e-5, atol=1e-6)


def test_2d_windows_blend_exactly_like_the_tiler():
    x = np.random.default_rng(2).standard_normal((2, 70, 45)).astype(np.float32)
    expected = run_tiled(x, conv_like, 3, 32, 0.25, 16, tile_batch=3)
    np.testing.assert_allclose(sliding_window(x, conv_like, 3, (32, 32), 0.25, (16, 16), batch=3), expected,
                               rtol=1e-5, atol=1e-6)


def test_conv_like_model_matches_the_whole_volume_away_from_the_borders():
    x = np.random.default_rng(3).standard_normal((2, 37, 41, 30)).astype(np.float32)
    whole = direct(x, conv_like, (4, 4, 4))
    out = sliding_window(x, conv_like, 3, (16, 16, 16), 0.5, (4, 4, 4), batch=2)
    inner = np.abs(out - whole)[:, 4:-4, 4:-4, 4:-4]
    # Only window edges (2 voxels, the filter's reach) differ, and they carry small weights.
    assert inner.max() < 0.01 and inner.mean() < 1e-3
    constant = sliding_window(x, conv_like, 3, (16, 16, 16), 0.5, (4, 4, 4), blend="constant")
    assert np.abs(constant - whole)[:, 4:-4, 4:-4, 4:-4].max() > 10 * inner.max()  # what the Gaussian buys


def test_unnormalized_sums_have_the_same_argmax():
    x = np.random.default_rng(4).standard_normal((2, 20, 24, 28)).astype(np.float32)
    probs = sliding_window(x, conv_like, 3, (8, 16, 16), 0.5, (4, 4, 4))
    sums = sliding_window(x, conv_like, 3, (8, 16, 16), 0.5, (4, 4, 4), normalize=False)
    np.testing.assert_allclose(probs.sum(0), 1.0, rtol=1e-5)
    assert np.array_equal(probs.argmax(0), sums.argmax(0))


@pytest.mark.parametrize("shape", [(1, 128, 128, 128), (1, 121, 128, 125)])
def test_memory_is_the_accumulators_plus_a_few_windows(shape):
    """Peak numpy memory stays under 4 (K + 1) N + 4 V (B (2C + 2K + 2) + 2) bytes (the documented
    bound) + 1 MB: less than one more full-size float32 array (4 N) would need."""
    x = np.random.default_rng(5).standard_normal(shape, dtype=np.float32)
    channels, classes, window, batch = 1, 2, (32, 32, 32), 4
    n, v = int(np.prod(shape[1:])), int(np.prod(window))
    bound = 4 * (classes + 1) * n + 4 * v * (batch * (2 * channels + 2 * classes + 2) + 2) + 2**20
    assert bound - 4 * (classes + 1) * n < 4 * n
    tracemalloc.start()
    try:
        out = sliding_window(x, lambda b: np.concatenate([b, -b], axis=1), classes, window, 0.5, (16, 16, 16),
                             batch=batch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (2, *shape[1:])
    assert peak < bound, f"peak {peak / 1e6:.1f} MB over the bound {bound / 1e6:.1f} MB"


@pytest.mark.parametrize("kwargs, message", [
    ({"window": (12, 16, 16)}, "window 12 is not a multiple of 8"),
    ({"window": (16, 16)}, r"window \(16, 16\) has 2 sides for a 3-D input: give 3"),
    ({"overlap": 1.0}, r"overlap 1.0 must be in \[0, 1\)"),
    ({"blend": "linear"}, "blend one of gaussian, constant"),
    ({"num_classes": 4}, r"expected \(1, 4, 16, 16, 16\) \(check num_classes\)"),
])
def test_bad_arguments_name_the_fix(kwargs, message):
    options = {"num_classes": 3, "window": (16, 16, 16), "multiple": 8, **kwargs}
    with pytest.raises(UserError, match=message):
        sliding_window(np.zeros((1, 20, 20, 20), np.float32), pointwise, **options)
