"""Training Datasets: crop/pad shapes, aligned augmentation, determinism, splits."""

import numpy as np
import pytest
import torch

from edgeunet.data.augment import AUGMENTATIONS, augment_crop, crop_or_pad
from edgeunet.data.dataset import SegmentationDataset, SyntheticDataset, build_datasets
from edgeunet.data.io import write_image, write_mask
from edgeunet.errors import UserError
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING


def _l_shape(size=24):
    """An L-shaped pattern: no rotation or flip maps it onto itself."""
    pattern = np.zeros((size, size), np.uint8)
    pattern[3:size - 3, 4:8] = 1
    pattern[size - 7:size - 3, 4:size - 5] = 1
    return pattern


def _folder(root, count, size=16):
    for i in range(count):
        write_image(root / "images" / f"s{i:02d}.png", np.full((size, size), 10 * i, np.uint8))
        write_mask(root / "masks" / f"s{i:02d}.png", np.eye(size, dtype=np.uint8))
    return root


def test_larger_image_is_cropped():
    rng = np.random.default_rng(0)
    x, mask = crop_or_pad(np.zeros((2, 50, 70), np.float32), np.zeros((50, 70)), 32, rng)
    assert x.shape == (2, 32, 32) and mask.shape == (32, 32)


def test_smaller_image_is_reflect_padded_with_its_mask():
    pattern = _l_shape(20)[:, :15]
    x, mask = crop_or_pad(pattern[None].astype(np.float32), pattern, 32, np.random.default_rng(1))
    assert x.shape == (1, 32, 32) and mask.shape == (32, 32)
    assert np.array_equal(x[0] > 0.5, mask > 0)  # padded pixels keep labels that match
    assert mask.sum() > pattern.sum()  # the reflection shows the pattern again


def test_augmentation_keeps_image_and_mask_aligned():
    pattern = _l_shape()
    orientations = set()
    for seed in range(12):
        x, mask = augment_crop(pattern[None].astype(np.float32), pattern, AUGMENTATIONS["basic"],
                               np.random.default_rng(seed))
        middle = (x.max() + x.min()) / 2  # the jitter moves both levels alike
        assert np.array_equal(x[0] > middle, mask > 0)
        orientations.add(mask.tobytes())
    assert len(orientations) >= 4


def test_segmentation_dataset_items_are_aligned_tensors():
    image = (_l_shape(40) * 200 + 20).astype(np.uint8)
    ds = SegmentationDataset([("l", image, _l_shape(40))], img_size=32, in_channels=1, seed=3, length=6)
    for index in range(len(ds)):
        x, y = ds[index]
        assert x.dtype == torch.float32 and x.shape == (1, 32, 32)
        assert y.dtype == torch.int64 and y.shape == (32, 32)
        assert torch.equal(x[0] > (x.max() + x.min()) / 2, y > 0)


def test_same_seed_and_epoch_give_the_same_item_and_epochs_differ():
    image = np.random.default_rng(0).integers(0, 255, (48, 48)).astype(np.uint8)
    def make():
        return SegmentationDataset([("a", image, np.zeros((48, 48), np.int64))], img_size=24, seed=5)

    a, b = make(), make()
    assert torch.equal(a[0][0], b[0][0])
    b.set_epoch(1)
    assert not torch.equal(a[0][0], b[0][0])


def test_segmentation_dataset_reads_files_and_checks_channels(tmp_path):
    _folder(tmp_path, 1)
    ds = SegmentationDataset([(tmp_path / "images" / "s00.png", tmp_path / "masks" / "s00.png")], 16, in_channels=3)
    with pytest.raises(UserError, match="sample s00: the image has 1 channel"):
        ds[0]


def test_synthetic_dataset_generates_deterministic_crops():
    ds = SyntheticDataset(4, img_size=32, seed=2, num_classes=3, sample_size=48)
    x, y = ds[1]
    assert x.shape == (1, 32, 32) and y.shape == (32, 32) and int(y.max()) <= 2
    assert torch.equal(x, SyntheticDataset(4, img_size=32, seed=2, num_classes=3, sample_size=48)[1][0])


def test_val_split_is_deterministic_and_disjoint(tmp_path):
    _folder(tmp_path, 20)
    def names(samples):
        return [s[0] for s in samples]

    train_a, val_a, info = build_datasets(tmp_path, img_size=16, val_fraction=0.2, seed=1)
    _, val_b, _ = build_datasets(tmp_path, img_size=16, val_fraction=0.2, seed=1)
    _, val_c, _ = build_datasets(tmp_path, img_size=16, val_fraction=0.2, seed=2)
    assert names(val_a) == names(val_b) and names(val_a) != names(val_c)
    assert len(val_a) == 4 and info["n_train"] == 16 and info["n_val"] == 4
    assert not set(names(val_a)) & {s[0] for s in train_a.samples}


def test_tiny_folder_still_gets_one_val_sample(tmp_path):
    _folder(tmp_path, 2)
    _, val, info = build_datasets(tmp_path, img_size=16, val_fraction=0.01)
    assert len(val) == 1 and info["n_train"] == 1


def test_val_folder_is_used_when_given(tmp_path):
    _folder(tmp_path / "train", 3)
    _folder(tmp_path / "other", 2)
    _, val, info = build_datasets(tmp_path / "train", val=tmp_path / "other", img_size=16)
    assert [s[0] for s in val] == ["s00", "s01"] and info["n_train"] == 3


def test_bad_folder_raises_listing_the_problems(tmp_path):
    _folder(tmp_path, 2)
    write_image(tmp_path / "images" / "extra.png", np.zeros((16, 16), np.uint8))
    with pytest.raises(UserError, match=r"has 1 problem: images/extra\.png: no mask \(add masks/extra\.png\)"):
        build_datasets(tmp_path, img_size=16)


def test_synthetic_build_gives_info_and_val_samples():
    train, val, info = build_datasets("synthetic", img_size=32, num_classes=3, samples_per_epoch=20)
    assert len(train) == 20 and len(val) == 8
    assert info == {"num_classes": 3, "in_channels": 1, "class_names": ["background", "nucleus", "elongated"],
                    "n_train": 20, "n_val": 8, "preprocessing": DEFAULT_PREPROCESSING}
    assert val[0][1].shape == (32, 32) and val[0][1].dtype == np.uint16


def test_synthetic_val_count_can_be_set():
    _, val, info = build_datasets("synthetic", img_size=16, samples_per_epoch=4, val_samples=3)
    assert len(val) == 3 and info["n_val"] == 3


def test_preload_caches_every_image_once():
    ds = SyntheticDataset(3, img_size=16)
    assert ds.preload() is True
    before = ds[2][0]
    ds._load = None  # any further generation would fail: items must come from the cache
    assert torch.equal(ds[2][0], before)


def test_train_and_val_subfolders_are_picked_up(tmp_path):
    _folder(tmp_path / "train", 3)
    _folder(tmp_path / "val", 1)
    _, val, info = build_datasets(tmp_path, img_size=16)
    assert len(val) == 1 and info["n_train"] == 3
