"""The data-set fingerprint (``edgeunet.data.fingerprint``), the normalization it resolves to, and
``edgeunet data check`` printing both (``--json`` writing them)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeunet.cli import main
from edgeunet.data.fingerprint import (
    PERCENTILES,
    SAMPLES_PER_CASE,
    compute_fingerprint,
    resolve_normalization,
)
from edgeunet.data.io import write_image, write_mask
from edgeunet.data.sources import folder_pairs, read_pairs
from edgeunet.errors import UserError
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING, preprocess
from edgeunet.runtime.volume_files import Volume, spacing_affine, write_volume

pytestmark = pytest.mark.timeout(120)


def _hand_built() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Two uint16 images of different sizes with known foreground values (mask > 0; class 2 counts too)."""
    a, mask_a = np.full((6, 8), 100, np.uint16), np.zeros((6, 8), np.int64)
    a[1:3, 1:4], mask_a[1:3, 1:4] = [[10, 20, 30], [40, 50, 60]], 1
    b, mask_b = np.full((10, 4), 200, np.uint16), np.zeros((10, 4), np.int64)
    b[0, :2], mask_b[0, :2] = [70, 80], 2
    return [("a", a, mask_a), ("b", b, mask_b)]


def _ct_volume(rng: np.random.Generator, shape=(8, 24, 24)) -> tuple[np.ndarray, np.ndarray]:
    """int16 CT-like volume: air at -1024 around a soft-tissue block (mask 1) of about 40 +- 30 HU."""
    volume, mask = np.full(shape, -1024, np.int16), np.zeros(shape, np.int64)
    mask[2:6, 6:18, 6:18] = 1
    volume[mask > 0] = np.round(rng.normal(40, 30, int(mask.sum())))
    return volume, mask


def test_fingerprint_of_a_hand_built_set_has_the_known_numbers():
    fingerprint = compute_fingerprint(_hand_built(), spatial_dims=2)
    foreground = np.array([10, 20, 30, 40, 50, 60, 70, 80], np.float64)
    every = np.concatenate([s[1].ravel() for s in _hand_built()]).astype(np.float64)
    assert fingerprint.count == 2 and fingerprint.dtypes == (("uint16", 2),) and not fingerprint.signed
    assert fingerprint.size_median == (8.0, 6.0) and fingerprint.size_min == (6, 4) and fingerprint.size_max == (10, 8)
    assert fingerprint.spacing_median is None and fingerprint.foreground_fraction == pytest.approx(8 / 88)
    (channel,) = fingerprint.channels
    assert (channel.min, channel.max) == (10.0, 200.0)
    fg = channel.foreground
    assert fg.count == 8 and fg.mean == pytest.approx(45.0) and fg.std == pytest.approx(foreground.std())
    assert fg.percentile(0.5) == pytest.approx(np.percentile(foreground, 0.5))
    assert fg.percentile(99.5) == pytest.approx(np.percentile(foreground, 99.5))
    np.testing.assert_allclose(channel.all.percentiles, np.percentile(every, PERCENTILES))
    assert channel.all.count == 88 and channel.all.mean == pytest.approx(every.mean())


def test_clipped_statistics_are_those_of_the_values_clipped_to_the_0_5_and_99_5_percentiles():
    values = np.arange(1, 1001, dtype=np.float64)
    image, mask = values.reshape(25, 40).astype(np.uint16), np.ones((25, 40), np.int64)
    fg = compute_fingerprint([("a", image, mask)]).channels[0].foreground
    clipped = np.clip(values, *np.percentile(values, [0.5, 99.5]))
    assert fg.clipped_mean == pytest.approx(clipped.mean()) and fg.clipped_std == pytest.approx(clipped.std())
    assert fg.clipped_std < fg.std


def test_sampling_keeps_at_most_10k_values_per_case_and_is_seeded():
    rng = np.random.default_rng(0)
    cases = []
    for name in "ab":
        volume = rng.integers(0, 4000, (20, 40, 40)).astype(np.uint16)  # 32,000 voxels
        mask = np.zeros(volume.shape, np.int64)
        mask[:15] = 1  # 24,000 foreground voxels
        cases.append((name, volume, mask))
    fingerprint = compute_fingerprint(cases, spatial_dims=3, seed=1)
    (channel,) = fingerprint.channels
    assert SAMPLES_PER_CASE == 10_000
    assert channel.all.count == 2 * SAMPLES_PER_CASE and channel.foreground.count == 2 * SAMPLES_PER_CASE
    assert (channel.min, channel.max) == (min(c[1].min() for c in cases), max(c[1].max() for c in cases))
    assert compute_fingerprint(cases, 3, seed=1) == fingerprint
    assert compute_fingerprint(cases, 3, seed=2).channels[0].foreground.mean != channel.foreground.mean
    assert compute_fingerprint(cases, 3, samples_per_case=100).channels[0].foreground.count == 200


