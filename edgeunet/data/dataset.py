"""Torch training Datasets of images or volumes: whole-sample preprocessing, then a crop (patch) and augmentation.

Each item is preprocessed as a FULL image (``edgeunet.runtime.preprocess.preprocess``, the
same call inference makes; volumes: ``preprocess_volume``), then cut to ``img_size`` (volumes: to
``patch`` = (D, H, W)):

* larger sides are cropped at a random offset;
* smaller sides are padded by reflection, image and mask alike (so padded pixels keep
  labels that match what they show), at a random offset;
* then augmented by the ``augment`` policy (``edgeunet.data.augment``: a preset name such as "basic" or
  "nnunet", an ``AugmentPolicy``, or True/False for "basic"/"none"); rotations and scaling sample the
  crop from the full image (``augment_item``). For volumes "basic" flips along each axis and turns the H-W
  plane by k*90 degrees (k in {0, 2} when H != W), never through D; "nnunet" also rotates up to 30 degrees
  about each axis (``AugmentPolicy.rotation_3d``: set the H and W angles to 0 when voxels are much longer in D).

Randomness comes from ``numpy.random.default_rng([seed, epoch, index])``: the same seed gives
the same items in any DataLoader worker layout. Call ``set_epoch(epoch)`` before each epoch
(with ``persistent_workers=False``, so workers see the new epoch).

Preprocessed full images are cached in memory, as they are first used, when all of them fit
in CACHE_LIMIT_BYTES; with DataLoader workers call ``preload()`` first so that the workers
inherit the filled cache instead of each refilling its own every epoch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from ..runtime.preprocess import DEFAULT_PREPROCESSING, preprocess
from .augment import AugmentPolicy, augment_item, augment_policy
from .fingerprint import training_normalization
from .sources import (
    SYNTHETIC_SOURCES,
    Sample,
    check_data,
    data_facts,
    dataset_folder,
    load_samples,
    read_pairs,
    synthetic_class_count,
    volume_size,
)
from .synthetic import synthetic_sample, synthetic_volume
from .validate import check_folder, layout
from .volumes_prep import preprocess_volume

logger = logging.getLogger(__name__)
CACHE_LIMIT_BYTES = 1 << 30  # preprocessed full images stay in memory when all of them fit in this


class _CropDataset(torch.utils.data.Dataset):
    """Shared crop/augment/cache logic; subclasses implement ``_load(key) -> (x, mask)``; volumes override
    ``crop_shape`` and ``_RNG_TAG``."""

    def __init__(self, length: int, img_size: int, seed: int, augment: str | AugmentPolicy | bool, unique: int,
                 preprocessing: dict | None):
        if int(length) < 1:
            raise UserError(f"a training data set needs at least 1 sample, got length {length}")
        if int(img_size) < 1:
            raise UserError(f"img_size must be a positive number of pixels, got {img_size}")
        self.length, self.img_size, self.seed = int(length), int(img_size), int(seed)
        self.augment = augment_policy(augment)
        self.epoch = 0
        self._unique = int(unique)
        self.preprocessing = dict(preprocessing or DEFAULT_PREPROCESSING)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
        self._cache_decided = False

    def set_epoch(self, epoch: int) -> None:
        """Selects the augmentation randomness of ``epoch`` (same seed and epoch -> same items)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _key(self, index: int) -> int:
        """The sample (and cache key) of item ``index``: items cycle through the ``unique`` samples."""
        return index % self._unique

    def _load(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _full(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """The preprocessed full image (C, H, W) float32 and mask (H, W), from memory when cached."""
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        x, mask = self._load(key)
        mask = mask.astype(np.uint8 if mask.size and 0 <= mask.min() and mask.max() < 256 else np.int64, copy=False)
        if not self._cache_decided:  # estimate the total from the first item
            self._cache_decided = True
            total = (x.nbytes + mask.nbytes) * self._unique
            self._cache = {} if total <= CACHE_LIMIT_BYTES else None
            logger.info("data set of %d images, about %.0f MB preprocessed: %s", self._unique, total / 1e6,
                     "cached in memory" if self._cache is not None else "read on every access")
        if self._cache is not None:
            self._cache[key] = (x, mask)
        return x, mask

    def preload(self) -> bool:
        """Preprocesses every image now when they fit in memory (before forking DataLoader workers).

        Returns:
            True when all images are now cached in memory.
        """
        self._full(self._key(0))
        if self._cache is None:
            return False
        for key in sorted({self._key(i) for i in range(self.length)}):
            self._full(key)
        return True

    _RNG_TAG = 0xDA7A  # last word of the item randomness' seed: 2-D and 3-D items differ for the same seed

    @property
    def crop_shape(self) -> tuple[int, ...]:
        """The spatial shape of an item: (S, S) with S = img_size (volumes: the patch)."""
        return (self.img_size, self.img_size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (x (C, S, S) float32, y (S, S) int64) with S = img_size (volumes: (C, *patch), patch)."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a data set of {self.length}")
        x, mask = self._full(self._key(index))
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, index, self._RNG_TAG])
        x, mask = augment_item(x, mask, self.crop_shape, self.augment, rng)
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64)))


