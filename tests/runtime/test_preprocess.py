import importlib

import numpy as np
import pytest

from edgeunet.errors import UserError
from edgeunet.runtime.preprocess import MODES, preprocess, volume_normalizer


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


# --- normalization modes: percentile (+ mean/std), zscore, ct, scale; one code path for images and volumes

CT_SPEC = {"mode": "ct", "clip": [[-200.0], [300.0]], "mean": [40.0], "std": [80.0]}
EVERY_MODE = [
    {"mode": "percentile", "low": 1.0, "high": 99.8},
    {"mode": "percentile", "low": 1.0, "high": 99.8, "mean": [0.485, 0.456], "std": [0.229, 0.224]},
    {"mode": "zscore"},
    {"mode": "ct", "clip": [[-200.0, 0.0], [300.0, 900.0]], "mean": [40.0, 400.0], "std": [80.0, 200.0]},
    {"mode": "scale", "mean": [0.1], "std": [0.2]},
]


def _ct_scan(rng, offset: int, shape=(6, 16, 16)) -> tuple[np.ndarray, np.ndarray]:
    """An int16 scan: air (-1024), a 'tissue' block of fixed HU values, and a scanner-specific bright object."""
    scan = np.full(shape, -1024, np.int16)
    tissue = np.zeros(shape, bool)
    tissue[1:5, 4:12, 4:12] = True
    scan[tissue] = rng.integers(0, 120, int(tissue.sum()))
    scan[0, :2, :2] = 1000 + offset  # metal or bone: its brightness differs between the scans
    return scan, tissue


def _old_percentile(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """The 2-D percentile preprocessing as it was before the modes were added (the reference for old specs)."""
    x = (image if image.ndim == 3 else image[:, :, None]).astype(np.float32)
    lo, hi = np.percentile(x.reshape(-1, x.shape[2]), [low, high], axis=0)
    span = np.maximum(hi - lo, 1e-6)
    return np.ascontiguousarray(((x - lo.astype(np.float32)) / span.astype(np.float32)).transpose(2, 0, 1))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_percentile_without_mean_std_is_bit_identical_to_the_old_formula(dtype):
    rng = np.random.default_rng(3)
    image = (rng.random((17, 23, 2)) * 250).astype(dtype)
    np.testing.assert_array_equal(preprocess(image), _old_percentile(image))
    np.testing.assert_array_equal(preprocess(image[..., 0], {"mode": "percentile", "low": 0.5, "high": 99.5}),
                                  _old_percentile(image[..., 0], 0.5, 99.5))


def test_percentile_with_mean_std_is_percentile_minus_mean_over_std():
    image = np.random.default_rng(4).integers(0, 4096, (20, 24, 3)).astype(np.uint16)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    x = preprocess(image, {"mode": "percentile", "low": 1.0, "high": 99.8, "mean": mean, "std": std})
    expected = (preprocess(image) - np.float32(mean)[:, None, None]) / np.float32(std)[:, None, None]
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


def test_zscore_gives_mean_0_std_1_per_image_and_channel():
    rng = np.random.default_rng(5)
    image = np.stack([rng.normal(300, 40, (32, 30)), rng.normal(-5, 0.5, (32, 30))], -1).astype(np.float32)
    x = preprocess(image, {"mode": "zscore"}, in_channels=2)
    assert x.shape == (2, 32, 30) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(1, 2)), 1.0, rtol=1e-4)


def test_zscore_of_a_volume_uses_the_whole_volume_and_a_constant_one_gives_zeros(monkeypatch):
    monkeypatch.setattr(importlib.import_module("edgeunet.runtime.preprocess"), "MOMENT_VALUES", 150)  # 2 planes
    rng = np.random.default_rng(6)
    volume = rng.integers(0, 4000, (7, 9, 11)).astype(np.uint16)
    volume[:3] += 3000  # planes differ: per-plane statistics would not give mean 0 over the volume
    x = preprocess(volume, {"mode": "zscore"}, 1, spatial_dims=3)
    np.testing.assert_allclose(x[0], (volume - volume.mean()) / volume.std(), rtol=1e-5, atol=1e-5)
    assert not preprocess(np.full((4, 5, 6), 9, np.uint8), {"mode": "zscore"}, spatial_dims=3).any()


