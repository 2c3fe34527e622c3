"""The one preprocessing function of edgeunet: training, calibration and device inference call it.

It needs only numpy, so the torch-free runtime shares it with the toolkit. A preprocessing spec is a
small JSON-able dict stored in checkpoints and in ONNX metadata. Per-channel values are lists with one
entry per channel (or one entry for every channel):

* ``{"mode": "percentile", "low": 1.0, "high": 99.8}`` (default): per image and channel, the low and
  high percentiles map to 0 and 1 (the usual normalization for fluorescence microscopy, robust to
  8/12/16-bit data and to uneven exposure). Optional ``"mean"`` and ``"std"`` (both or neither) then
  give ``(x - mean) / std`` of the 0..1 values: the ImageNet statistics a pretrained encoder expects.
* ``{"mode": "zscore"}``: per image and channel, ``(x - mean) / max(std, 1e-6)`` with the image's own
  mean and std (nnU-Net's normalization of MR and other modalities without absolute units).
* ``{"mode": "ct", "clip": [[low, ...], [high, ...]], "mean": [...], "std": [...]}``: statistics of the
  training set (``edgeunet.data.fingerprint``): clip to [low, high], then ``(x - mean) / std``, so one
  tissue gets one value in every scan (CT intensities are absolute: Hounsfield units).
* ``{"mode": "scale", "mean": [...], "std": [...]}``: divide by the dtype's maximum (255 for uint8,
  65535 for uint16, 1 for float) then subtract mean and divide by std per channel.

``check_spec`` names the bad key of a spec. Images and volumes share one code path per mode: an
(H, W[, C]) image is a volume of one plane. Volumes ((D, H, W) or (D, H, W, C), ``spatial_dims=3``)
are normalized per volume and channel: the statistics are those of the whole volume, taken from its
raw values (percentiles) or a few planes at a time (mean and std). ``volume_normalizer`` computes them
once and then normalizes any planes on demand, so a large volume never needs a float32 copy of itself
(the runtime streams slabs through it); ``preprocess`` applies it to a whole image or volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError

DEFAULT_PREPROCESSING = {"mode": "percentile", "low": 1.0, "high": 99.8}
MODES = ("percentile", "zscore", "ct", "scale")
SPEC_KEYS = {"percentile": ("low", "high", "mean", "std"), "zscore": (), "ct": ("clip", "mean", "std"),
             "scale": ("mean", "std")}  # the keys each mode reads besides "mode"
REQUIRED_KEYS = {"ct": ("clip", "mean", "std")}  # keys without a default
MIN_SPREAD = 1e-6  # floor of a percentile span or a std: a constant image maps to 0, not to NaN
MOMENT_VALUES = 1 << 20  # values per channel read at once for a mean and std (8 MB of float64)


def image_channels(image: np.ndarray) -> int:
    """Number of channels of an (H, W) or (H, W, C) image."""
    return 1 if image.ndim == 2 else int(image.shape[2])


def _check_array(array: np.ndarray, noun: str, layouts: str, ndims: tuple[int, int], in_channels: int,
                 channel_fix: str, ndim_fixes: dict[int, str]) -> None:
    """The checks of every model input, image or volume, in one order: an array, not empty, of a layout in
    ``layouts`` (``ndims``: without and with a channel axis, last), of a number dtype, with ``in_channels``
    channels and finite values. ``ndim_fixes``: dimension count -> message (``{shape}`` stands for the shape)
    for a wrong count that has a fix of its own."""
    if not isinstance(array, np.ndarray):
        raise UserError(f"expected a numpy array, got {type(array).__name__}: convert with np.asarray({noun})")
    if array.size == 0:
        raise UserError(f"the {noun} is empty (shape {array.shape}): pass {layouts} array")
    if array.ndim in ndim_fixes:
        raise UserError(ndim_fixes[array.ndim].format(shape=array.shape))
    if array.ndim not in ndims:
        raise UserError(f"expected {layouts} {noun}, got shape {array.shape}")
    if array.dtype.kind not in "uif" and array.dtype != bool:
        raise UserError(f"unsupported {noun} dtype {array.dtype}: use uint8, uint16 or float")
    channels = 1 if array.ndim == ndims[0] else int(array.shape[-1])
    if channels != in_channels:
        raise UserError(f"the {noun} has {channels} channel(s) but the model takes {in_channels}: {channel_fix}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise UserError(f"the {noun} contains NaN or infinite values: replace them (e.g. np.nan_to_num) first")


def check_image(image: np.ndarray, in_channels: int) -> None:
    """Raises UserError, naming the fix, when ``image`` cannot be fed to a model."""
    fix = "convert it to grayscale" if in_channels == 1 else f"give it {in_channels} channels"
    _check_array(image, "image", "an (H, W) or (H, W, C)", (2, 3), in_channels, fix, {})


def volume_channels(volume: np.ndarray) -> int:
    """Number of channels of a (D, H, W) or (D, H, W, C) volume."""
    return 1 if volume.ndim == 3 else int(volume.shape[3])


def check_volume(volume: np.ndarray, in_channels: int) -> None:
    """Raises UserError, naming the fix, when ``volume`` cannot be fed to a 3-D model."""
    fix = f"give a (D, H, W{', C' if in_channels > 1 else ''}) array with {in_channels} channel(s)"
    flat = ("this is a 3-D model and got a 2-D image of shape {shape}: give it a (D, H, W) volume (.nii.gz, "
            "TIFF stack, .npy), or segment 2-D images with a 2-D model")
    _check_array(volume, "volume", "a (D, H, W) or (D, H, W, C)", (3, 4), in_channels, fix, {2: flat})


def check_spec(spec: dict) -> str:
    """Raises UserError, naming the key and the fix, when ``spec`` is not a preprocessing spec; returns its mode."""
    if not isinstance(spec, dict):
        raise UserError(f"a preprocessing spec is a dict such as {DEFAULT_PREPROCESSING}, got {type(spec).__name__}")
    mode = spec.get("mode", "percentile")
    if mode not in MODES:
        raise UserError(f"unknown preprocessing mode {mode!r}: use one of {', '.join(MODES)}")
    for key in spec:
        if key != "mode" and key not in SPEC_KEYS[mode]:
            keys = ", ".join(SPEC_KEYS[mode]) or "none besides 'mode'"
            raise UserError(f"preprocessing key {key!r} is not used by mode {mode!r}: remove it (keys: {keys})")
    for key in REQUIRED_KEYS.get(mode, ()):
        if key not in spec:
            keys = ", ".join(SPEC_KEYS[mode])
            raise UserError(f"preprocessing mode {mode!r} needs key {key!r}: add it (keys: {keys})")
    if mode == "percentile":
        if ("mean" in spec) != ("std" in spec):
            missing = "std" if "mean" in spec else "mean"
            raise UserError(f"preprocessing key {missing!r} is missing: give 'mean' and 'std' together, or neither")
        low, high = (_number(spec, key, default) for key, default in (("low", 1.0), ("high", 99.8)))
        if not 0.0 <= low < high <= 100.0:
            raise UserError(f"preprocessing 'low' {low} and 'high' {high} must be percentiles with 0 <= low < high "
                            "<= 100: e.g. low 1.0, high 99.8")
    for key in ("mean", "std"):
        if key in spec:
            _values(spec[key], key, positive=key == "std")
    if "clip" in spec:
        _clip_values(spec["clip"])
    return mode


def _number(spec: dict, key: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"preprocessing key {key!r} must be a number, got {value!r}")
    return float(value)


def _values(values, key: str, positive: bool = False) -> np.ndarray:
    """A per-channel list of finite numbers as (n,) float64; UserError naming ``key`` otherwise."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        raise UserError(f"preprocessing key {key!r} must be a list of numbers, one per channel, got {values!r}")
    if positive and (array <= 0).any():
        raise UserError(f"preprocessing key {key!r} must be positive, got {values!r}")
    return array


