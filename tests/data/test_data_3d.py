"""Volume data sets: ``data synth --3d`` in every format, ``data check`` on volumes, the synthetic3d
source, and the shared preprocessing applied per volume."""

from __future__ import annotations

import numpy as np
import pytest
from badinput import run_cli

from edgeunet.errors import UserError


@pytest.mark.parametrize("fmt", ["nii.gz", "tiff", "npy"])
@pytest.mark.slow
def test_synth_3d_writes_a_set_that_data_check_passes(tmp_path, fmt):
    out = tmp_path / "vols"
    made = run_cli("data", "synth", str(out), "--3d", "--volume-size", "12,16,20", "--num-images", "2",
                   "--format", fmt)
    assert made.returncode == 0, made.stderr
    checked = run_cli("data", "check", str(out), *([] if fmt == "nii.gz" else ["--3d"]))  # NIfTI: found alone
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{out}: 2 volume/mask pairs, no problems" in checked.stdout
    assert "12x16x20 (2) (D x H x W)" in checked.stdout


def test_volume_check_finds_nan_voxels_single_slices_and_bad_class_ids(tmp_path):
    from edgeunet.data.validate import validate_folder
    from edgeunet.runtime.volume_files import write_volume

    volume = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    volume[1, 2, 3] = np.nan
    write_volume(tmp_path / "images" / "nan.npy", volume)
    write_volume(tmp_path / "masks" / "nan.npy", np.zeros((8, 8, 8), np.uint8))
    write_volume(tmp_path / "images" / "flat.npy", np.ones((1, 8, 8), np.float32))
    write_volume(tmp_path / "masks" / "flat.npy", np.zeros((1, 8, 8), np.uint8))
    write_volume(tmp_path / "images" / "ids.npy", np.random.default_rng(1).random((8, 8, 8)).astype(np.float32))
    write_volume(tmp_path / "masks" / "ids.npy", np.full((8, 8, 8), 3, np.uint8))
    report = validate_folder(tmp_path, num_classes=2, spatial_dims=3)
    text = [str(p) for p in report.problems]
    assert "images/nan.npy: 1 NaN/Inf voxel(s) of 512: replace them (e.g. np.nan_to_num) or remove the volume" in text
    assert any(t.startswith("images/flat.npy: a single slice") and "2-D model" in t for t in text)
    assert any(t.startswith("masks/ids.npy: class id 3 >= num_classes 2") for t in text)


def test_volume_check_summary_counts_voxels_not_pixels(tmp_path, capsys):
    from edgeunet.cli import build_parser
    from edgeunet.runtime.volume_files import write_volume

    mask = np.zeros((4, 8, 8), np.uint8)
    mask[:, :2] = 1  # 64 of 256 voxels
    write_volume(tmp_path / "images" / "a.npy", np.random.default_rng(0).random((4, 8, 8)).astype(np.float32))
    write_volume(tmp_path / "masks" / "a.npy", mask)
    args = build_parser().parse_args(["data", "check", str(tmp_path), "--3d"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "classes   0 (75.0%), 1 (25.0%) of voxels; num_classes 2" in out
    assert "0 background: 192 voxels in 1 of 1 masks" in out and "1 class1: 64 voxels in 1 of 1 masks" in out
    assert "pixel" not in out


def test_synthetic3d_samples_differ_per_split_and_come_back_from_load_samples():
    from edgeunet.data.sources import load_samples

    val = load_samples("synthetic3d", 2, 16, seed=0, split="val")
    calib = load_samples("synthetic3d", 2, (16, 16, 16), seed=0, split="calib")
    assert val[0][1].shape == (16, 16, 16) and val[0][2].shape == (16, 16, 16) and val[0][2].dtype == np.int64
    assert val[0][0] == "synthetic3d-val-0000" and not np.array_equal(val[0][1], calib[0][1])
    assert load_samples("synthetic", 1, 32)[0][1].shape == (32, 32)  # 2-D unchanged


def test_load_samples_reads_a_nifti_folder_as_volumes(tmp_path):
    from edgeunet.data.sources import load_samples
    from edgeunet.data.synthetic import synthetic_volume, write_synthetic_volumes

    write_synthetic_volumes(tmp_path / "v", n=2, size=(8, 12, 16))
    (name, volume, mask), _ = load_samples(tmp_path / "v")
    expected, expected_mask = synthetic_volume(0, (8, 12, 16))
    assert name == "synth_0000" and np.array_equal(volume, expected) and np.array_equal(mask, expected_mask)


def test_preprocess_volume_is_the_runtime_preprocessing_over_every_voxel():
    from edgeunet.data.volumes_prep import preprocess_volume
    from edgeunet.runtime.preprocess import preprocess

    volume = np.random.default_rng(0).integers(0, 4000, (4, 6, 5, 2)).astype(np.uint16)
    x = preprocess_volume(volume, None, 2)
    assert x.shape == (2, 4, 6, 5) and x.dtype == np.float32
    flat = preprocess(volume.reshape(24, 5, 2), None, 2)
    assert np.array_equal(x, flat.reshape(2, 4, 6, 5))
    lo, hi = np.percentile(volume[..., 0].astype(np.float32), [1.0, 99.8])
    assert np.allclose(x[0], (volume[..., 0] - lo) / (hi - lo), atol=1e-5)
    with pytest.raises(UserError, match="channel"):
        preprocess_volume(volume, None, 1)
