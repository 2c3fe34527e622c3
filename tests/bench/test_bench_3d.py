"""``edgeunet bench`` on 3-D models: cubic patches, whole volumes through Segmenter, voxels per second, Dice per
volume; the 2-D baseline slice by slice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeunet.errors import UserError

pytest.importorskip("torch", reason="building the fixture model needs the train extra")


@pytest.fixture(scope="module")
def model3d():
    from tests.tiny3d import onnx_3d

    return onnx_3d()


@pytest.fixture(scope="module")
def bench3d(model3d):
    from edgeunet.bench import run_bench
    from edgeunet.bench.settings import BenchSettings
    from edgeunet.timing import TimingSettings

    settings = BenchSettings(num_images=2, sizes=(16, 32), threads=1,
                             timing=TimingSettings(warmup=1, min_time=0.0, min_rounds=3))
    return run_bench([model3d], settings, progress=False)


def test_3d_rows_time_cubic_patches_and_report_voxels_per_second(bench3d):
    rows = {r["size"]: r for r in bench3d["rows"]}
    assert set(rows) == {16, 32} and all(r["status"] == "ok" for r in rows.values())
    for size, row in rows.items():
        assert row["patch_voxels_per_s"] == pytest.approx(row["throughput_ips"] * size ** 3)
    assert rows[32]["macs"] == pytest.approx(8 * rows[16]["macs"], rel=0.01)  # a cube: 8x the voxels


def test_3d_rows_score_whole_volumes_through_the_segmenter(bench3d, model3d):
    from edgeunet.bench.volumes import SYNTHETIC_SHAPE, bench_volumes
    from edgeunet.metrics import dice_iou
    from edgeunet.runtime import Segmenter

    row = bench3d["rows"][0]
    assert [v["shape"] for v in row["dice_per_volume"]] == [list(SYNTHETIC_SHAPE)] * 2
    assert row["volume_ms"] > 0 and row["volume_voxels_per_s"] > 0 and row["volume_peak_rss_mb"] > 0
    seg = Segmenter(model3d, threads=1)
    name, volume, mask = bench_volumes("synthetic", 1)[0]
    expected = dice_iou(seg(volume), mask, 2)["mean_dice"]
    assert row["dice_per_volume"][0]["mean_dice"] == pytest.approx(expected, abs=1e-6)
    assert row["mean_dice"] > 0.7


def test_3d_bench_results_write_as_json_csv_and_markdown(bench3d, tmp_path):
    from edgeunet.bench import write_csv, write_json, write_markdown

    write_json(bench3d, tmp_path / "r.json")
    write_csv(bench3d, tmp_path / "r.csv")
    write_markdown(bench3d, tmp_path / "r.md")
    assert json.loads((tmp_path / "r.json").read_text())["rows"][0]["dice_per_volume"]
    assert "model.onnx" in (tmp_path / "r.md").read_text()


def test_3d_engine_profile_check_names_cube_shapes():
    from types import SimpleNamespace

    from edgeunet.bench.prepare import check_shape, random_input
    from edgeunet.runtime.metadata import ModelMetadata

    meta = ModelMetadata(1, 2, 4, {}, ["a", "b"], spatial_dims=3)
    backend = SimpleNamespace(metadata=meta, min_size=(16, 16, 16), max_size=(32, 32, 32), max_batch=1,
                              fixed_size=None)
    check_shape(backend, 32, 1)
    with pytest.raises(UserError, match="1x1x64x64x64 is outside the engine's profile"):
        check_shape(backend, 64, 1)
    assert random_input(1, 1, 8, 3).shape == (1, 1, 8, 8, 8)


def test_bench_volume_folder_reads_paired_volumes(tmp_path):
    from edgeunet.bench.volumes import bench_volumes
    from tests.tiny3d import volumes

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i, (volume, mask) in enumerate(volumes(2, seed=4)):
        np.save(tmp_path / "images" / f"v{i}.npy", volume)
        np.save(tmp_path / "masks" / f"v{i}.npy", mask)
    samples = bench_volumes(str(tmp_path), 5)
    assert [name for name, _, _ in samples] == ["v0", "v1"] and samples[0][1].shape == (16, 32, 32)
