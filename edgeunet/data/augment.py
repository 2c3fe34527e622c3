"""Cut and augmentation of training items: one policy and one pipeline for 2-D and 3-D (the dimension a parameter).

``augment_item`` turns a full preprocessed image (C, H, W) or volume (C, D, H, W) and its mask into one item
of ``crop_shape``: the crop's place (random offset; reflect padding where the image is smaller), then, as the
``AugmentPolicy`` draws them, a rotation/scaling about the crop's centre sampled from the FULL image
(``resample``: corners show real pixels; image linear, mask nearest), the old orientation (``rotate90``),
nnU-Net's mirroring, intensity transforms of the float image in nnU-Net v2's order (noise, blur, brightness,
contrast, low resolution, gamma of the inverted image, gamma), and the old gain/offset jitter.

Presets: ``AUGMENTATIONS`` "none", "basic" (the original rotate90 + flip + jitter, draw for draw) and "nnunet"
(nnU-Net v2's ``get_training_transforms`` defaults). Randomness comes only from the ``numpy.random.Generator``
given (a transform of probability 0 draws nothing), so a seed gives the same items anywhere. Torch is imported
only when a policy resamples or filters, so the presets load without it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..errors import UserError

Range = tuple[float, float]


@dataclass(frozen=True)
class AugmentPolicy:
    """How often (probability per item) and how strongly each transform happens; fields default to off.

    Attributes:
        rotate90: The old orientation: a k*90-degree rotation of the (H, W) plane (k even when H != W), then a
            flip of W (2-D: with k, all 8 orientations) or flips of D, H and W (3-D), each with p 0.5.
        gain, offset: Jitter ``x * gain + offset`` (uniform draws); (1, 1) and (0, 0) turn it off.
        rotation: Probability of a rotation about the crop's centre.
        rotation_2d: Largest angle of a 2-D rotation, in degrees (180: any angle).
        rotation_3d: Largest angles about the D, H and W axes, in degrees; (a, 0, 0) turns the (H, W) plane
            only, for voxels much longer in D than in H and W.
        scaling: Probability of a zoom about the crop's centre (isotropic).
        scale: Zoom range (magnification: 2 shows the centre twice as large).
        mirror: Probability of a flip along each spatial axis.
        noise, noise_std: Gaussian noise of a std drawn from ``noise_std`` (nnU-Net's "noise_variance",
            which it uses as the std), one std for all channels.
        blur, blur_sigma, blur_per_channel: Gaussian blur; each channel with ``blur_per_channel``, sigma
            (pixels) drawn per channel and axis.
        brightness, brightness_range: ``x * factor``, a factor per channel.
        contrast, contrast_range: ``(x - mean) * factor + mean`` per channel, clipped to its old min/max.
        low_resolution, low_resolution_zoom, low_resolution_per_channel: nearest down-sampling by a zoom of
            ``low_resolution_zoom`` (all axes alike), linear up-sampling back; each channel with the per-channel p.
        gamma_inverted, gamma, gamma_range: ``x -> x ** gamma`` within each channel's min/max (range kept;
            nnU-Net restores mean and std instead); ``gamma_inverted`` does it to ``-x``. Factors of
            brightness, contrast and gamma are below 1 as often as above (nnU-Net's rule).
    """

    rotate90: bool = False
    gain: Range = (1.0, 1.0)
    offset: Range = (0.0, 0.0)
    rotation: float = 0.0
    rotation_2d: float = 180.0
    rotation_3d: tuple[float, float, float] = (30.0, 30.0, 30.0)
    scaling: float = 0.0
    scale: Range = (0.7, 1.4)
    mirror: float = 0.0
    noise: float = 0.0
    noise_std: Range = (0.0, 0.1)
    blur: float = 0.0
    blur_sigma: Range = (0.5, 1.0)
    blur_per_channel: float = 0.5
    brightness: float = 0.0
    brightness_range: Range = (0.75, 1.25)
    contrast: float = 0.0
    contrast_range: Range = (0.75, 1.25)
    low_resolution: float = 0.0
    low_resolution_zoom: Range = (0.5, 1.0)
    low_resolution_per_channel: float = 0.5
    gamma_inverted: float = 0.0
    gamma: float = 0.0
    gamma_range: Range = (0.7, 1.5)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            try:
                value = tuple(float(v) for v in value) if isinstance(value, (tuple, list)) else value
            except (TypeError, ValueError):
                raise UserError(f"augmentation {f.name} must hold numbers, got {value!r}") from None
            object.__setattr__(self, f.name, value)
            _check_field(f.name, value)

    def to_dict(self) -> dict:
        """The policy as JSON-ready values (tuples as lists), e.g. for RUN_DIR/config.json."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# Lowest value of each range (None: any); ranges must be (low, high) with low <= high.
_RANGE_FLOORS = {"gain": 0.0, "offset": None, "scale": 1e-3, "noise_std": 0.0, "blur_sigma": 1e-3,
                 "brightness_range": 0.0, "contrast_range": 0.0, "low_resolution_zoom": 1e-3, "gamma_range": 1e-3}


def _check_field(name: str, value) -> None:
    """UserError naming the field when ``value`` is not a flag, a probability, angles or an ordered range."""
    def number(v, low, high):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high

    if name == "rotate90":
        ok, want = isinstance(value, bool), "true or false"
    elif name in _RANGE_FLOORS:
        floor = _RANGE_FLOORS[name]
        ok = isinstance(value, tuple) and len(value) == 2 and (floor is None or floor <= value[0] <= value[1])
        want = "a range (low, high) with low <= high" + ("" if floor is None else f" from {floor:g} up")
    elif name == "rotation_3d":
        ok = isinstance(value, tuple) and len(value) == 3 and all(number(v, 0, 180) for v in value)
        want = "3 angles in degrees from 0 to 180"
    elif name == "rotation_2d":
        ok, want = number(value, 0, 180), "an angle in degrees from 0 to 180"
    else:
        ok, want = number(value, 0, 1), "a probability from 0 to 1"
    if not ok:
        raise UserError(f"augmentation {name} must be {want}, got {value!r}")


AUGMENTATIONS: dict[str, AugmentPolicy] = {
    "none": AugmentPolicy(),
    "basic": AugmentPolicy(rotate90=True, gain=(0.9, 1.1), offset=(-0.1, 0.1)),
    "nnunet": AugmentPolicy(rotation=0.2, scaling=0.2, mirror=0.5, noise=0.1, blur=0.2, brightness=0.15,
                            contrast=0.15, low_resolution=0.25, gamma_inverted=0.1, gamma=0.3),
}


def augment_policy(augment: str | AugmentPolicy | bool | dict) -> AugmentPolicy:
    """The policy of a preset name, a policy, a ``to_dict()`` dict, or a bool (True: "basic", False: "none").

    Raises:
        UserError: An unknown preset name (the message lists the presets) or a bad policy field.
    """
    if isinstance(augment, AugmentPolicy):
        return augment
    if isinstance(augment, bool):
        return AUGMENTATIONS["basic" if augment else "none"]
    if isinstance(augment, dict):
        unknown = sorted(set(augment) - {f.name for f in dataclasses.fields(AugmentPolicy)})
        if unknown:
            raise UserError(f"unknown augmentation field(s) {', '.join(unknown)}: use the fields of "
                            "edgeunet.data.augment.AugmentPolicy")
        return AugmentPolicy(**augment)
    if augment not in AUGMENTATIONS:
        raise UserError(f"augment must be one of {', '.join(AUGMENTATIONS)} (got {augment!r})")
    return AUGMENTATIONS[augment]


def pad_or_crop_axis(length: int, size: int, rng: np.random.Generator) -> tuple[tuple[int, int], slice]:
    """(pad_before, pad_after) and the crop slice that bring one axis of ``length`` to ``size``."""
    if length < size:
        before = int(rng.integers(0, size - length + 1))
        return (before, size - length - before), slice(0, size)
    start = int(rng.integers(0, length - size + 1))
    return (0, 0), slice(start, start + size)


def _cut(x: np.ndarray, mask: np.ndarray, pads, cuts) -> tuple[np.ndarray, np.ndarray]:
    """Pads (reflect; edge when an axis has 1 pixel) and slices (C, *spatial) ``x`` and ``mask`` alike."""
    if any(pad != (0, 0) for pad in pads):
        mode = "reflect" if min(mask.shape) > 1 else "edge"
        x, mask = np.pad(x, ((0, 0), *pads), mode=mode), np.pad(mask, pads, mode=mode)
    return x[(slice(None), *cuts)], mask[tuple(cuts)]


def crop_or_pad(x: np.ndarray, mask: np.ndarray, size: int | tuple[int, ...],
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cuts (C, *spatial) ``x`` and (*spatial) ``mask`` to (C, *size) and ``size`` at a random place.

    Longer axes are cropped; shorter ones are reflect-padded, mask included. One int is a square/cube.
    """
    size = (int(size),) * mask.ndim if isinstance(size, (int, np.integer)) else tuple(size)
    pads, cuts = zip(*(pad_or_crop_axis(n, s, rng) for n, s in zip(mask.shape, size)))
    return _cut(x, mask, pads, cuts)


def _happens(probability: float, rng: np.random.Generator) -> bool:
    return probability > 0 and rng.random() < probability  # probability 0 draws nothing (keeps "basic" exact)


def _draw_spatial(policy: AugmentPolicy, dims: int, rng: np.random.Generator) -> np.ndarray | None:
    """The rotation/scaling matrix of this item, or None when neither happens."""
    rotate, zoom = _happens(policy.rotation, rng), _happens(policy.scaling, rng)
    if not (rotate or zoom):
        return None
    limits = (policy.rotation_2d,) if dims == 2 else policy.rotation_3d
    angles = tuple(rng.uniform(-a, a) if rotate else 0.0 for a in limits)
    return _torch_ops().spatial_matrix(angles, rng.uniform(*policy.scale) if zoom else 1.0)


def _factor(bounds: Range, rng: np.random.Generator) -> float:
    low, high = bounds
    if low < 1.0 < high:  # nnU-Net's rule: below 1 as often as above, however asymmetric the range
        return rng.uniform(low, 1.0) if rng.random() < 0.5 else rng.uniform(1.0, high)
    return rng.uniform(low, high)


def _noise(x: np.ndarray, policy: AugmentPolicy, rng: np.random.Generator, ops) -> None:
    x += np.float32(rng.uniform(*policy.noise_std)) * rng.standard_normal(x.shape, dtype=np.float32)


def _blur(x: np.ndarray, policy: AugmentPolicy, rng: np.random.Generator, ops) -> None:
    for c in range(len(x)):
        if rng.random() < policy.blur_per_channel:
            x[c] = ops.gaussian_blur(x[c], rng.uniform(*policy.blur_sigma, size=x.ndim - 1))


def _brightness(x: np.ndarray, policy: AugmentPolicy, rng: np.random.Generator, ops) -> None:
    for c in range(len(x)):
        x[c] *= np.float32(_factor(policy.brightness_range, rng))


def _contrast(x: np.ndarray, policy: AugmentPolicy, rng: np.random.Generator, ops) -> None:
    for c in range(len(x)):
        mean, low, high = x[c].mean(), x[c].min(), x[c].max()
        x[c] = np.clip((x[c] - mean) * np.float32(_factor(policy.contrast_range, rng)) + mean, low, high)


def _low_resolution(x: np.ndarray, policy: AugmentPolicy, rng: np.random.Generator, ops) -> None:
    for c in range(len(x)):
        if rng.random() < policy.low_resolution_per_channel:
            x[c] = ops.low_resolution(x[c], rng.uniform(*policy.low_resolution_zoom))


def _gamma(x: np.ndarray, policy: AugmentPolicy, rng: np.random.Generator, ops, inverted: bool = False) -> None:
    sign = np.float32(-1.0 if inverted else 1.0)
    for c in range(len(x)):
        channel = x[c] * sign
        low, span = channel.min(), channel.max() - channel.min()
        unit = (channel - low) / max(span, np.float32(1e-7))
        x[c] = (unit ** np.float32(_factor(policy.gamma_range, rng)) * span + low) * sign


# (probability field, transform acting in place on a float32 (C, *spatial) copy), in nnU-Net v2's order.
_INTENSITY = (("noise", _noise), ("blur", _blur), ("brightness", _brightness), ("contrast", _contrast),
              ("low_resolution", _low_resolution), ("gamma_inverted", partial(_gamma, inverted=True)),
              ("gamma", _gamma))


def _torch_ops():
    from . import resample  # torch, imported only when a policy resamples or filters (presets load without it)

    return resample


def _orient(x: np.ndarray, mask: np.ndarray, policy: AugmentPolicy,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The old 90-degree rotation and flips, then nnU-Net's mirroring (views, no copies)."""
    if policy.rotate90:
        k = int(rng.integers(4)) if mask.shape[-1] == mask.shape[-2] else 2 * int(rng.integers(2))
        x, mask = np.rot90(x, k, axes=(-2, -1)), np.rot90(mask, k, axes=(-2, -1))
        for axis in (-3, -2, -1) if mask.ndim == 3 else (-1,):
            if rng.random() < 0.5:
                x, mask = np.flip(x, axis), np.flip(mask, axis)
    for axis in range(-mask.ndim, 0):
        if _happens(policy.mirror, rng):
            x, mask = np.flip(x, axis), np.flip(mask, axis)
    return x, mask


def augment_crop(x: np.ndarray, mask: np.ndarray, policy: AugmentPolicy,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The orientation, intensity and jitter transforms of a cut item (``augment_item`` after the cut).

    Args:
        x: (C, *spatial) float32 crop; never modified in place.
        mask: (*spatial) labels; only reoriented.

    Returns:
        (x, mask) of the same shapes; x float32.
    """
    x, mask = _orient(x, mask, policy, rng)
    if any(getattr(policy, name) > 0 for name, _ in _INTENSITY):
        x = np.array(x, dtype=np.float32)  # a copy: the crop may be a view of the cached full image
        ops = _torch_ops() if policy.blur or policy.low_resolution else None
        for name, transform in _INTENSITY:
            if _happens(getattr(policy, name), rng):
                transform(x, policy, rng, ops)
    if policy.gain != (1.0, 1.0) or policy.offset != (0.0, 0.0):
        gain, offset = rng.uniform(*policy.gain), rng.uniform(*policy.offset)
        x = (x * np.float32(gain) + np.float32(offset)).astype(np.float32, copy=False)
    return x, mask


def augment_item(x: np.ndarray, mask: np.ndarray, crop_shape: tuple[int, ...], policy: AugmentPolicy,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One training item of ``crop_shape`` from a full preprocessed image or volume, augmented by ``policy``.

    Args:
        x: (C, H, W) or (C, D, H, W) float32 full preprocessed image/volume (not modified).
        mask: (H, W) or (D, H, W) integer labels.
        crop_shape: (S_H, S_W) or (S_D, S_H, S_W) of the item.
        policy: The transforms and their probabilities (``augment_policy``).
        rng: The item's randomness.

    Returns:
        (x (C, *crop_shape) float32, mask (*crop_shape) of mask's dtype), possibly non-contiguous views;
        the mask holds only labels of the source mask.
    """
    pads, cuts = zip(*(pad_or_crop_axis(n, s, rng) for n, s in zip(mask.shape, crop_shape)))
    matrix = _draw_spatial(policy, mask.ndim, rng)
    if matrix is None:
        x, mask = _cut(x, mask, pads, cuts)
    else:
        centre = [cut.start - pad[0] + (s - 1) / 2 for pad, cut, s in zip(pads, cuts, crop_shape)]
        x, mask = _torch_ops().resample_crop(x, mask, centre, tuple(crop_shape), matrix)
    return augment_crop(x, mask, policy, rng)
