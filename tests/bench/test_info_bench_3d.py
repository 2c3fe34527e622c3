"""``edgeunet info`` and ``edgeunet bench`` on a 3-D checkpoint: MACs counted on a DxHxW cube, the checkpoint
timed and scored through PyTorch like its ONNX export, whole-volume figures printed under the table."""

from __future__ import annotations

import json

import pytest

from tests.badinput import run_cli

pytest.importorskip("torch", reason="building the fixture model needs the train extra")


@pytest.fixture(scope="module")
def checkpoint3d():
    from tests.tiny3d import checkpoint_3d

    return checkpoint_3d()


def test_info_counts_a_3d_checkpoint_on_a_cube_and_says_dxhxw(checkpoint3d):
    from edgeunet.checkpoint import model_from_checkpoint
    from edgeunet.models.cost import count_cost

    shown = run_cli("info", str(checkpoint3d))
    assert shown.returncode == 0, shown.stderr
    model, _ = model_from_checkpoint(checkpoint3d)
    gmacs = count_cost(model, 64).gmacs
    assert f"{gmacs:.3f} GMACs at 64x64x64" in shown.stdout and "64x64 " not in shown.stdout
    facts = json.loads(run_cli("info", str(checkpoint3d), "--img-size-3d", "32", "--json").stdout)
    assert facts["cost_shape"] == [32, 32, 32] and facts["macs"] == count_cost(model, 32).macs
    assert "GMACs at 32x32x32" in run_cli("info", str(checkpoint3d), "--img-size-3d", "32").stdout


def test_bench_times_a_3d_checkpoint_and_prints_whole_volume_figures(checkpoint3d, tmp_path):
    from tests.tiny3d import onnx_3d

    result = run_cli("bench", str(checkpoint3d), str(onnx_3d()), "--img-size", "16", "--num-images", "2",
                     "--threads", "1", "--min-time", "0.02", "--no-progress", "--json", str(tmp_path / "b.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {r["backend"]: r for r in json.loads((tmp_path / "b.json").read_text())["rows"]}
    assert set(rows) == {"torch", "onnxruntime"} and {r["status"] for r in rows.values()} == {"ok"}
    for row in rows.values():
        assert row["size"] == 16 and row["patch_voxels_per_s"] == pytest.approx(row["throughput_ips"] * 16 ** 3)
        assert row["volume_ms"] > 0 and len(row["dice_per_volume"]) == 2
    assert rows["torch"]["mean_dice"] == pytest.approx(rows["onnxruntime"]["mean_dice"], abs=1e-3)
    lines = result.stdout.splitlines()
    assert any("whole volumes through Segmenter" in line and "16^3 patch" in line for line in lines)
    volume_lines = [line for line in lines if "ms per volume" in line]
    assert len(volume_lines) == 2 and all("Mvoxel/s" in line and "over 2 volumes" in line for line in volume_lines)