def _clip_values(clip) -> tuple[np.ndarray, np.ndarray]:
    """``[[low, ...], [high, ...]]`` as two (n,) float64 arrays with low <= high."""
    if not isinstance(clip, (list, tuple)) or len(clip) != 2:
        raise UserError(f"preprocessing key 'clip' must be [[low, ...], [high, ...]] (one value per channel in "
                        f"each), got {clip!r}")
    low, high = _values(clip[0], "clip"), _values(clip[1], "clip")
    if low.shape != high.shape or (low > high).any():
        raise UserError(f"preprocessing key 'clip' must give as many lows as highs with low <= high, got {clip!r}")
    return low, high


def _per_channel(values: np.ndarray, key: str, channels: int) -> np.ndarray:
    """(channels,) of a per-channel list of one value or one per channel."""
    if values.size not in (1, channels):
        raise UserError(f"preprocessing key {key!r} has {values.size} values but the input has {channels} "
                        "channel(s): give one value per channel")
    return np.broadcast_to(values, (channels,)).copy()


@dataclass(frozen=True)
class VolumeNormalizer:
    """Normalizes planes of one volume (an image: one plane) with the statistics of a spec (``volume_normalizer``).

    A plane's raw values ``x`` become ``(clip(x / value_max, *clip) - offset) / divisor``, in float32.

    Attributes:
        volume: The raw (D, H, W) or (D, H, W, C) volume (not copied).
        offset: (C,) float32 subtracted after scaling and clipping.
        divisor: (C,) float32 the result is divided by.
        value_max: What the raw values are divided by first: the dtype's maximum in ``scale`` mode, else 1.
        clip: (2, C) float32 low and high the values are clipped to (``ct``), or None.
    """

    volume: np.ndarray
    offset: np.ndarray
    divisor: np.ndarray
    value_max: float = 1.0
    clip: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """(C, D, H, W) of the normalized volume."""
        d, h, w = self.volume.shape[:3]
        return (volume_channels(self.volume), d, h, w)

    def planes(self, index) -> np.ndarray:
        """(C, n, H, W) float32 of the planes ``index`` (an int array or a slice) along D; (C, H, W) for an int."""
        x = self.volume[index]
        x = x[..., None] if self.volume.ndim == 3 else x
        x = x.astype(np.float32)
        if self.value_max != 1.0:
            x /= np.float32(self.value_max)
        if self.clip is not None:
            np.clip(x, self.clip[0], self.clip[1], out=x)
        x -= self.offset
        x /= self.divisor
        return np.ascontiguousarray(np.moveaxis(x, -1, 0))


