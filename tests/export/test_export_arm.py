"""``--target arm``: INT8 for phones and ARM boards (S8S8, full range), written and verified here, not timed here."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edgeunet.errors import UserError
from edgeunet.export import ExportOptions, export_model
from edgeunet.export.formats.auto import Candidate, skip_reason
from edgeunet.export.targets import quant_settings, resolve_reduce_range, where_note
from edgeunet.export.tensorrt.facts import check_int8_flavour, read_onnx_facts

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def arm_export(tmp_path_factory):
    import torch

    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    folder = tmp_path_factory.mktemp("arm")
    torch.manual_seed(0)
    model = create_model("unet-ds", base_width=8, depth=2).eval()
    save_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, ["background", "cell"], train_args={"img_size": 32}),
                    folder / "best.pt")
    options = ExportOptions(int8=True, target="arm", calib_images=4, search_images=2, val_images=4,
                            max_dice_drop=1.0, formats=("onnx", "ort"))
    report = export_model(folder / "best.pt", folder / "out", options, progress=False)
    return folder / "out", report


def test_arm_quantization_is_s8s8_with_full_range_weights():
    settings = quant_settings("arm")
    assert (settings["activation_type"], settings["weight_type"]) == ("QInt8", "QInt8")
    assert settings["reduce_range"] is False and settings["per_channel"] is True
    assert resolve_reduce_range("arm") is False  # whatever this (x86) machine lacks, the phone decides nothing here
    with pytest.raises(UserError, match="reduce_range does not apply to --target arm"):
        resolve_reduce_range("arm", True)


def test_arm_int8_file_has_int8_activations_and_says_its_flavour(arm_export):
    out, report = arm_export
    model = onnx.load(str(out / "model.int8.onnx"))
    assert {p.key: p.value for p in model.metadata_props}["int8_flavour"] == "arm"
    inits = {i.name: i for i in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node
                   if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits]
    assert zero_points and all(z.data_type == onnx.TensorProto.INT8 for z in zero_points)
    assert "int8_search" not in report and "int8_speed" not in report  # timing on x86 says nothing of a phone
    assert report["int8_quality"]["dice_check"] in ("passed", "skipped: verification images have no foreground")
    saved = json.loads((out / "export.json").read_text())
    assert saved["where"] == ("written for --target arm: verified here, not timed here; time them on the device "
                              "with `edgeunet bench`")


def test_arm_target_writes_ort_format_files_for_arm(arm_export):
    out, report = arm_export
    ort_files = {a["file"]: a for a in report["artifacts"] if a.get("format") == "ort"}
    assert set(ort_files) == {"model.ort", "model.int8.ort"}
    assert {a["target_platform"] for a in ort_files.values()} == {"arm"}


def test_arm_int8_file_runs_in_the_runtime(arm_export):
    from edgeunet.runtime import Segmenter

    mask = Segmenter(arm_export[0] / "model.int8.onnx")(np.zeros((40, 40), np.uint8))
    assert mask.shape == (40, 40)


def test_arm_int8_file_is_refused_by_build_engine(arm_export):
    path = arm_export[0] / "model.int8.onnx"
    with pytest.raises(UserError, match="arm INT8 flavour .*`edgeunet export --int8 --target tensorrt"):
        check_int8_flavour(path, read_onnx_facts(path))


def test_auto_for_arm_skips_openvino_and_says_where_it_timed():
    options = ExportOptions(int8=True, target="arm", formats=("auto",))
    reason = skip_reason(Candidate("openvino int8", "openvino", "int8"), options, 0.0)
    assert reason == "--target arm: phones and ARM boards run ONNX Runtime, ExecuTorch or LiteRT files"
    assert "timed on this CPU only" in where_note(options)
    assert where_note(ExportOptions(int8=True)) == "verified and timed on this machine"


def test_arm_target_refuses_the_search_and_engines():
    with pytest.raises(UserError, match="serves --target cpu only: drop it for --target arm"):
        ExportOptions(int8=True, target="arm", int8_search=True)
    with pytest.raises(UserError, match="a TensorRT engine needs symmetric INT8: add --target tensorrt"):
        ExportOptions(int8=True, target="arm", engine=True)
