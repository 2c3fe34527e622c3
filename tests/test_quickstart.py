"""The demo runs every stage of the pipeline; a tiny budget keeps this test quick."""

from __future__ import annotations

import json

import pytest

from edgeunet.quickstart import QuickstartSettings, run_quickstart

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
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
    assert list(dict.fromkeys(stages)) == ["[1]", "[2]", "[3]", "[4]", "[5]", "[6]"]  # every stage, in order
    from edgeunet.quickstart import runtime_formats

    formats, not_here = runtime_formats()
    assert "ort" in formats  # ONNX Runtime's mobile format needs nothing beyond the base install
    assert all(line in lines for line in (f"[4] export    {extra}" for extra in not_here))
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
    # the runtime table: the checkpoint and every file of the export, one row each
    files = sorted(p.name for p in (out / "export").iterdir() if p.suffix in (".onnx", ".ort", ".xml"))
    assert {"model.onnx", "model.int8.onnx", "model.ort", "model.int8.ort"} <= set(files)
    from edgeunet.env import has_bf16

    bf16 = [f"{f}@bf16" for f in files if f.endswith(".xml")] if has_bf16() else []  # OpenVINO in bf16 too
    assert sorted(row["model"] for row in bench["rows"]) == sorted(["best.pt", *files, *bf16])
    assert {row["status"] for row in bench["rows"]} == {"ok"}
    assert facts["prune"]["parameters"]["after"] < facts["prune"]["parameters"]["before"]
    # INT8 is scored on held-out images: not the training folder, and not the images the search chose on.
    data = json.loads((out / "export" / "export.json").read_text())["data"]
    assert data["sources"]["verification"] == str(out / "heldout")
    assert data["sources"]["calibration"] == str(out / "data")
    assert data["verification"] and set(data["verification"]).isdisjoint(data["search"])
    assert any("held-out images" in line and "never saw" in line for line in lines if line.startswith("[4]"))