def volume_normalizer(volume: np.ndarray, spec: dict | None = None, in_channels: int | None = None) -> VolumeNormalizer:
    """The statistics of a (D, H, W[, C]) volume under ``spec``, computed once, for ``VolumeNormalizer.planes``.

    Per channel over the whole volume from its raw values: percentiles (``percentile``), mean and std a few
    planes at a time (``zscore``); ``ct`` and ``scale`` take theirs from the spec. No float copy of the volume.
    """
    spec = spec or DEFAULT_PREPROCESSING
    mode = check_spec(spec)
    if in_channels is not None:
        check_volume(volume, in_channels)
    channels = volume_channels(volume)
    raw = volume.view(np.uint8) if volume.dtype == bool else volume  # numpy's percentile cannot subtract bools
    raw = raw[..., None] if raw.ndim == 3 else raw  # (D, H, W, C)
    given = {key: _per_channel(_values(spec[key], key), key, channels) for key in ("mean", "std") if key in spec}
    if mode == "percentile":
        q = [spec.get("low", 1.0), spec.get("high", 99.8)]
        lo, hi = np.stack([_percentiles(raw[..., c], q) for c in range(channels)], axis=1)
        offset, divisor = lo, np.maximum(hi - lo, MIN_SPREAD)
        if given:  # ((x - lo) / span - mean) / std, as one subtraction and one division
            offset, divisor = offset + given["mean"] * divisor, divisor * given["std"]
        return VolumeNormalizer(volume, offset.astype(np.float32), divisor.astype(np.float32))
    if mode == "zscore":
        mean, std = _channel_moments(raw)
        return VolumeNormalizer(volume, mean.astype(np.float32), np.maximum(std, MIN_SPREAD).astype(np.float32))
    mean = given.get("mean", np.zeros(channels)).astype(np.float32)
    std = given.get("std", np.ones(channels)).astype(np.float32)
    if mode == "ct":
        clip = np.stack([_per_channel(v, "clip", channels) for v in _clip_values(spec["clip"])])
        return VolumeNormalizer(volume, mean, std, clip=clip.astype(np.float32))
    return VolumeNormalizer(volume, mean, std, dtype_max(volume.dtype))