class _FileItems:
    """Mixin of the Datasets of a data set: item i is sample i % len(samples), arrays or files read when first
    needed."""

    spatial_dims: int
    prepare: Callable[[np.ndarray, dict, int | None], np.ndarray]  # (raw, preprocessing, in_channels) -> (C, ...)

    def _load(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        name, image, mask = self.samples[key]
        spec = layout(self.spatial_dims)
        image = image if isinstance(image, np.ndarray) else spec.read_image(image)
        mask = mask if isinstance(mask, np.ndarray) else spec.read_mask(mask)
        if image.shape[:self.spatial_dims] != mask.shape:
            raise UserError(f"sample {name}: {spec.item} {image.shape[:self.spatial_dims]} vs mask {mask.shape}: "
                            f"a mask must match its {spec.item}'s {spec.axes}")
        try:
            x = self.prepare(image, self.preprocessing, self.in_channels)
        except ValueError as exc:
            raise UserError(f"sample {name}: {exc}") from exc
        return x, np.asarray(mask)


class SegmentationDataset(_FileItems, _CropDataset):
    """Training items from in-memory samples or image/mask files.

    Args:
        samples: Items ``(name, image, mask)`` with arrays, or ``(name, image_path, mask_path)``
            / ``(image_path, mask_path)`` with files (read when first needed).
        img_size: Side S of the square training crop, in pixels.
        preprocessing: Preprocessing spec; None means DEFAULT_PREPROCESSING.
        in_channels: When given, every image's channel count is checked against it.
        augment: Augmentation preset name, ``AugmentPolicy``, or True/False ("basic"/"none").
        seed: Seed of the crop and augmentation randomness.
        length: Items per epoch (default: one per sample); item i uses sample i % len(samples).
    """

    def __init__(self, samples: list, img_size: int, preprocessing: dict | None = None,
                 in_channels: int | None = None, augment: str | AugmentPolicy | bool = "basic", seed: int = 0,
                 length: int | None = None):
        if not samples:
            raise UserError("no training samples: pass a data set with at least one image/mask pair")
        self.samples = [tuple(item) if len(item) == 3 else (Path(item[0]).stem, *item) for item in samples]
        self.in_channels = in_channels
        super().__init__(length or len(self.samples), img_size, seed, augment, len(self.samples), preprocessing)

    spatial_dims, prepare = 2, staticmethod(preprocess)


class _SyntheticItems:
    """Mixin of the synthetic Datasets: item i is synthetic sample i, generated when first needed."""

    generate: Callable[[int, Any, int, int], tuple[np.ndarray, np.ndarray]]  # (i, size, seed, K) -> (raw, mask)
    prepare: Callable[[np.ndarray, dict, int], np.ndarray]  # (raw, preprocessing, in_channels) -> preprocessed
    size: Any  # what ``generate`` takes as the size

    def _load(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        array, mask = self.generate(key, self.size, self.seed, self.num_classes)
        return self.prepare(array, self.preprocessing, 1), mask


class SyntheticDataset(_SyntheticItems, _CropDataset):
    """Synthetic training items generated on the fly; item i is always synthetic sample i.

    Args:
        length: Items per epoch.
        img_size: Side S of the training crop, in pixels.
        seed: Data seed (sample i is ``synthetic_sample(i, sample_size, seed, num_classes)``)
            and seed of the crop/augmentation randomness.
        num_classes: 2 to 4 (see ``edgeunet.data.synthetic``).
        preprocessing: Preprocessing spec; None means DEFAULT_PREPROCESSING.
        augment: Augmentation preset name, ``AugmentPolicy``, or True/False ("basic"/"none").
        sample_size: Side of the generated images (default ``img_size``); larger ones are cropped.
    """

    def __init__(self, length: int, img_size: int, seed: int = 0, num_classes: int = 2,
                 preprocessing: dict | None = None, augment: str | AugmentPolicy | bool = "basic",
                 sample_size: int | None = None):
        self.num_classes = synthetic_class_count(num_classes)
        self.sample_size = int(sample_size or img_size)
        super().__init__(length, img_size, seed, augment, length, preprocessing)

    generate, prepare = staticmethod(synthetic_sample), staticmethod(preprocess)
    size = property(attrgetter("sample_size"))


class _PatchDataset(_CropDataset):
    """Items (x (C, D, H, W) float32, y (D, H, W) int64) cut to ``patch`` from whole preprocessed volumes."""

    _RNG_TAG = 0x3DA7A

    def __init__(self, length: int, patch, seed: int, augment: str | AugmentPolicy | bool, unique: int,
                 preprocessing: dict | None):
        self.patch = volume_size(patch)
        super().__init__(length, max(self.patch), seed, augment, unique, preprocessing)

    crop_shape = property(attrgetter("patch"))


class VolumeDataset(_FileItems, _PatchDataset):
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

    spatial_dims, prepare = 3, staticmethod(preprocess_volume)


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


def _split_pairs(pairs: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic (seed) train/val split of a list; at least one item on each side."""
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be between 0 and 1, got {val_fraction}: e.g. 0.1, or pass a val folder")
    if len(pairs) < 2:
        raise UserError(f"only {len(pairs)} image/mask pair: add images or pass a separate val folder")
    n_val = min(len(pairs) - 1, max(1, round(len(pairs) * val_fraction)))
    order = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5917]).permutation(len(pairs))
    val = set(order[:n_val].tolist())
    return [p for i, p in enumerate(pairs) if i not in val], [p for i, p in enumerate(pairs) if i in val]


# Per dimensionality: (folder Dataset, synthetic Dataset, synthetic items per epoch, synthetic samples fingerprinted).
DATASETS = {2: (SegmentationDataset, SyntheticDataset, 256, 16), 3: (VolumeDataset, SyntheticVolumeDataset, 32, 4)}
SYNTHETIC_VAL_VOLUMES = 4  # synthetic validation volumes when val_samples is None


def _folder_val(val: str | os.PathLike, num_classes: int, in_channels: int, spatial_dims: int) -> list[Sample]:
    report = check_folder(dataset_folder(val, "val"), num_classes, spatial_dims)
    if report.pairs and report.in_channels != in_channels:
        raise UserError(f"validation {report.item}s in {val} have {report.in_channels} channel(s) but training "
                        f"{report.item}s have {in_channels}: give both the same channel count")
    return read_pairs(report.pairs, spatial_dims)


def _folder_split(data, val, report, val_fraction: float, seed: int, val_samples: int | None, size,
                  num_classes: int, spatial_dims: int) -> tuple[list, list[Sample]]:
    """Training pairs and validation samples of a folder: ``val``, else DIR/val, else a seeded split."""
    val_folder = dataset_folder(data, "val")
    source = SYNTHETIC_SOURCES[spatial_dims].name
    if val is None and val_folder == report.folder:
        train_pairs, val_pairs = _split_pairs(report.pairs, val_fraction, seed)
        return train_pairs, read_pairs(val_pairs, spatial_dims)
    if val is not None and isinstance(val, str) and val == source:
        count = val_samples or (SYNTHETIC_VAL_VOLUMES if spatial_dims == 3 else None)
        return report.pairs, load_samples(source, count, size, seed, "val", num_classes, spatial_dims)
    return report.pairs, _folder_val(val if val is not None else val_folder, num_classes, report.in_channels,
                                     spatial_dims)


def build_datasets(data: str | os.PathLike, val: str | os.PathLike | None = None, val_fraction: float = 0.1,
                   img_size=256, num_classes: int | None = None, preprocessing: dict | None = None,
                   seed: int = 0, samples_per_epoch: int | None = None, synthetic_size=None,
                   val_samples: int | None = None, augment: str | AugmentPolicy | bool = "basic",
                   normalize: str | None = None, encoder_normalization: Callable | None = None,
                   min_samples_per_epoch: int = 0, spatial_dims: int = 2) -> tuple[_CropDataset, list[Sample], dict]:
    """The training Dataset, the validation samples and the data facts, as the trainer uses them.

    Synthetic ``data`` (``"synthetic"``; volumes: ``"synthetic3d"``): ``samples_per_epoch`` (default 256 images,
    32 volumes) generated samples of ``synthetic_size`` (default ``img_size``); validation: ``val_samples``
    samples of the "val" split seed (default: max(8, min(64, round(samples_per_epoch * val_fraction))) images,
    4 volumes). Folder ``data``: checked with ``check_folder`` first (UserError listing every problem);
    validation comes from ``val``, else ``DIR/val``, else a seeded ``val_fraction`` split.

    Args:
        data: "synthetic", "synthetic3d" or a folder data set (see ``edgeunet.data.sources``).
        val: Synthetic data or a folder for validation; None picks as described above.
        val_fraction: Share of a folder's pairs held out when there is no val folder.
        img_size: Side of the square training crops, in pixels; volumes: the (D, H, W) training patch (one int:
            a cube).
        num_classes: Class count; None infers it (classes.txt or largest mask id + 1; 2 for synthetic).
        preprocessing: Preprocessing spec; None means DEFAULT_PREPROCESSING, or the one ``normalize`` resolves.
        seed: Seed of the data split, synthetic data and augmentation.
        samples_per_epoch: Training items per epoch (folders default to one per pair, at least
            ``min_samples_per_epoch``).
        synthetic_size: Side (volumes: (D, H, W)) of generated synthetic samples (training and validation).
        val_samples: Number of synthetic validation samples (folders use all held-out pairs).
        augment: Augmentation of the training items: a preset of ``edgeunet.data.augment.AUGMENTATIONS``
            or an ``AugmentPolicy``.
        normalize: With ``preprocessing`` None, a mode of ``edgeunet.data.fingerprint.NORMALIZATIONS``: the spec
            comes from the fingerprint of the training samples (``training_normalization``).
        encoder_normalization: in_channels -> a pretrained encoder's ImageNet ``{"mean", "std"}`` (or None),
            for ``normalize`` (``edgeunet.data.fingerprint.training_normalization``).
        min_samples_per_epoch: The fewest items of a folder epoch when ``samples_per_epoch`` is None.
        spatial_dims: 2 for images, 3 for volumes; data of the other kind is refused (``check_data``).

    Returns:
        (train_ds, val_set, info): val_set is a list of raw (name, image, mask) full images (volumes);
        info = dict(num_classes, in_channels, class_names, n_train, n_val, preprocessing; volumes: spatial_dims 3), and
        ``normalization`` (the record of ``training_normalization``) when ``normalize`` chose the spec.
    """
    check_data(data, spatial_dims)
    if val is not None:
        check_data(val, spatial_dims, "--val")
    folder_dataset, synthetic_dataset, synthetic_epoch, fingerprinted = DATASETS[spatial_dims]
    source = SYNTHETIC_SOURCES[spatial_dims]
    size = source.size(synthetic_size or img_size)
    normalization = None
    if isinstance(data, str) and data == source.name:
        num_classes, in_channels, class_names = data_facts(None, num_classes)
        n_train = int(samples_per_epoch or synthetic_epoch)
        if preprocessing is None and normalize is not None:
            preprocessing, normalization = training_normalization(
                load_samples(source.name, min(n_train, fingerprinted), size, seed, "train", num_classes, spatial_dims),
                spatial_dims, normalize, encoder_normalization)
        train_ds = synthetic_dataset(n_train, img_size, seed, num_classes, preprocessing, augment, size)
        if val is None or (isinstance(val, str) and val == source.name):
            n_val = val_samples or (SYNTHETIC_VAL_VOLUMES if spatial_dims == 3 else
                                    max(8, min(64, round(n_train * val_fraction))))
            val_set = load_samples(source.name, n_val, size, seed, "val", num_classes, spatial_dims)
        else:
            val_set = _folder_val(val, num_classes, in_channels, spatial_dims)
    else:
        report = check_folder(dataset_folder(data, "train"), num_classes, spatial_dims)
        num_classes, in_channels, class_names = data_facts(report, num_classes)
        train_pairs, val_set = _folder_split(data, val, report, val_fraction, seed, val_samples, size, num_classes,
                                             spatial_dims)
        if preprocessing is None and normalize is not None:
            preprocessing, normalization = training_normalization(train_pairs, spatial_dims, normalize,
                                                                  encoder_normalization)
        n_train = len(train_pairs)
        train_ds = folder_dataset(train_pairs, img_size, preprocessing, in_channels, augment, seed,
                                  samples_per_epoch or max(n_train, int(min_samples_per_epoch)))
        logger.info("training on %d %ss from %s, validating on %d", n_train, report.item, report.folder, len(val_set))
    info = {"num_classes": num_classes, "in_channels": in_channels, "class_names": list(class_names),
            "n_train": n_train, "n_val": len(val_set), **({"spatial_dims": 3} if spatial_dims == 3 else {}),
            "preprocessing": dict(train_ds.preprocessing)}
    if normalization is not None:
        info["normalization"] = normalization
    return train_ds, val_set, info