def test_auto_picks_ct_for_int16_volumes_down_to_minus_1024():
    rng = np.random.default_rng(2)
    cases = [(f"ct{i}", *_ct_volume(rng)) for i in range(3)]
    fingerprint = compute_fingerprint(cases, spatial_dims=3)
    assert fingerprint.signed and fingerprint.channels[0].min == -1024.0
    spec, reason = resolve_normalization("auto", fingerprint)
    assert reason.startswith("auto: ct (int16 values down to -1024, as CT in Hounsfield units): clip to the "
                             "foreground 0.5-99.5th percentiles")
    fg = fingerprint.channels[0].foreground
    assert spec == {"mode": "ct", "clip": [[fg.percentile(0.5)], [fg.percentile(99.5)]], "mean": [fg.clipped_mean],
                    "std": [fg.clipped_std]}
    assert 20 < fg.clipped_mean < 60 and 20 < fg.clipped_std < 40  # the tissue's numbers, not the air's
    x = np.concatenate([preprocess(v, spec, 1, spatial_dims=3)[0][m > 0] for _, v, m in cases])
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1.0) < 0.01  # the training foreground comes out z-scored


@pytest.mark.parametrize("dtype, high", [(np.uint8, 255), (np.uint16, 4095), (np.int16, 3000)])
def test_auto_picks_percentile_for_microscopy_like_data(dtype, high):
    rng = np.random.default_rng(3)
    cases = [(f"c{i}", rng.integers(0, high, (16, 16)).astype(dtype), rng.integers(0, 2, (16, 16))) for i in range(2)]
    spec, reason = resolve_normalization("auto", compute_fingerprint(cases))
    assert spec == DEFAULT_PREPROCESSING and spec is not DEFAULT_PREPROCESSING
    assert reason.startswith(f"auto: percentile ({np.dtype(dtype).name} values ")
    assert "not signed integers below -500 as CT" in reason


def test_ct_without_foreground_falls_back_to_all_pixels_and_says_so():
    volume, _ = _ct_volume(np.random.default_rng(4))
    fingerprint = compute_fingerprint([("empty", volume, np.zeros(volume.shape, np.int64))], spatial_dims=3)
    assert fingerprint.channels[0].foreground is None and not fingerprint.has_foreground
    spec, reason = resolve_normalization("ct", fingerprint)
    every = fingerprint.channels[0].all
    assert spec["clip"] == [[every.percentile(0.5)], [every.percentile(99.5)]] and spec["mean"] == [every.clipped_mean]
    assert reason.startswith("ct (as asked): clip to the all voxels (no mask > 0 in the data set) 0.5-99.5th")
    assert spec["std"][0] > 0  # all air: std floored, never 0


def test_explicit_modes_and_unknown_mode():
    fingerprint = compute_fingerprint(_hand_built())
    assert resolve_normalization("zscore", fingerprint)[0] == {"mode": "zscore"}
    assert resolve_normalization("percentile", fingerprint) == (
        DEFAULT_PREPROCESSING, "percentile (as asked): per image and channel, 1-99.8th percentiles -> 0..1")
    assert resolve_normalization("ct", fingerprint)[0]["mode"] == "ct"
    with pytest.raises(UserError, match="unknown normalization 'minmax': use one of auto, percentile, zscore, ct"):
        resolve_normalization("minmax", fingerprint)


def test_folder_pairs_give_the_fingerprint_of_the_samples_read_in_memory(tmp_path):
    for name, image, mask in _hand_built():
        write_image(tmp_path / "images" / f"{name}.png", image)
        write_mask(tmp_path / "masks" / f"{name}.png", mask.astype(np.uint8))
    pairs = folder_pairs(tmp_path)
    assert compute_fingerprint(pairs) == compute_fingerprint(read_pairs(pairs)) == compute_fingerprint(_hand_built())