def test_ct_clips_and_zscores_with_the_stored_numbers():
    scan = np.array([[-1024, -200, 40], [120, 300, 3000]], np.int16)
    np.testing.assert_allclose(preprocess(scan, CT_SPEC)[0], (np.clip(scan, -200, 300) - 40.0) / 80.0, rtol=1e-6)


def test_ct_gives_one_tissue_the_same_values_in_scans_of_different_ranges():
    rng = np.random.default_rng(7)
    (a, tissue), (b, _) = _ct_scan(rng, 0), _ct_scan(np.random.default_rng(7), 2000)
    assert np.array_equal(a[tissue], b[tissue]) and a.max() != b.max()
    ct_a, ct_b = (preprocess(s, CT_SPEC, 1, spatial_dims=3)[0] for s in (a, b))
    np.testing.assert_array_equal(ct_a[tissue], ct_b[tissue])
    pct_a, pct_b = (preprocess(s, None, 1, spatial_dims=3)[0] for s in (a, b))
    assert np.abs(pct_a[tissue] - pct_b[tissue]).max() > 0.01  # per-scan percentiles move with the bright object


@pytest.mark.parametrize("spec", EVERY_MODE, ids=lambda s: s["mode"] + ("+mean" if "mean" in s else ""))
def test_volume_planes_equal_the_whole_volume_and_each_plane_as_its_own_image(spec):
    rng = np.random.default_rng(8)
    volume = rng.integers(-300, 1200, (9, 10, 12, 2)).astype(np.int16)
    volume = volume if spec["mode"] != "scale" else volume[..., :1]
    whole = preprocess(volume, spec, spatial_dims=3)
    normalizer = volume_normalizer(volume, spec)
    np.testing.assert_array_equal(normalizer.planes(np.array([6, 2])), whole[:, [6, 2]])
    np.testing.assert_array_equal(np.concatenate([normalizer.planes(slice(i, i + 4)) for i in range(0, 9, 4)], 1),
                                  whole)
    flat = preprocess(volume.reshape(90, 12, -1), spec)  # every voxel as one image: the same statistics
    np.testing.assert_allclose(flat.reshape(whole.shape), whole, rtol=1e-5, atol=1e-5)


def test_scale_mode_of_volumes_divides_by_the_dtype_max_like_images():
    volume = np.random.default_rng(9).integers(0, 65535, (3, 5, 7)).astype(np.uint16)
    spec = {"mode": "scale", "mean": [0.5], "std": [0.25]}
    np.testing.assert_array_equal(preprocess(volume, spec, spatial_dims=3)[:, 1], preprocess(volume[1], spec))


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"mode": "minmax"}, "unknown preprocessing mode 'minmax': use one of percentile, zscore, ct, scale"),
        ({"mode": "ct", "clip": [[-200.0], [300.0]], "std": [80.0]}, "needs key 'mean'"),
        ({"mode": "ct", "mean": [40.0], "std": [80.0]}, "needs key 'clip'"),
        ({"mode": "ct", "clip": [-200.0, 300.0], "mean": [40.0], "std": [80.0]}, "key 'clip' must be a list"),
        ({"mode": "ct", "clip": [[300.0], [-200.0]], "mean": [40.0], "std": [80.0]}, "low <= high"),
        ({"mode": "ct", "clip": [[-200.0], [300.0]], "mean": [40.0], "std": [0.0]}, "key 'std' must be positive"),
        ({"mode": "zscore", "mean": [0.5]}, "key 'mean' is not used by mode 'zscore'"),
        ({"mode": "percentile", "mean": [0.485]}, "key 'std' is missing"),
        ({"mode": "percentile", "low": 99.0, "high": 1.0}, "0 <= low < high <= 100"),
        ({"mode": "scale", "mean": ["a"]}, "key 'mean' must be a list of numbers"),
        ({"mode": "scale", "mean": [0.1, 0.2], "std": [1.0, 1.0]}, "key 'mean' has 2 values but the input has 1"),
    ],
)
def test_bad_specs_name_the_key(spec, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        preprocess(np.zeros((4, 4), np.uint8), spec)


def test_every_mode_is_documented_in_the_module_docstring():
    module = importlib.import_module("edgeunet.runtime.preprocess")  # the package exports the function by that name
    for mode in MODES:
        assert f'{{"mode": "{mode}"' in module.__doc__
