"""``edgeunet quickstart --3d`` on tiny settings: the data, train and prune stages (export, predict and
bench of volumes belong to the deployment side and are exercised by its tests)."""

from __future__ import annotations

import json

import pytest

from edgeunet.errors import UserError
from edgeunet.quickstart3d import Quickstart3DSettings, run_quickstart3d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_quickstart_3d_trains_and_prunes_unet3d_ds_on_synthetic_volumes(tmp_path):
    settings = Quickstart3DSettings(out=str(tmp_path / "qs"), n_volumes=4, heldout_volumes=1, volume_side=16,
                                    patch_side=16, epochs=1, samples_per_epoch=2, batch_size=2, finetune_epochs=1,
                                    progress=False)
    lines = []
    facts = run_quickstart3d(settings, report=lines.append, stages=("data", "train", "prune"))
    out = tmp_path / "qs"
    assert sorted(p.name for p in (out / "data" / "images").iterdir())[0] == "synth_0000.nii.gz"
    assert len(list((out / "heldout" / "masks").iterdir())) == 1
    config = json.loads((out / "train" / "config.json").read_text())
    assert config["model_config"]["name"] == "unet3d-ds" and config["settings"]["patch"] == [16, 16, 16]
    prune = json.loads((out / "prune" / "prune.json").read_text())
    assert prune["parameters"]["after"] < prune["parameters"]["before"] and prune["patch"] == [16, 16, 16]
    assert facts["train"]["checkpoint"] == str(out / "train" / "best.pt")
    assert [line[:3] for line in lines[:3]] == ["[1]", "[2]", "[3]"] and "export" not in facts


def test_quickstart_3d_settings_name_the_bad_value():
    with pytest.raises(UserError, match="--epochs 0 must be at least 1"):
        Quickstart3DSettings(epochs=0)


@pytest.mark.slow
def test_quickstart_3d_runs_every_stage_with_int8(tmp_path):
    settings = Quickstart3DSettings(out=str(tmp_path / "qs"), n_volumes=4, heldout_volumes=2, volume_side=16,
                                    patch_side=16, widths=(8, 16, 32), epochs=1, samples_per_epoch=2, batch_size=2,
                                    finetune_epochs=1, bench_seconds=0.02, int8_search_seconds=1.0, progress=False)
    lines = []
    facts = run_quickstart3d(settings, report=lines.append)
    out = tmp_path / "qs"
    assert [line.split()[0] for line in lines if line.startswith("[")] == \
        ["[1]", "[2]", "[3]", "[4]", "[4]", "[4]", "[4]", "[5]", "[6]"]
    assert "8-16-32 wide" in lines[1]
    assert json.loads((out / "train" / "config.json").read_text())["model_config"]["widths"] == [8, 16, 32]
    export = json.loads((out / "export" / "export.json").read_text())
    assert {a["precision"] for a in export["artifacts"]} == {"fp32", "int8"}
    assert export["data"]["sources"] == {"calibration": str(out / "data"), "search": str(out / "heldout"),
                                         "verification": str(out / "heldout")}
    search = export["int8_search"]
    assert search["chosen"] and set(search["group_decisions"])  # what it kept, and each group's reason
    assert all(d["reason"] for d in search["group_decisions"].values())
    assert any("held-out volumes" in line and "never saw" in line for line in lines)
    assert any(f"kept {search['chosen']!r}" in line for line in lines)
    precision = "int8" if export["int8_faster_than_fp32"] else "fp32"
    assert facts["predict"]["precision"] == precision and facts["predict"]["volumes"] == 2
    assert len(list((out / "predict").glob("*.nii.gz"))) == 2
    bench = json.loads((out / "bench.json").read_text())
    assert [(r["backend"], r["precision"], r["status"]) for r in bench["rows"]] == [
        ("torch", "fp32", "ok"), ("onnxruntime", "fp32", "ok"), ("onnxruntime", "int8", "ok")]
    assert all(r["volume_ms"] > 0 and len(r["dice_per_volume"]) == 2 for r in bench["rows"])
    assert set(facts["seconds_per_stage"]) == {"data", "train", "prune", "export", "predict", "bench"}


def test_quickstart_3d_settings_check_the_widths_and_seconds():
    with pytest.raises(UserError, match="widths"):
        Quickstart3DSettings(widths=(8,))
    with pytest.raises(UserError, match="int8_search_seconds"):
        Quickstart3DSettings(int8_search_seconds=0)
