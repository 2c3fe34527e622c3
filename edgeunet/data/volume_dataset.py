"""Torch training Datasets of volumes: whole-volume preprocessing, then a random patch and augmentation.

The 3-D sibling of ``edgeunet.data.dataset`` (same randomness, cache and ``set_epoch`` rules). Each
item is preprocessed as a WHOLE volume (``preprocess_volume``, the call inference makes), then cut
to ``patch`` = (D, H, W): longer axes cropped at a random offset, shorter ones reflect-padded (mask
alike), and augmented by the ``augment`` policy, the 2-D mechanism with the dimension a parameter
(``edgeunet.data.augment``). "basic" flips along each axis and turns the H-W plane by k*90 degrees
(k in {0, 2} when H != W), never through D; "nnunet" also rotates up to 30 degrees about each axis
(``AugmentPolicy.rotation_3d``: set the H and W angles to 0 when voxels are much longer in D).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from operator import attrgetter

import numpy as np

from ..errors import UserError
from .augment import AugmentPolicy
from .dataset import _CropDataset, _split_pairs, _SyntheticItems
from .fingerprint import training_normalization
from .sources import SYNTHETIC3D, data_facts, is_synthetic, is_synthetic3d, synthetic_class_count
from .synthetic3d import synthetic_volume
from .volume_sources import VolumeSample, holds_nifti, load_volume_samples, read_volume_pairs, volume_size
from .volumes_prep import preprocess_volume

logger = logging.getLogger(__name__)
FINGERPRINT_SYNTHETIC3D = 4  # generated training volumes the fingerprint of synthetic3d reads


class _PatchDataset(_CropDataset):
    """Items (x (C, D, H, W) float32, y (D, H, W) int64) cut to ``patch`` from whole preprocessed volumes."""

    _RNG_TAG = 0x3DA7A

    def __init__(self, length: int, patch, seed: int, augment: str | AugmentPolicy | bool, unique: int,
                 preprocessing: dict | None):
        self.patch = volume_size(patch)
        super().__init__(length, max(self.patch), seed, augment, unique, preprocessing)

    crop_shape = property(attrgetter("patch"))


class VolumeDataset(_PatchDataset):
    """Training patches from volume samples or files.

    Args:
        samples: ``(name, volume, mask)`` arrays or ``(name, volume_path, mask_path)`` files.
        patch: (D, H, W) training patch in voxels (one int: a cube).
        preprocessing: Preprocessing spec; None means DEFAULT_PREPROCESSING.
        in_channels: When given, every volume's channel count is checked against it.
        augment: Augmentation preset name, ``AugmentPolicy``, or True/False ("basic"/"none").
        seed: Seed of the patch and augmentation randomness.
        length: Items per epoch (default: one per sample); item i uses sample i % len(samples).
    """

    def __init__(self, samples: list, patch, preprocessing: dict | None = None, in_channels: int | None = None,
                 augment: str | AugmentPolicy | bool = "basic", seed: int = 0, length: int | None = None):
        if not samples:
            raise UserError("no training volumes: pass a data set with at least one volume/mask pair")
        self.samples = list(samples)
        self.in_channels = in_channels
        super().__init__(length or len(self.samples), patch, seed, augment, len(self.samples), preprocessing)

    def _load(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        name, volume, mask = self.samples[key]
        if not isinstance(volume, np.ndarray):
            (_, volume, mask), = read_volume_pairs([(name, volume, mask)])
        if volume.shape[:3] != mask.shape:
            raise UserError(f"volume {name}: {volume.shape[:3]} vs mask {mask.shape}: a mask must have its "
                            "volume's (D, H, W)")
        return preprocess_volume(volume, self.preprocessing, self.in_channels), np.asarray(mask)


class SyntheticVolumeDataset(_SyntheticItems, _PatchDataset):
    """Synthetic training volumes generated on first use; item i is always synthetic volume i.

    Args:
        length: Items (volumes) per epoch.
        patch: (D, H, W) training patch.
        seed: Data seed (volume i is ``synthetic_volume(i, volume_shape, seed, num_classes)``) and
            seed of the patch/augmentation randomness.
        num_classes: 2 to 4.
        preprocessing: Preprocessing spec; None means DEFAULT_PREPROCESSING.
        augment: Augmentation preset name, ``AugmentPolicy``, or True/False ("basic"/"none").
        volume_shape: (D, H, W) of the generated volumes (default ``patch``).
    """

    def __init__(self, length: int, patch, seed: int = 0, num_classes: int = 2, preprocessing: dict | None = None,
                 augment: str | AugmentPolicy | bool = "basic", volume_shape=None):
        self.num_classes = synthetic_class_count(num_classes)
        self.volume_shape = volume_size(volume_shape or patch)
        super().__init__(length, patch, seed, augment, length, preprocessing)

    generate, prepare = staticmethod(synthetic_volume), staticmethod(preprocess_volume)
    size = property(attrgetter("volume_shape"))


def check_volume_data(data, what: str = "--data") -> None:
    """UserError naming the fix when ``data`` is 2-D (``"synthetic"``) but a 3-D model is trained on it."""
    if is_synthetic(data):
        raise UserError(f"{what} synthetic holds 2-D images but the model is 3-D: use {what} synthetic3d "
                        "(synthetic volumes), or a 2-D model such as --model unet-ds")


def check_image_data(data, what: str = "--data") -> None:
    """UserError naming the fix when ``data`` holds volumes but a 2-D model is trained on it."""
    if is_synthetic3d(data):
        raise UserError(f"{what} synthetic3d holds volumes but the model is 2-D: use a 3-D model "
                        f"(--model unet3d-ds or unet3d), or {what} synthetic")
    if not is_synthetic(data) and holds_nifti(data):
        raise UserError(f"{what} {data} holds volumes (NIfTI files) but the model is 2-D: use a 3-D model "
                        "(--model unet3d-ds or unet3d)")


def build_volume_datasets(data: str | os.PathLike, val: str | os.PathLike | None = None, val_fraction: float = 0.1,
                          patch=(32, 32, 32), num_classes: int | None = None, preprocessing: dict | None = None,
                          seed: int = 0, samples_per_epoch: int | None = None, volume_shape=None,
                          val_samples: int | None = None, augment: str | AugmentPolicy | bool = "basic",
                          normalize: str | None = None, encoder_normalization: Callable | None = None,
                          min_samples_per_epoch: int = 0) -> tuple[_PatchDataset, list[VolumeSample], dict]:
    """The training Dataset, the validation volumes and the data facts, as the 3-D trainer uses them.

    ``"synthetic3d"``: ``samples_per_epoch`` (default 32) volumes of ``volume_shape`` (default
    ``patch``); validation: ``val_samples`` (default 4) volumes of the "val" split seed. A folder is
    checked with ``check_volume_folder`` first (UserError listing every problem); validation comes
    from ``val``, else ``DIR/val``, else a seeded ``val_fraction`` split. ``augment`` is the training
    items' augmentation: a preset of ``edgeunet.data.augment.AUGMENTATIONS`` or an ``AugmentPolicy``.
    ``normalize``, ``encoder_normalization`` and ``min_samples_per_epoch`` are as for ``build_datasets``: with
    ``preprocessing`` None, the spec comes from the fingerprint of the training volumes.

    Returns:
        (train_ds, val_set, info): val_set lists raw (name, volume, mask) whole volumes;
        info = dict(num_classes, in_channels, class_names, n_train, n_val, preprocessing[, normalization]).
    """
    from .sources import dataset_folder
    from .validate3d import check_volume_folder

    check_volume_data(data)
    if val is not None:
        check_volume_data(val, "--val")
    shape = volume_size(volume_shape or patch)
    normalization = None
    if is_synthetic3d(data):
        num_classes, in_channels, class_names = data_facts(None, num_classes)
        if preprocessing is None and normalize is not None:
            n = min(int(samples_per_epoch or 32), FINGERPRINT_SYNTHETIC3D)
            preprocessing, normalization = training_normalization(
                load_volume_samples(SYNTHETIC3D, n, shape, seed, "train", num_classes), 3, normalize,
                encoder_normalization)
        train_ds = SyntheticVolumeDataset(int(samples_per_epoch or 32), patch, seed, num_classes, preprocessing,
                                          augment, shape)
        n_train = len(train_ds)
        if val is None or is_synthetic3d(val):
            val_set = load_volume_samples(SYNTHETIC3D, val_samples or 4, shape, seed, "val", num_classes)
        else:
            val_set = read_volume_pairs(check_volume_folder(dataset_folder(val, "val"), num_classes).pairs)
    else:
        report = check_volume_folder(dataset_folder(data, "train"), num_classes)
        num_classes, in_channels, class_names = data_facts(report, num_classes)
        val_folder = dataset_folder(data, "val")
        if val is None and val_folder == report.folder:
            train_pairs, val_pairs = _split_pairs(report.pairs, val_fraction, seed)
            val_set = read_volume_pairs(val_pairs)
        elif val is not None and is_synthetic3d(val):
            train_pairs = report.pairs
            val_set = load_volume_samples(SYNTHETIC3D, val_samples or 4, shape, seed, "val", num_classes)
        else:
            train_pairs = report.pairs
            val_report = check_volume_folder(val if val is not None else val_folder, num_classes)
            val_set = read_volume_pairs(val_report.pairs)
        if preprocessing is None and normalize is not None:
            preprocessing, normalization = training_normalization(train_pairs, 3, normalize,
                                                                  encoder_normalization)
        n_train = len(train_pairs)
        train_ds = VolumeDataset(train_pairs, patch, preprocessing, in_channels, augment, seed,
                                 samples_per_epoch or max(n_train, int(min_samples_per_epoch)))
        logger.info("training on %d volumes from %s, validating on %d", n_train, report.folder, len(val_set))
    info = {"num_classes": num_classes, "in_channels": in_channels, "class_names": list(class_names),
            "n_train": n_train, "n_val": len(val_set), "spatial_dims": 3, "preprocessing": dict(train_ds.preprocessing)}
    if normalization is not None:
        info["normalization"] = normalization
    return train_ds, val_set, info
