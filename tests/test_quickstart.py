"""The demo runs every stage of the pipeline; a tiny budget keeps this test quick."""

from __future__ import annotations

import json

import pytest

from edgeunet.quickstart import QuickstartSettings, run_quickstart

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_quickstart_runs_every_stage(tmp_path):
    lines = []
    settings = QuickstartSettings(
        out=str(tmp_path / "qs"),
        n_images=12,
        image_size=64,
        img_size=64,
        epochs=2,
        samples_per_epoch=32,
        finetune_epochs=1,
        bench_seconds=0.05,
        int8_search_seconds=2.0,
        progress=False,
    )
    facts = run_quickstart(settings, report=lines.append)
    stages = [line.split()[0] for line in lines if line.startswith("[")]
    assert stages == ["[1]", "[2]", "[3]", "[4]", "[4]", "[4]", "[5]", "[6]"]
    out = tmp_path / "qs"
    for path in (
        "train/best.pt",
        "prune/best.pt",
        "prune/prune.json",
        "export/model.onnx",
        "export/model.int8.onnx",
        "export/export.json",
        "bench.json",
    ):
        assert (out / path).is_file(), path
    assert len(list((out / "predict").glob("*_overlay.png"))) == 4
    bench = json.loads((out / "bench.json").read_text())
    assert {row["status"] for row in bench["rows"]} == {"ok"} and len(bench["rows"]) == 3
    assert facts["prune"]["parameters"]["after"] < facts["prune"]["parameters"]["before"]
    # INT8 is scored on held-out images: not the training folder, and not the images the search chose on.
    data = json.loads((out / "export" / "export.json").read_text())["data"]
    assert data["sources"]["verification"] == str(out / "heldout")
    assert data["sources"]["calibration"] == str(out / "data")
    assert data["verification"] and set(data["verification"]).isdisjoint(data["search"])
    assert any("held-out images" in line and "never saw" in line for line in lines if line.startswith("[4]"))
