"""Padding, cropping and sliding-window tiling of edgeunet.runtime.tiling (numpy only, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeunet.runtime.tiling import crop, gaussian_window, pad_to, pad_to_multiple, run_tiled, run_whole, softmax
from edgeunet.runtime.window import MIN_WEIGHT, tile_starts


def pointwise_model(calls: list | None = None, multiple: int = 8):
    """A fake network whose logits at a pixel depend only on that pixel: (B, 1, h, w) -> (B, 3, h, w).

    Without spatial context, tiled and whole-image predictions must agree exactly, so any
    difference comes from the tiling arithmetic itself. Records the input shapes it sees.
    """

    def run(x: np.ndarray) -> np.ndarray:
        assert x.dtype == np.float32 and x.shape[2] % multiple == 0 and x.shape[3] % multiple == 0
        if calls is not None:
            calls.append(x.shape)
        return np.concatenate([x, -x, 0.5 * x * x], axis=1)

    return run


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (8, 8), (37, 53), (64, 17)])
def test_pad_to_multiple_then_crop_gives_back_the_input(shape):
    x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    padded, (height, width) = pad_to_multiple(x, 16)
    assert padded.shape[1] % 16 == 0 and padded.shape[2] % 16 == 0
    assert padded.shape[1] - height < 16 and padded.shape[2] - width < 16
    np.testing.assert_array_equal(crop(padded, height, width), x)


def test_pad_reflects_the_image_at_the_bottom_and_right():
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    padded = pad_to(x, 5, 6)
    np.testing.assert_array_equal(padded[0, 3], x[0, 1, [0, 1, 2, 3, 2, 1]])  # row 3 mirrors row 1
    np.testing.assert_array_equal(padded[0, :3, 4], x[0, :, 2])  # column 4 mirrors column 2


def test_pad_of_a_multiple_returns_the_same_array():
    x = np.zeros((1, 16, 32), np.float32)
    assert pad_to_multiple(x, 16)[0] is x


def test_pad_cannot_shrink():
    with pytest.raises(ValueError, match="cannot pad shape"):
        pad_to(np.zeros((1, 10, 10), np.float32), 8, 10)


@pytest.mark.parametrize("length,tile,overlap", [(64, 64, 0.25), (200, 64, 0.25), (512, 128, 0.5), (1000, 256, 0.0)])
def test_tile_starts_cover_the_range_on_the_size_multiple_grid(length, tile, overlap):
    starts = tile_starts(length, tile, overlap, multiple=8)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(s % 8 == 0 for s in starts)
    gaps = np.diff(starts)
    assert (gaps > 0).all() and (gaps <= tile).all()  # strictly increasing, no holes
    if len(starts) > 1 and overlap > 0:
        assert (tile - gaps).min() >= tile * overlap - 8  # overlap as asked, up to the 8 px grid


def test_gaussian_window_peaks_at_the_center_and_never_reaches_zero():
    window = gaussian_window(64, 96)
    assert window.shape == (64, 96) and window.dtype == np.float32
    assert window.max() == pytest.approx(window[31:33, 47:49].max()) and window.max() <= 1.0
    assert window.min() >= MIN_WEIGHT
    np.testing.assert_allclose(window, window[::-1, ::-1], rtol=1e-6)
    assert not window.flags.writeable  # cached and shared between threads


def test_softmax_is_stable_for_large_logits():
    logits = np.array([[[[1000.0]], [[0.0]], [[-1000.0]]]], np.float32)
    probs = softmax(logits, axis=1)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs[0, :, 0, 0], [1.0, 0.0, 0.0], atol=1e-6)


def test_run_whole_returns_probabilities_at_the_input_size():
    x = np.random.default_rng(1).standard_normal((1, 37, 53)).astype(np.float32)
    probs = run_whole(x, pointwise_model(), multiple=8)
    assert probs.shape == (3, 37, 53) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)


@pytest.mark.parametrize("shape", [(150, 201), (64, 300), (40, 40)])
def test_tiled_blending_equals_whole_image_for_a_pointwise_model(shape):
    x = np.random.default_rng(2).standard_normal((1, *shape)).astype(np.float32)
    whole = run_whole(x, pointwise_model(), multiple=8)
    calls: list = []
    tiled = run_tiled(x, pointwise_model(calls), num_classes=3, tile=64, overlap=0.25, multiple=8, tile_batch=3)
    assert tiled.shape == (3, *shape)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    assert all(c[2] <= 64 and c[3] <= 64 and c[0] <= 3 for c in calls)


def test_unnormalized_tiling_keeps_the_argmax():
    x = np.random.default_rng(3).standard_normal((1, 130, 170)).astype(np.float32)
    kwargs = dict(num_classes=3, tile=48, overlap=0.5, multiple=8)
    normalized = run_tiled(x, pointwise_model(), **kwargs)
    sums = run_tiled(x, pointwise_model(), normalize=False, **kwargs)
    np.testing.assert_array_equal(sums.argmax(axis=0), normalized.argmax(axis=0))


def test_tiling_calls_the_model_once_per_tile_batch():
    calls: list = []
    run_tiled(np.zeros((1, 128, 128), np.float32), pointwise_model(calls), num_classes=3, tile=64,
              overlap=0.25, multiple=8, tile_batch=4)
    # 128 px with 64 px tiles and 25% overlap: starts 0, 32, 64 per axis -> 9 tiles -> 3 calls of <= 4.
    assert [c[0] for c in calls] == [4, 4, 1]
