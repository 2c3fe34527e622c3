"""Augmentation of training items (``edgeunet.data.augment``), 2-D and 3-D as parameters of the same tests:
determinism, label safety, the spatial transform's geometry, each intensity transform, and "basic" equal to
the original augmentation draw for draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeunet.data.augment import AUGMENTATIONS, AugmentPolicy, augment_crop, augment_item, augment_policy
from edgeunet.data.dataset import (
    SegmentationDataset,
    SyntheticDataset,
    SyntheticVolumeDataset,
    VolumeDataset,
    build_datasets,
)
from edgeunet.data.resample import resample_crop, spatial_matrix
from edgeunet.errors import UserError

pytestmark = pytest.mark.timeout(30)

DIMS = [2, 3]
# Every transform on every item: exercises all code paths in one draw.
EVERYTHING = AugmentPolicy(rotate90=True, gain=(0.9, 1.1), offset=(-0.1, 0.1), rotation=1.0, scaling=1.0,
                           mirror=0.5, noise=1.0, blur=1.0, blur_per_channel=1.0, brightness=1.0, contrast=1.0,
                           low_resolution=1.0, low_resolution_per_channel=1.0, gamma_inverted=1.0, gamma=1.0)


def _dataset(dims: int, augment, seed: int = 4):
    """Synthetic items: 2-D 40 px crops of 56 px images, 3-D (12, 16, 16) patches of (14, 20, 20) volumes."""
    if dims == 2:
        return SyntheticDataset(3, img_size=40, seed=seed, num_classes=3, augment=augment, sample_size=56)
    return SyntheticVolumeDataset(3, (12, 16, 16), seed=seed, num_classes=3, augment=augment, volume_shape=(14, 20, 20))


def _item_pair(dims: int, channels: int = 2, seed: int = 0):
    """A random (C, *spatial) float32 image and a (*spatial) uint8 mask with labels {0, 2, 5}."""
    rng = np.random.default_rng(seed)
    shape = (30, 34) if dims == 2 else (16, 18, 17)
    return (rng.standard_normal((channels, *shape)).astype(np.float32),
            rng.choice(np.array([0, 2, 5], np.uint8), size=shape))


def _high_frequency(x: np.ndarray) -> float:
    """Mean squared difference of neighbours along every spatial axis of (C, *spatial) ``x``."""
    return float(sum(np.mean(np.diff(x, axis=axis) ** 2) for axis in range(1, x.ndim)))


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("augment", ["nnunet", EVERYTHING])
def test_same_seed_gives_identical_items_and_epochs_differ(dims, augment):
    a, b = _dataset(dims, augment), _dataset(dims, augment)
    for index in range(len(a)):
        assert torch.equal(a[index][0], b[index][0]) and torch.equal(a[index][1], b[index][1])
    b.set_epoch(1)
    assert not torch.equal(a[0][0], b[0][0])


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("augment", ["none", "basic", "nnunet", EVERYTHING, True, False])
def test_every_item_has_the_crop_shape_and_dtype(dims, augment):
    ds = _dataset(dims, augment)
    for index in range(len(ds)):
        x, y = ds[index]
        assert x.shape == (1, *ds.crop_shape) and x.dtype == torch.float32 and x.is_contiguous()
        assert y.shape == ds.crop_shape and y.dtype == torch.int64
        assert torch.isfinite(x).all()


@pytest.mark.parametrize("dims", DIMS)
def test_masks_keep_only_label_values_of_the_source(dims):
    x, mask = _item_pair(dims)
    crop = (24, 40) if dims == 2 else (8, 24, 12)  # cropped and padded axes
    for seed in range(6):
        _, out = augment_item(x, mask, crop, EVERYTHING, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.shape == crop
        assert set(np.unique(out).tolist()) <= {0, 2, 5}


@pytest.mark.parametrize("dims, angles, axes", [(2, (90,), (0, 1)), (3, (90, 0, 0), (1, 2)),
                                                (3, (0, 90, 0), (0, 2)), (3, (0, 0, 90), (0, 1))])
def test_rotation_by_90_degrees_matches_rot90(dims, angles, axes):
    x, mask = _item_pair(dims, seed=1)
    shape = (15,) * dims  # a centred odd crop: a 90-degree turn maps it onto itself
    x, mask = x[(slice(None), *(slice(0, n) for n in shape))], mask[tuple(slice(0, n) for n in shape)]
    out, out_mask = resample_crop(x, mask, [7.0] * dims, shape, spatial_matrix(angles))
    np.testing.assert_allclose(out, np.rot90(x, 1, axes=tuple(a + 1 for a in axes)), atol=1e-5)
    assert np.array_equal(out_mask, np.rot90(mask, 1, axes=axes))


@pytest.mark.parametrize("dims", DIMS)
def test_scaling_by_2_shows_the_centre_magnified_twice(dims):
    x, mask = _item_pair(dims, channels=1, seed=2)
    n, size = 9, 17  # the centre's 9 pixels per axis fill the 17-pixel crop
    start = [(s - n) // 2 for s in mask.shape]
    centre = [a + (n - 1) / 2 for a in start]
    out, out_mask = resample_crop(x, mask, centre, (size,) * dims, spatial_matrix((0.0,) * (1 if dims == 2 else 3), 2))
    region = tuple(slice(a, a + n) for a in start)
    np.testing.assert_allclose(out[(slice(None), *[slice(None, None, 2)] * dims)], x[(slice(None), *region)],
                               atol=1e-5)
    between = out[(slice(None), *[slice(1, None, 2)] + [slice(None, None, 2)] * (dims - 1))]
    np.testing.assert_allclose(between, (x[(slice(None), *region)][:, :-1] + x[(slice(None), *region)][:, 1:]) / 2,
                               atol=1e-5)  # linear interpolation halfway between source pixels
    assert np.array_equal(out_mask[tuple([slice(None, None, 2)] * dims)], mask[region])


def test_rotated_crop_corners_show_image_pixels_beyond_the_crop():
    rows = np.repeat(np.arange(128, dtype=np.float32)[:, None], 128, 1)[None]  # value = row index
    out, _ = resample_crop(rows, np.zeros((128, 128), np.uint8), [63.5, 63.5], (32, 32), spatial_matrix((45.0,)))
    assert out.min() < 48 - 5 and out.max() > 79 + 5  # the unrotated crop holds rows 48..79 only


@pytest.mark.parametrize("dims", DIMS)
def test_resampling_past_the_edges_reflects_like_the_padded_crop(dims):
    x, mask = _item_pair(dims, seed=3)
    size = 48  # longer than every axis: reflected on both sides, more than once along the 16-voxel axis
    out, out_mask = resample_crop(x, mask, [n // 2 - 2.5 for n in mask.shape], (size,) * dims, np.eye(dims))
    pads = [(size // 2 + 2 - n // 2, size - n - (size // 2 + 2 - n // 2)) for n in mask.shape]
    np.testing.assert_allclose(out, np.pad(x, [(0, 0), *pads], mode="reflect"), atol=1e-5)
    assert np.array_equal(out_mask, np.pad(mask, pads, mode="reflect"))


def test_a_rotated_crop_is_the_same_read_from_a_larger_image():
    x, mask = _item_pair(2, seed=3)
    matrix = spatial_matrix((30.0,), 1.2)
    whole, whole_mask = resample_crop(x, mask, [15.0, 17.0], (12, 12), matrix)
    part, part_mask = resample_crop(x[:, 8:23, 10:25], mask[8:23, 10:25], [7.0, 7.0], (12, 12), matrix)
    np.testing.assert_allclose(whole, part, atol=1e-5)
    assert np.array_equal(whole_mask, part_mask)


def test_rotations_about_d_only_keep_depth_slices_whole():
    depth = np.broadcast_to(np.arange(10, dtype=np.float32)[:, None, None], (10, 30, 30))
    policy = AugmentPolicy(rotation=1.0, rotation_3d=(180.0, 0.0, 0.0))
    for seed in range(4):
        out, mask = augment_item(depth[None], depth.astype(np.uint8), (6, 16, 16), policy, np.random.default_rng(seed))
        assert np.allclose(out[0], out[0, :, :1, :1], atol=1e-5)  # each D slice still shows one source slice
        assert np.array_equal(mask, np.round(out[0]).astype(np.uint8))


def _forced(dims: int, **fields) -> tuple[np.ndarray, np.ndarray]:
    """(input, output) of ``augment_crop`` on a random (2, *spatial) image with only ``fields`` set."""
    x, mask = _item_pair(dims, seed=5)
    out, out_mask = augment_crop(x, mask, AugmentPolicy(**fields), np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == x.shape and np.array_equal(out_mask, mask)
    return x, out


@pytest.mark.parametrize("dims", DIMS)
def test_noise_adds_gaussian_noise_of_the_drawn_std(dims):
    x, out = _forced(dims, noise=1.0, noise_std=(0.3, 0.3))
    assert abs(float(np.std(out - x)) - 0.3) < 0.02 and abs(float(np.mean(out - x))) < 0.02


@pytest.mark.parametrize("dims", DIMS)
def test_blur_lowers_high_frequency_energy(dims):
    x, out = _forced(dims, blur=1.0, blur_per_channel=1.0, blur_sigma=(1.0, 1.0))
    assert _high_frequency(out) < 0.3 * _high_frequency(x)
    assert abs(float(out.mean() - x.mean())) < 0.02  # a normalised kernel keeps the mean


@pytest.mark.parametrize("dims", DIMS)
def test_low_resolution_removes_detail_and_keeps_the_coarse_image(dims):
    grids = np.indices((16, 18, 17)[3 - dims:], dtype=np.float32)
    coarse = grids.sum(0) / 10  # a ramp, the same at any resolution
    x = np.stack([coarse + 0.5 * (grids.sum(0) % 2)] * 2)  # plus a one-pixel checkerboard
    policy = AugmentPolicy(low_resolution=1.0, low_resolution_per_channel=1.0, low_resolution_zoom=(0.5, 0.5))
    out, _ = augment_crop(x, np.zeros(x.shape[1:], np.uint8), policy, np.random.default_rng(0))
    assert _high_frequency(out) < 0.3 * _high_frequency(x)
    assert float(np.corrcoef(coarse.ravel(), out[0].ravel())[0, 1]) > 0.95


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("name", ["gamma", "gamma_inverted"])
def test_gamma_keeps_each_channels_min_max_range(dims, name):
    x, out = _forced(dims, **{name: 1.0, "gamma_range": (1.5, 1.5)})
    for c in range(len(x)):
        np.testing.assert_allclose([out[c].min(), out[c].max()], [x[c].min(), x[c].max()], atol=1e-5)
    assert np.abs(out - x).max() > 0.1
    below_mid = (out - x).mean() < 0  # gamma 1.5 darkens mid-tones; of the inverted image, brightens them
    assert below_mid == (name == "gamma")


@pytest.mark.parametrize("dims", DIMS)
def test_brightness_scales_each_channel_and_contrast_keeps_its_range(dims):
    x, out = _forced(dims, brightness=1.0)
    for c in range(len(x)):
        factor = float(np.median(out[c] / x[c]))
        assert 0.75 <= factor <= 1.25 and np.allclose(out[c], x[c] * factor, atol=1e-5)
    x, out = _forced(dims, contrast=1.0, contrast_range=(1.2, 1.2))
    assert x.min() <= out.min() and out.max() <= x.max()
    assert out.std() > x.std()


def _original_item(x, mask, crop_shape, augment: bool, rng):
    """The augmentation before ``AugmentPolicy`` (edgeunet 0.x ``crop_or_pad`` + ``augment_pair`` /
    ``crop_or_pad_patch`` + ``augment_volume``), kept verbatim to pin "basic" and "none"."""
    pads, cuts = [], []
    for n, s in zip(mask.shape, crop_shape):
        if n < s:
            before = int(rng.integers(0, s - n + 1))
            pads.append((before, s - n - before)), cuts.append(slice(0, s))
        else:
            start = int(rng.integers(0, n - s + 1))
            pads.append((0, 0)), cuts.append(slice(start, start + s))
    if any(pad != (0, 0) for pad in pads):
        mode = "reflect" if min(mask.shape) > 1 else "edge"
        x, mask = np.pad(x, ((0, 0), *pads), mode=mode), np.pad(mask, pads, mode=mode)
    x, mask = x[(slice(None), *cuts)], mask[tuple(cuts)]
    if not augment:
        return x, mask
    k = int(rng.integers(4)) if x.shape[-1] == x.shape[-2] else 2 * int(rng.integers(2))
    x, mask = np.rot90(x, k, axes=(-2, -1)), np.rot90(mask, k, axes=(-2, -1))
    for axis in range(mask.ndim) if mask.ndim == 3 else [1]:
        if rng.random() < 0.5:
            x, mask = np.flip(x, axis + 1), np.flip(mask, axis)
    gain, offset = rng.uniform(0.9, 1.1), rng.uniform(-0.1, 0.1)
    return (x * np.float32(gain) + np.float32(offset)).astype(np.float32, copy=False), mask


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("augment, original", [("basic", True), (True, True), ("none", False), (False, False)])
def test_basic_and_none_equal_the_original_augmentation(dims, augment, original):
    x, mask = _item_pair(dims, seed=6)
    if dims == 2:
        ds = SegmentationDataset([("a", x[0], mask)], img_size=32, augment=augment, seed=9, length=8)  # H padded
    else:
        ds = VolumeDataset([("a", x[0], mask)], (20, 12, 20), augment=augment, seed=9, length=8)  # D, W padded
    ds._full = lambda key: (x, mask)  # the items are cut from this exact float image
    for index in range(len(ds)):
        rng = np.random.default_rng([9, 0, index, ds._RNG_TAG])
        want_x, want_mask = _original_item(x, mask, ds.crop_shape, original, rng)
        got_x, got_mask = ds[index]
        assert np.array_equal(got_x.numpy(), want_x) and np.array_equal(got_mask.numpy(), want_mask)


def test_unknown_preset_names_the_choices():
    with pytest.raises(UserError, match=r"^augment must be one of none, basic, nnunet \(got 'strong'\)$"):
        augment_policy("strong")
    with pytest.raises(UserError, match=r"augment must be one of none, basic, nnunet \(got 'heavy'\)"):
        SyntheticDataset(2, img_size=16, augment="heavy")


def test_bad_policy_fields_name_the_field_and_the_fix():
    with pytest.raises(UserError, match=r"^augmentation blur must be a probability from 0 to 1, got 1.5$"):
        AugmentPolicy(blur=1.5)
    with pytest.raises(UserError, match=r"augmentation scale must be a range \(low, high\) with low <= high"):
        AugmentPolicy(scale=(1.4, 0.7))
    with pytest.raises(UserError, match=r"augmentation rotation_3d must be 3 angles in degrees from 0 to 180"):
        AugmentPolicy(rotation_3d=(30.0, 30.0))
    with pytest.raises(UserError, match=r"unknown augmentation field\(s\) strength"):
        augment_policy({"strength": 2})


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_presets_round_trip_through_to_dict(name):
    policy = AUGMENTATIONS[name]
    assert augment_policy(policy.to_dict()) == policy
    assert augment_policy(name) is policy


def test_build_functions_pass_the_augment_keyword():
    train, _, _ = build_datasets("synthetic", img_size=16, samples_per_epoch=2, val_samples=1, augment="nnunet")
    assert train.augment == AUGMENTATIONS["nnunet"]
    assert build_datasets("synthetic", img_size=16, samples_per_epoch=2, val_samples=1)[0].augment.rotate90
    train, _, _ = build_datasets("synthetic3d", img_size=8, samples_per_epoch=2, val_samples=1, augment="none",
                                 spatial_dims=3)
    assert train.augment == AUGMENTATIONS["none"]
