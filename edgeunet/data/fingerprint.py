"""Data-set fingerprint: what a training set looks like, and the normalization it calls for.

nnU-Net's first step: look at the training data once. ``compute_fingerprint`` reads the samples one at
a time and records sizes, dtypes, per-channel intensity ranges and percentiles, the statistics of the
foreground (mask > 0) and, for volumes, the voxel spacings. ``resolve_normalization`` turns it into a
preprocessing spec (``edgeunet.runtime.preprocess``): ``auto`` picks ``ct`` for CT-like data (signed
integers reaching below -500: Hounsfield units), whose intensities mean the same in every scan, and
``percentile`` (per image) otherwise; ``ct`` clips at the foreground's 0.5th and 99.5th percentiles and
z-scores with the mean and std of the clipped foreground values.

Memory stays bounded: percentiles, means and stds are those of a seeded sample of at most
``SAMPLES_PER_CASE`` values per case (every value of a smaller case), drawn apart for all pixels and for
the foreground, as nnU-Net samples 10,000 foreground voxels per case; minima and maxima are exact.
Samples may be arrays, ``Volume`` objects (which carry their spacing) or file paths, read one at a time.
Numpy only.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import UserError
from ..runtime.preprocess import DEFAULT_PREPROCESSING, MIN_SPREAD
from ..runtime.volume_files import Volume, read_volume
from .io import read_image, read_mask

SAMPLES_PER_CASE = 10_000  # values sampled per case and channel, for all pixels and for the foreground apart
PERCENTILES = (0.5, 1.0, 50.0, 99.0, 99.5, 99.8)
CLIP_PERCENTILES = (0.5, 99.5)  # the ``ct`` clip range (nnU-Net's)
NORMALIZATIONS = ("auto", "percentile", "zscore", "ct")
CT_BELOW = -500.0  # signed integers reaching below this are CT in Hounsfield units (air is -1000)


@dataclass(frozen=True)
class IntensityStats:
    """Statistics of the sampled values of one channel (all pixels, or the foreground).

    Attributes:
        count: Values sampled, over all cases.
        mean: Their mean.
        std: Their standard deviation.
        percentiles: At ``PERCENTILES``.
        clipped_mean: Mean of the values clipped to their ``CLIP_PERCENTILES``.
        clipped_std: Their standard deviation.
    """

    count: int
    mean: float
    std: float
    percentiles: tuple[float, ...]
    clipped_mean: float
    clipped_std: float

    def percentile(self, q: float) -> float:
        """The percentile ``q``, one of ``PERCENTILES``."""
        return self.percentiles[PERCENTILES.index(q)]

    def to_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean, "std": self.std,
                "percentiles": {f"{q:g}": v for q, v in zip(PERCENTILES, self.percentiles)},
                "clipped_mean": self.clipped_mean, "clipped_std": self.clipped_std}


@dataclass(frozen=True)
class ChannelFingerprint:
    """One channel: exact range, statistics of all pixels and of the foreground (None: no mask > 0)."""

    min: float
    max: float
    all: IntensityStats
    foreground: IntensityStats | None

    def to_dict(self) -> dict:
        return {"min": self.min, "max": self.max, "all": self.all.to_dict(),
                "foreground": self.foreground.to_dict() if self.foreground else None}


@dataclass(frozen=True)
class Fingerprint:
    """What ``compute_fingerprint`` found. Sizes and spacings are per axis: (H, W), or (D, H, W) for volumes.

    Attributes:
        count: Number of cases (images or volumes).
        spatial_dims: 2 or 3.
        dtypes: (dtype name, cases) pairs, most common first.
        signed: Whether some case holds signed integers.
        channels: Per channel statistics.
        foreground_fraction: Share of pixels (voxels) with mask > 0, over all cases.
        size_median, size_min, size_max: Median, smallest and largest size per axis, in pixels (voxels).
        spacing_median, spacing_min, spacing_max: Voxel size per axis, in ``spacing_unit``; None for images
            and for volumes given as bare arrays.
        spacing_unit: The most common unit of the spacings ("" when unknown).
    """

    count: int
    spatial_dims: int
    dtypes: tuple[tuple[str, int], ...]
    signed: bool
    channels: tuple[ChannelFingerprint, ...]
    foreground_fraction: float
    size_median: tuple[float, ...]
    size_min: tuple[int, ...]
    size_max: tuple[int, ...]
    spacing_median: tuple[float, ...] | None = None
    spacing_min: tuple[float, ...] | None = None
    spacing_max: tuple[float, ...] | None = None
    spacing_unit: str = ""

    @property
    def has_foreground(self) -> bool:
        return self.channels[0].foreground is not None

    def to_dict(self) -> dict:
        """A JSON-able dict of every number."""
        spacing = None if self.spacing_median is None else {
            "median": list(self.spacing_median), "min": list(self.spacing_min), "max": list(self.spacing_max),
            "unit": self.spacing_unit}
        return {"count": self.count, "spatial_dims": self.spatial_dims, "dtypes": dict(self.dtypes),
                "signed": self.signed, "channels": [c.to_dict() for c in self.channels],
                "foreground_fraction": self.foreground_fraction,
                "size": {"median": list(self.size_median), "min": list(self.size_min), "max": list(self.size_max)},
                "spacing": spacing}


class _Case(NamedTuple):
    """What one case leaves behind: its facts and bounded samples of its values."""

    size: tuple[int, ...]
    dtype: np.dtype
    low: np.ndarray  # (C,) exact minimum
    high: np.ndarray  # (C,) exact maximum
    values: np.ndarray  # (n, C) float64 sample of all pixels
    foreground: np.ndarray  # (m, C) float64 sample of the foreground
    foreground_pixels: int
    spacing: tuple[float, ...] | None
    unit: str


def compute_fingerprint(samples: Iterable, spatial_dims: int = 2, seed: int = 0,
                        samples_per_case: int = SAMPLES_PER_CASE) -> Fingerprint:
    """The fingerprint of the training samples.

    Args:
        samples: ``(name, image, mask)`` triples as ``sources.load_samples`` and ``sources.read_pairs`` give
            them, or ``(name, image_path, mask_path)`` training pairs (read one at a time). ``image``:
            (H, W[, C]) or, for volumes, (D, H, W[, C]) array, or a ``Volume`` (its spacing is recorded);
            ``mask``: (H, W) or (D, H, W) class ids (or a ``Volume``); foreground is mask > 0.
        spatial_dims: 2 (images) or 3 (volumes).
        seed: Seed of the value sampling.
        samples_per_case: Most values sampled per case and channel, for all pixels and the foreground apart.

    Returns:
        A ``Fingerprint``.

    Raises:
        UserError: No samples, a mask that does not match its image, NaN/Inf values, or channel counts
            that differ.
    """
    if spatial_dims not in (2, 3):
        raise UserError(f"spatial_dims={spatial_dims}: use 2 (images) or 3 (volumes)")
    rng = np.random.default_rng(seed)
    cases = [_case(sample, spatial_dims, rng, samples_per_case) for sample in samples]
    if not cases:
        raise UserError("no samples to fingerprint: pass at least one (name, image, mask)")
    if len({case.low.size for case in cases}) > 1:
        raise UserError(f"channel counts differ between samples ({sorted({c.low.size for c in cases})}): "
                        "give every image the same channel count")
    sizes = np.array([case.size for case in cases])
    dtypes = Counter(case.dtype.name for case in cases)
    pixels = int(sum(np.prod(case.size) for case in cases))
    spacings = [case.spacing for case in cases if case.spacing is not None]
    spacing = {}
    if spacings:
        values = np.array(spacings, np.float64)
        spacing = {"spacing_median": tuple(float(v) for v in np.median(values, axis=0)),
                   "spacing_min": tuple(float(v) for v in values.min(axis=0)),
                   "spacing_max": tuple(float(v) for v in values.max(axis=0)),
                   "spacing_unit": Counter(case.unit for case in cases if case.spacing).most_common(1)[0][0]}
    return Fingerprint(
        count=len(cases), spatial_dims=spatial_dims, dtypes=tuple(dtypes.most_common()),
        signed=any(case.dtype.kind == "i" for case in cases), channels=_channels(cases),
        foreground_fraction=sum(case.foreground_pixels for case in cases) / pixels,
        size_median=tuple(float(v) for v in np.median(sizes, axis=0)),
        size_min=tuple(int(v) for v in sizes.min(axis=0)), size_max=tuple(int(v) for v in sizes.max(axis=0)),
        **spacing)


def _channels(cases: list[_Case]) -> tuple[ChannelFingerprint, ...]:
    low, high = np.min([c.low for c in cases], axis=0), np.max([c.high for c in cases], axis=0)
    values, foreground = np.concatenate([c.values for c in cases]), np.concatenate([c.foreground for c in cases])
    return tuple(ChannelFingerprint(float(low[c]), float(high[c]), _stats(values[:, c]),
                                    _stats(foreground[:, c]) if len(foreground) else None)
                 for c in range(low.size))


def _stats(values: np.ndarray) -> IntensityStats:
    """``IntensityStats`` of a (n,) float64 sample."""
    percentiles = np.percentile(values, PERCENTILES)
    clipped = np.clip(values, *np.percentile(values, CLIP_PERCENTILES))
    return IntensityStats(int(values.size), float(values.mean()), float(values.std()),
                          tuple(float(v) for v in percentiles), float(clipped.mean()), float(clipped.std()))


def _case(sample, spatial_dims: int, rng: np.random.Generator, limit: int) -> _Case:
    """Reads one sample (arrays, ``Volume`` objects or paths) and samples its values."""
    name, image, mask = sample
    image, mask = (_read(item, spatial_dims, read) for item, read in ((image, read_image), (mask, read_mask)))
    spacing, unit = (tuple(float(s) for s in image.spacing), image.unit) if isinstance(image, Volume) else (None, "")
    image, mask = (np.asarray(item.array if isinstance(item, Volume) else item) for item in (image, mask))
    size = tuple(int(n) for n in image.shape[:spatial_dims])
    if image.ndim not in (spatial_dims, spatial_dims + 1) or mask.shape != size or not image.size:
        layout = "(H, W[, C]) image with an (H, W)" if spatial_dims == 2 else "(D, H, W[, C]) volume with a (D, H, W)"
        raise UserError(f"sample {name}: image {image.shape} with mask {mask.shape}: give an {layout} mask")
    image = image.view(np.uint8) if image.dtype == bool else image
    flat = image.reshape(-1, 1 if image.ndim == spatial_dims else image.shape[-1])  # (pixels, C)
    low, high = flat.min(axis=0), flat.max(axis=0)
    if image.dtype.kind == "f" and not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise UserError(f"sample {name} holds NaN or infinite values: replace them (e.g. np.nan_to_num) first")
    inside = np.flatnonzero(mask.reshape(-1) > 0)
    every = rng.choice(len(flat), limit, replace=False) if len(flat) > limit else slice(None)
    some = inside[rng.choice(len(inside), limit, replace=False)] if len(inside) > limit else inside
    return _Case(size, image.dtype, low.astype(np.float64), high.astype(np.float64),
                 flat[every].astype(np.float64), flat[some].astype(np.float64), int(inside.size), spacing, unit)


def _read(item, spatial_dims: int, read_2d):
    """``item`` itself, or the file it names read as a ``Volume`` (3-D) or an array (2-D)."""
    if not isinstance(item, (str, os.PathLike)):
        return item
    return read_volume(item) if spatial_dims == 3 else read_2d(item)


def resolve_normalization(mode: str, fingerprint: Fingerprint) -> tuple[dict, str]:
    """The preprocessing spec of a normalization ``mode`` for the data of ``fingerprint``, and why, in one line.

    Args:
        mode: One of ``NORMALIZATIONS``: ``auto`` picks ``ct`` for CT-like data (signed integers reaching
            below -500), else ``percentile``.
        fingerprint: Of the training samples (``compute_fingerprint``).

    Returns:
        (spec, reason), e.g. ``"auto: ct (int16 values down to -1024, as CT in Hounsfield units): ..."``.
    """
    if mode not in NORMALIZATIONS:
        raise UserError(f"unknown normalization {mode!r}: use one of {', '.join(NORMALIZATIONS)}")
    if mode == "auto":
        mode, why = _auto(fingerprint)
        head = f"auto: {mode} ({why})"
    else:
        head = f"{mode} (as asked)"
    item = "volume" if fingerprint.spatial_dims == 3 else "image"
    if mode == "percentile":
        low, high = DEFAULT_PREPROCESSING["low"], DEFAULT_PREPROCESSING["high"]
        return dict(DEFAULT_PREPROCESSING), f"{head}: per {item} and channel, {low:g}-{high:g}th percentiles -> 0..1"
    if mode == "zscore":
        return {"mode": "zscore"}, f"{head}: per {item} and channel, (x - mean) / std"
    return _ct(fingerprint, head)


def _auto(fingerprint: Fingerprint) -> tuple[str, str]:
    """("ct" or "percentile", why)."""
    lowest = min(channel.min for channel in fingerprint.channels)
    signed = "/".join(name for name, _ in fingerprint.dtypes if np.dtype(name).kind == "i")
    if signed and lowest < CT_BELOW:
        return "ct", f"{signed} values down to {lowest:g}, as CT in Hounsfield units"
    dtypes = "/".join(name for name, _ in fingerprint.dtypes)
    highest = max(channel.max for channel in fingerprint.channels)
    return "percentile", f"{dtypes} values {lowest:g}..{highest:g}, not signed integers below {CT_BELOW:g} as CT"


def _ct(fingerprint: Fingerprint, head: str) -> tuple[dict, str]:
    """The ``ct`` spec: the foreground's (else all pixels') clip percentiles and clipped mean and std."""
    stats = [channel.foreground or channel.all for channel in fingerprint.channels]
    low, high = ([s.percentile(q) for s in stats] for q in CLIP_PERCENTILES)
    mean, std = [s.clipped_mean for s in stats], [max(s.clipped_std, MIN_SPREAD) for s in stats]
    spec = {"mode": "ct", "clip": [low, high], "mean": mean, "std": std}
    where = "foreground" if fingerprint.has_foreground else \
        f"all {'voxels' if fingerprint.spatial_dims == 3 else 'pixels'} (no mask > 0 in the data set)"
    return spec, (f"{head}: clip to the {where} {CLIP_PERCENTILES[0]:g}-{CLIP_PERCENTILES[1]:g}th percentiles "
                  f"{_numbers(low)}..{_numbers(high)}, then (x - {_numbers(mean)}) / {_numbers(std)}")


def _numbers(values: list[float]) -> str:
    """``-1000`` for one channel, ``[-1000, 3]`` for several."""
    text = ", ".join(f"{v:.5g}" for v in values)
    return text if len(values) == 1 else f"[{text}]"


def training_normalization(samples: Iterable, spatial_dims: int, mode: str,
                           encoder: Callable[[int], dict | None] | None = None) -> tuple[dict, dict]:
    """The preprocessing spec training uses, from the fingerprint of its training ``samples``, and its record.

    Args:
        samples: The training samples, as ``compute_fingerprint`` takes them.
        spatial_dims: 2 (images) or 3 (volumes).
        mode: One of ``NORMALIZATIONS``.
        encoder: in_channels -> the ImageNet ``{"mean", "std"}`` of a pretrained encoder for that many channels, or
            None (``edgeunet.models.pretrained.encoder_normalization``): applied after a ``percentile`` mapping to 0..1,
            as the encoder saw its images; ``zscore`` and ``ct`` already give mean 0 and std 1, so they ignore it.

    Returns:
        (spec, record): ``record`` (for config.json) has the mode asked for, the spec, the one-line reason and
        the fingerprint.
    """
    fingerprint = compute_fingerprint(samples, spatial_dims)
    spec, reason = resolve_normalization(mode, fingerprint)
    stats = encoder(len(fingerprint.channels)) if encoder is not None else None
    if stats and spec["mode"] == "percentile":
        spec = {**spec, "mean": [float(v) for v in stats["mean"]], "std": [float(v) for v in stats["std"]]}
        reason += f", then (x - {_numbers(spec['mean'])}) / {_numbers(spec['std'])} (the encoder's ImageNet statistics)"
    return spec, {"mode": mode, "spec": spec, "reason": reason, "fingerprint": fingerprint.to_dict()}
