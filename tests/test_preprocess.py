import numpy as np
import pytest

from edgeunet.runtime.preprocess import preprocess


def test_percentile_maps_to_unit_range_for_any_bit_depth():
    rng = np.random.default_rng(0)
    img8 = rng.integers(0, 256, (32, 32)).astype(np.uint8)
    img16 = img8.astype(np.uint16) * 16  # same picture, 12-bit range
    a, b = preprocess(img8), preprocess(img16)
    assert a.shape == (1, 32, 32) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert -0.1 < a.min() and a.max() < 1.1


def test_rgb_becomes_channels_first():
    img = np.zeros((8, 10, 3), np.uint8)
    img[..., 2] = 255
    assert preprocess(img, {"mode": "scale", "mean": [0, 0, 0], "std": [1, 1, 1]}).shape == (3, 8, 10)


def test_scale_mode_divides_by_dtype_max():
    img = np.full((4, 4), 65535, np.uint16)
    np.testing.assert_allclose(preprocess(img, {"mode": "scale", "mean": [0.5], "std": [0.5]}), 1.0)


def test_constant_image_does_not_divide_by_zero():
    assert np.isfinite(preprocess(np.full((8, 8), 7, np.uint8))).all()


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((0, 4)), "empty"),
        (np.zeros((4, 4, 3)), "3 channel"),
        (np.full((4, 4), np.nan, np.float32), "NaN or infinite"),
        (np.zeros((2, 4, 4, 1)), r"\(H, W\) or \(H, W, C\)"),
    ],
)
def test_bad_images_are_named(image, message):
    with pytest.raises(ValueError, match=message):
        preprocess(image, in_channels=1)