def _percentiles(values: np.ndarray, q: list[float]) -> np.ndarray:
    """Percentiles ``q`` of the values as the model sees them: float32. Only dtypes that float32 does not hold
    exactly (float64, 32-bit integers) are converted, into the one copy that numpy's percentile makes anyway."""
    if np.can_cast(values.dtype, np.float32):
        return np.percentile(values, q)
    return np.percentile(values.astype(np.float32), q, overwrite_input=True)


def _channel_moments(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C,) float64 mean and std per channel of a (D, H, W, C) array, merged over a few planes at a time.

    Each chunk's mean and squared deviations are exact in float64; chunks merge with Chan's formula, so
    peak memory is a chunk (``MOMENT_VALUES`` values per channel), not a float copy of the volume.
    """
    channels = volume.shape[-1]
    step = max(1, MOMENT_VALUES // max(1, volume[0].size // channels))
    count, mean, m2 = 0, np.zeros(channels), np.zeros(channels)
    for start in range(0, volume.shape[0], step):
        x = volume[start:start + step].reshape(-1, channels).astype(np.float64)
        n, chunk_mean = x.shape[0], x.mean(axis=0)
        chunk_m2 = np.square(x - chunk_mean).sum(axis=0)
        delta, total = chunk_mean - mean, count + n
        mean = mean + delta * (n / total)
        m2 = m2 + chunk_m2 + np.square(delta) * (count * n / total)
        count = total
    return mean, np.sqrt(m2 / count)


def dtype_max(dtype: np.dtype) -> float:
    """The value that maps to 1.0 when scaling: 255 (uint8), 65535 (uint16), 1 (float)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return float(np.iinfo(dtype).max)
    return 1.0


def preprocess(image: np.ndarray, spec: dict | None = None, in_channels: int | None = None,
               spatial_dims: int = 2) -> np.ndarray:
    """Turns an image (or a volume) into the model's input.

    Args:
        image: (H, W) or (H, W, C) array of uint8, uint16 or float; with ``spatial_dims=3`` a
            (D, H, W) or (D, H, W, C) volume.
        spec: Preprocessing spec (see module docstring); None means DEFAULT_PREPROCESSING.
        in_channels: When given, the channel count is checked against it.
        spatial_dims: 2 (images) or 3 (volumes: statistics per volume and channel).

    Returns:
        (C, H, W) float32 array, or (C, D, H, W) for volumes.

    Raises:
        UserError: A bad spec (naming the key), or an input the checks refuse (``check_image``, ``check_volume``).
    """
    if spatial_dims == 3:
        return volume_normalizer(image, spec, in_channels).planes(slice(None))
    if in_channels is not None:
        check_image(image, in_channels)
    return volume_normalizer(image[None], spec).planes(0)  # an image is a volume of one plane