def test_volumes_carry_their_spacing_from_files_and_volume_objects(tmp_path):

    rng = np.random.default_rng(5)
    spacings = [(2.0, 0.5, 0.5), (4.0, 0.75, 0.5), (3.0, 0.5, 1.0)]
    for i, spacing in enumerate(spacings):
        volume, mask = _ct_volume(rng, (4, 8, 8))
        like = Volume(volume, spacing_affine(spacing), spacing, "mm")
        write_volume(tmp_path / "images" / f"v{i}.tif", volume, like)
        write_volume(tmp_path / "masks" / f"v{i}.tif", mask.astype(np.uint8), like)
    fingerprint = compute_fingerprint(folder_pairs(tmp_path, spatial_dims=3), spatial_dims=3)
    assert fingerprint.spacing_median == pytest.approx((3.0, 0.5, 0.5))
    assert fingerprint.spacing_min == pytest.approx((2.0, 0.5, 0.5))
    assert fingerprint.spacing_max == pytest.approx((4.0, 0.75, 1.0)) and fingerprint.spacing_unit == "mm"
    volume, mask = _ct_volume(rng, (4, 8, 8))
    in_memory = compute_fingerprint([("v", Volume(volume, np.eye(4), (1.5, 1.0, 1.0), "mm"), mask)], 3)
    assert in_memory.spacing_median == (1.5, 1.0, 1.0)
    assert compute_fingerprint([("v", volume, mask)], 3).spacing_median is None  # a bare array has none


@pytest.mark.parametrize(
    "samples, message",
    [
        ([], "no samples to fingerprint"),
        ([("a", np.zeros((4, 4), np.uint8), np.zeros((4, 5)))], r"sample a: image \(4, 4\) with mask \(4, 5\)"),
        ([("n", np.full((4, 4), np.nan, np.float32), np.zeros((4, 4)))], "sample n holds NaN or infinite values"),
        ([("a", np.zeros((4, 4), np.uint8), np.zeros((4, 4))), ("b", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4)))],
         "channel counts differ"),
    ],
)
def test_bad_samples_are_named(samples, message):
    with pytest.raises(UserError, match=message):
        compute_fingerprint(samples)


def test_data_check_prints_the_fingerprint_and_the_auto_choice_and_writes_json(tmp_path, capsys):
    rng = np.random.default_rng(6)
    for i in range(2):
        volume, mask = _ct_volume(rng)
        write_volume(tmp_path / "data" / "images" / f"v{i}.npy", volume)  # .npy: spacing 1 x 1 x 1, no unit
        write_volume(tmp_path / "data" / "masks" / f"v{i}.npy", mask.astype(np.uint8))
    out_json = tmp_path / "report" / "fingerprint.json"
    assert main(["data", "check", str(tmp_path / "data"), "--3d", "--json", str(out_json)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "size      median 8x24x24, min 8x24x24, max 8x24x24 (D x H x W)" in lines
    assert "spacing   median 1x1x1, min 1x1x1, max 1x1x1 (D x H x W, unit unknown)" in lines
    assert "intensity int16 (signed integers); percentiles 0.5/1/50/99/99.5/99.8 of up to 10,000 voxels per volume" \
        in lines
    assert any(line.startswith("          channel 0: range -1024..") for line in lines)
    assert any(line.startswith("          channel 0 foreground (mask > 0, 12.5% of voxels): mean ") for line in lines)
    normalize = [line for line in lines if line.startswith("normalize ")]
    assert normalize and normalize[0].startswith("normalize auto: ct (int16 values down to -1024, as CT in Hounsfield")
    written = json.loads(out_json.read_text())
    assert written["count"] == 2 and written["dtypes"] == {"int16": 2} and written["signed"] is True
    assert written["channels"][0]["min"] == -1024.0 and written["spacing"]["median"] == [1.0, 1.0, 1.0]
    assert written["normalization"]["auto"]["mode"] == "ct"
    assert normalize[0] == f"normalize {written['normalization']['reason']}"


def test_data_check_of_images_picks_percentile(tmp_path, capsys):
    for name, image, mask in _hand_built():
        write_image(tmp_path / "images" / f"{name}.png", image)
        write_mask(tmp_path / "masks" / f"{name}.png", mask.astype(np.uint8))
    assert main(["data", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "size      median 8x6, min 6x4, max 10x8 (H x W)" in out and "spacing" not in out
    assert "normalize auto: percentile (uint16 values 10..200, not signed integers below -500 as CT): per image" in out
