"""``edgeunet export --formats``: OpenVINO, ExecuTorch, LiteRT and ORT-format files in the export folder,
verified and listed in export.json, and ``--formats auto`` choosing among the runtimes installed here.

The OpenVINO/ORT and auto tests run on the tiny fixture checkpoint (64 px) in tens of seconds; the
ExecuTorch and LiteRT exports take minutes, so each has one test marked slow. Without the
``openvino``/``mobile`` extras those tests skip with the extra to install.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.badinput import assert_user_error, run_cli

ROLE_FLAGS = ("--calib-images", "8", "--search-images", "8", "--val-images", "8", "--no-int8-search", "--no-progress")


def export(checkpoint, out, *flags: str) -> dict:
    result = run_cli("export", checkpoint, "--out", out, *ROLE_FLAGS, *flags, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "export.json").read_text())


def artifacts(report: dict) -> dict:
    return {a["file"]: a for a in report["artifacts"]}


@pytest.mark.slow
def test_unknown_format_is_refused_with_the_valid_names(tmp_path):
    result = run_cli("export", tmp_path / "best.pt", "--out", tmp_path / "out", "--formats", "onnx,openvnio")
    assert_user_error(result, "openvnio", "did you mean 'openvino'", "litert")
    assert not (tmp_path / "out").exists()


def test_formats_come_from_a_recipe_list_with_onnx_first():
    from edgeunet.export.options import ExportOptions
    from edgeunet.export.recipes import check_recipe

    check_recipe({"formats": ["ort", "openvino"]})
    assert ExportOptions.from_dict({"formats": ["ort", "OpenVINO", "ort"]}).formats == ("onnx", "ort", "openvino")
    assert ExportOptions().formats == ("onnx",)


def test_export_folder_check_accepts_the_format_files(tmp_path):
    from edgeunet.export.pipeline import check_out_dir

    for name in ("model.xml", "model.bin", "model.int8.xml", "model.int8.bin", "model.pte", "model.int8.tflite",
                 "model.int8.tflite.json", "model.ort", "model.int8.ort", "export.json"):
        (tmp_path / name).write_bytes(b"x")
    check_out_dir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="notes.txt"):
        check_out_dir(tmp_path)


def test_missing_library_is_refused_before_any_work_with_the_extra(tiny_checkpoint, tmp_path):
    hide = ("import runpy, sys; sys.modules['openvino'] = None; "
            "runpy.run_module('edgeunet', run_name='__main__')")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", hide, "export", str(tiny_checkpoint[0]), "--out", str(out),
                             "--formats", "openvino"], capture_output=True, text=True, timeout=300)
    assert_user_error(result, "openvino", "pip install 'edgeunet[openvino]'")
    assert not out.exists()


@pytest.fixture(scope="module")
def openvino_ort_export(tiny_checkpoint, tmp_path_factory):
    pytest.importorskip("openvino", reason="OpenVINO is not installed: pip install 'edgeunet[openvino]'")
    pytest.importorskip("nncf", reason="NNCF is not installed: pip install 'edgeunet[openvino]'")
    out = tmp_path_factory.mktemp("formats") / "export"
    return out, export(tiny_checkpoint[0], out, "--formats", "openvino,ort", "--int8")


@pytest.mark.parametrize("name", ["model.xml", "model.int8.xml", "model.ort", "model.int8.ort"])
def test_openvino_and_ort_files_are_verified_and_listed(openvino_ort_export, name):
    out, report = openvino_ort_export
    record = artifacts(report)[name]
    assert (out / name).is_file()
    assert record["format"] in ("openvino", "ort") and record["precision"] == ("int8" if ".int8." in name else "fp32")
    assert len(record["sha256"]) == 64 and record["size_bytes"] > 0
    assert record["parity"]["argmax_agreement"] >= record["min_agreement"]
    assert record["dice_check"] == "passed" and record["dice_drop"] <= report["options"]["max_dice_drop"]
    for companion in record["companions"]:  # the .bin of an IR
        assert (out / companion["file"]).is_file()


def test_openvino_int8_uses_accuracy_control_and_the_onnx_calibration_count(openvino_ort_export):
    _, report = openvino_ort_export
    quantization = artifacts(report)["model.int8.xml"]["quantization"]
    assert quantization["method"] == "quantize_with_accuracy_control"
    assert quantization["calibration_images"] == report["calibration"]["count"]


@pytest.mark.parametrize("name", ["model.xml", "model.int8.xml", "model.ort", "model.int8.ort"])
def test_segmenter_opens_each_format_file(openvino_ort_export, name):
    from edgeunet.runtime import Segmenter

    out, _report = openvino_ort_export
    image = (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)
    mask = Segmenter(out / name)(image)
    assert mask.shape == (64, 64)


def test_auto_ships_the_fastest_verified_candidate_within_the_dice_limit(tiny_checkpoint, tmp_path):
    # A tiny --search-time skips the slow exports (LiteRT, ExecuTorch): the logic, not a speed claim.
    out = tmp_path / "auto"
    report = export(tiny_checkpoint[0], out, "--formats", "auto", "--int8", "--search-time", "0.001")
    auto = report["auto"]
    rows = {row["candidate"]: row for row in auto["candidates"]}
    timed = [row for row in rows.values() if "ratio" in row]
    chosen = rows[auto["chosen"]]
    assert {"onnxruntime fp32", "onnxruntime int8"} <= {row["candidate"] for row in timed}
    assert chosen["verdict_auto"] == "shipped" and chosen["file"] == report["shipped"] == auto["file"]
    assert (out / report["shipped"]).is_file()
    assert chosen["ratio"] == max(row["ratio"] for row in timed)
    assert chosen["dice_drop"] is None or chosen["dice_drop"] <= report["options"]["max_dice_drop"]
    assert rows["onnxruntime fp32"]["ratio"] == 1.0
    for name in ("litert int8", "executorch int8"):
        assert rows[name]["status"] == "skipped"
        assert "--search-time" in rows[name]["reason"] or "pip install 'edgeunet[mobile]'" in rows[name]["reason"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_executorch_files_are_verified_and_open(tiny_checkpoint, tmp_path):
    pytest.importorskip("executorch", reason="ExecuTorch is not installed: pip install 'edgeunet[mobile]'")
    from edgeunet.runtime import Segmenter

    report = export(tiny_checkpoint[0], tmp_path / "et", "--formats", "executorch", "--int8")
    for name in ("model.pte", "model.int8.pte"):
        record = artifacts(report)[name]
        assert record["dice_check"] == "passed" and record["format"] == "executorch"
        assert Segmenter(tmp_path / "et" / name)(np.zeros((64, 64), np.uint8)).shape == (64, 64)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_litert_files_are_fixed_size_verified_and_open(tiny_checkpoint, tmp_path):
    pytest.importorskip("litert_torch", reason="litert-torch is not installed: pip install 'edgeunet[mobile]'")
    pytest.importorskip("executorch", reason="LiteRT INT8 uses ExecuTorch's quantizer: pip install 'edgeunet[mobile]'")
    from edgeunet.runtime import Segmenter

    report = export(tiny_checkpoint[0], tmp_path / "lt", "--formats", "litert", "--int8", "--img-size", "64")
    for name in ("model.tflite", "model.int8.tflite"):
        record = artifacts(report)[name]
        assert record["dice_check"] == "passed" and [c["file"] for c in record["companions"]] == [name + ".json"]
        assert Segmenter(tmp_path / "lt" / name)(np.zeros((64, 64), np.uint8)).shape == (64, 64)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_transformer_unet_goes_through_every_format(vit_checkpoint, tmp_path):
    """unet-vit's attention (MatMuls, a division, dynamic reshapes) in every runtime: FP32 and INT8 files of each
    format verified against PyTorch and opened by the runtime."""
    for module in ("openvino", "executorch", "litert_torch"):
        pytest.importorskip(module, reason=f"{module} is not installed: pip install 'edgeunet[openvino,mobile]'")
    from edgeunet.runtime import Segmenter

    out = tmp_path / "vit"
    report = export(vit_checkpoint[0], out, "--formats", "openvino,executorch,litert,ort", "--int8",
                    "--fixed-img-size", "64")
    files = artifacts(report)
    # XNNPACK leaves out a conv whose dynamic size the attention's reshapes read: the programs take one size
    assert all(files[name]["min_shape"] == files[name]["max_shape"] == [1, 1, 64, 64]
               for name in ("model.pte", "model.int8.pte"))
    for name in ("model.xml", "model.int8.xml", "model.pte", "model.int8.pte", "model.tflite", "model.int8.tflite",
                 "model.ort", "model.int8.ort"):
        assert files[name]["dice_check"] == "passed", (name, files[name])
        assert Segmenter(out / name)(np.zeros((64, 64), np.uint8)).shape == (64, 64)
