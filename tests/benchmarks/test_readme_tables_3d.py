"""The 3-D README blocks: ``demo3d`` from ``benchmarks/demo3d_time.py`` and ``volumes`` from
``benchmarks/volumes.py`` result files, the newest by date."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import tables  # noqa: E402

CPU = {"cpu": {"model": "Test CPU", "usable_cores": 2}}


def _demo3d(date: str, seconds: float) -> dict:
    return {
        "kind": "demo3d", "date": date, "seconds": seconds, "train_dice": 0.9155, "parameters": 31_490,
        "pruned_parameters": 24_000, "pruned_dice": 0.9132, "heldout_volumes": 4, "heldout_dice_fp32": 0.9245,
        "heldout_dice_int8": 0.9248, "int8_dice_drop": -0.0003, "predict_precision": "fp32",
        "int8_search": {"kept": "per-tensor weights", "float_groups": ["head"], "speedup": 0.43, "verdict": "slower",
                        "size": 48, "groups": 15,
                        "decisions": {"INT8 (pays or within 3%)": 14, "kept float (INT8 did not pay)": 1}},
        "load_average": {"before": [4.7, 4.0, 3.9], "after": [4.1, 4.0, 3.9]}, "provenance": CPU,
    }


def test_demo3d_block_says_time_dice_int8_drop_and_what_the_search_kept(tmp_path):
    (tmp_path / "m-demo3d.json").write_text(json.dumps(_demo3d("2030-01-02", 215.2)))
    (tmp_path / "old-demo3d.json").write_text(json.dumps(_demo3d("2030-01-01", 999.0)))
    words = " ".join(tables.block_text("demo3d", tmp_path).split())
    assert "took 3 min 35 s" in words and "999" not in words and "load average of 4.7" in words
    assert "FP32 Dice 0.9245 and INT8 0.9248 (drop -0.0003)" in words and "on 4 held-out volumes" in words
    assert "kept `per-tensor weights` (layer groups in float: head)" in words
    assert "0.43x the speed of FP32 at 48^3" in words and "predicted with FP32" in words
    assert "14 of 15 INT8 (pays or within 3%); 1 of 15 kept float (INT8 did not pay)" in words


def test_volumes_block_is_the_scripts_table_with_its_budget_caption(tmp_path):
    from benchmarks.volumes import markdown

    row = {"model": "unet3d-ds fp32", "precision": "fp32", "mean_dice": 0.91234, "latency_ms": {"p50": 81.25},
           "volume_ms": 412.0, "volume_voxels_per_s": 3.2e5, "volume_peak_rss_mb": 300.0}
    result = {"kind": "volumes", "date": "2030-01-01", "rows": [row], "notes": ["unet3d-ds: 120 training steps"],
              "settings": {"steps": 120, "threads": 2}, "provenance": CPU}
    (tmp_path / "m-volumes.json").write_text(json.dumps(result))
    text = tables.block_text("volumes", tmp_path)
    assert "| unet3d-ds fp32 | fp32 | 0.9123 | 81.2 | 412 | 0.32 | 300 |" in text
    words = " ".join(text.split())
    assert "equal training steps: 120 Adam steps per model" in words and "2-core Test CPU" in words
    assert markdown(result).splitlines()[2] in text.splitlines()
    old = {**result, "settings": {"budget_s": 60.0, "threads": 2}}  # a result of the equal-time version
    assert "equal training time: 60 s per model" in " ".join(markdown(old).split())


def test_without_result_files_the_3d_blocks_name_their_scripts(tmp_path):
    assert "benchmarks/demo3d_time.py" in tables.block_text("demo3d", tmp_path)
    assert "benchmarks/volumes.py" in tables.block_text("volumes", tmp_path)
