"""FP32/FP16 ONNX export: parity with PyTorch over every variant, metadata, dynamic shapes, atomic output."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgeunet.checkpoint import make_checkpoint, save_checkpoint
from edgeunet.export import ParityError, export_model, export_onnx, read_metadata
from edgeunet.export import pipeline
from edgeunet.export.fp16 import convert_fp16
from edgeunet.export.onnx import model_metadata
from edgeunet.export.samples import fit_to_multiple, load_inputs
from edgeunet.export.verify import onnx_logits, parity, torch_logits
from edgeunet.models import create_model, list_models
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

CLASSES = ["background", "cell"]


def tiny(name: str):
    torch.manual_seed(0)
    model = create_model(name, base_width=8, depth=2).eval()
    # Random BatchNorm statistics make the logits depend on every layer (fresh BN is the identity).
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every registered variant exported once: name -> (model, onnx path)."""
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    for name in list_models():
        model = tiny(name)
        out[name] = (model, export_onnx(model, folder / f"{name}.onnx", DEFAULT_PREPROCESSING, CLASSES))
    return out


@pytest.fixture(scope="module")
def images():
    return load_inputs("synthetic", 4, 64, "val", DEFAULT_PREPROCESSING, 1, 4).images


@pytest.fixture()
def checkpoint(tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint(make_checkpoint(tiny("unet-ds"), DEFAULT_PREPROCESSING, CLASSES, train_args={"img_size": 32}), path)
    return path


@pytest.mark.parametrize("name", list_models())
def test_onnx_matches_pytorch(exported, images, name):
    model, path = exported[name]
    figures = parity(torch_logits(model, images), onnx_logits(path, images))
    assert figures["argmax_agreement"] >= 0.9999
    assert figures["max_abs_diff"] < 1e-3


@pytest.mark.parametrize("name", list_models())
def test_onnx_runs_at_two_sizes_and_batch_two(exported, name):
    model, path = exported[name]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((32, 48), (64, 64)):
        x = np.random.default_rng(0).random((2, 1, h, w), dtype=np.float32)
        logits = session.run(None, {"images": x})[0]
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        assert logits.shape == (2, 2, h, w)
        assert np.abs(logits - expected).max() < 1e-3


def test_onnx_carries_metadata_and_passes_full_check(exported):
    _, path = exported["unet"]
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    meta = read_metadata(path)
    assert (meta.in_channels, meta.num_classes, meta.size_multiple, meta.precision) == (1, 2, 4, "fp32")
    assert meta.class_names == CLASSES and meta.preprocessing == DEFAULT_PREPROCESSING
    assert meta.model_config["widths"] == [8, 16, 32]


def test_static_img_size_fixes_height_and_width(tmp_path):
    path = export_onnx(tiny("unet-ds"), tmp_path / "m.onnx", DEFAULT_PREPROCESSING, CLASSES, img_size=32)
    dims = [d.dim_value or d.dim_param for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [1, 32, 32] and isinstance(dims[0], str)


def test_img_size_not_a_multiple_names_valid_sizes(tmp_path):
    with pytest.raises(ValueError, match="not a multiple of 8.*use 32 or 40"):
        export_onnx(tiny("unet-ds"), tmp_path / "m.onnx", DEFAULT_PREPROCESSING, CLASSES, img_size=35)


def test_fp16_file_has_fp16_weights_and_float32_io(exported, images, tmp_path):
    model, path = exported["unet-attention"]
    props = model_metadata(model.current_config().to_dict(), DEFAULT_PREPROCESSING, CLASSES, "fp16").to_props()
    half = convert_fp16(path, tmp_path / "model.fp16.onnx", props)
    proto = onnx.load(str(half))
    float_weights = [t for t in proto.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)]
    assert sum(t.data_type == onnx.TensorProto.FLOAT16 for t in float_weights) >= 0.9 * len(float_weights)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert read_metadata(half).precision == "fp16"
    assert parity(torch_logits(model, images), onnx_logits(half, images))["argmax_agreement"] >= 0.995


def test_fit_to_multiple_crops_center_and_pads_short_sides():
    image, mask = np.arange(2 * 10 * 3, dtype=np.float32).reshape(2, 10, 3), np.ones((10, 3), dtype=np.int64)
    out, out_mask = fit_to_multiple(image, mask, 4)
    assert out.shape == (2, 8, 4) and out_mask.shape == (8, 4)
    assert np.array_equal(out[:, :, :3], image[:, 1:9, :])  # rows 1..8 kept, one column padded after
    assert np.array_equal(out[:, :, 3], image[:, 1:9, 2])  # edge padding
    assert out_mask[:, 3].sum() == 0 and out_mask[:, :3].all()


def test_export_model_writes_report_with_hashes(checkpoint, tmp_path):
    report = export_model(checkpoint, tmp_path / "out", fp16=True, calib_size=2, progress=False)
    saved = json.loads((tmp_path / "out" / "export.json").read_text())
    assert saved == report
    files = {a["file"]: a for a in report["artifacts"]}
    assert set(files) == {"model.onnx", "model.fp16.onnx"}
    assert files["model.onnx"]["opset"] == 17 and len(files["model.onnx"]["sha256"]) == 64
    assert files["model.fp16.onnx"]["parity"]["argmax_agreement"] >= 0.995
    assert {"torch", "onnx", "onnxruntime", "onnxslim", "python", "edgeunet"} <= set(report["toolchain"])
    assert not list(tmp_path.glob(".out.*"))


def test_failed_parity_keeps_earlier_export(checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "out"
    export_model(checkpoint, out, calib_size=1, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def failing(precision, figures, min_agreement=None):
        raise ParityError("simulated parity failure")

    monkeypatch.setattr(pipeline.verify, "check_parity", failing)
    with pytest.raises(ParityError, match="simulated"):
        export_model(checkpoint, out, fp16=True, calib_size=1, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".out.*"))


def test_out_dir_with_foreign_files_is_refused(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="holds files an export does not write.*best.pt"):
        export_model(checkpoint, tmp_path, calib_size=1, progress=False)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="checks the message shown when TensorRT is absent")
def test_engine_without_tensorrt_names_the_extra(checkpoint, tmp_path):
    with pytest.raises(ImportError, match=r"pip install 'edgeunet\[trt\]'.*target device"):
        export_model(checkpoint, tmp_path / "out", engine=True, progress=False)


def test_cli_export_subprocess(checkpoint, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "edgeunet", "export", str(checkpoint), "--out", str(out), "--calib-size", "2", "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "model.onnx" in result.stdout and "argmax agreement" in result.stdout
    assert (out / "model.onnx").is_file() and (out / "export.json").is_file()


def _export_cli(argv: list[str]) -> int:
    """Runs the export command through its own parser (other commands may be missing while developing)."""
    import argparse

    from edgeunet.cli import export as export_cli

    parser = argparse.ArgumentParser(prog="edgeunet")
    export_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_failed_dice_check_exits_1_and_keeps_folder(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert _export_cli(["export", str(checkpoint), "--out", str(out), "--calib-size", "1", "--no-progress"]) == 0
    before = sorted(p.name for p in out.iterdir())
    rc = _export_cli(["export", str(checkpoint), "--out", str(out), "--int8", "--calib-size", "2", "--max-dice-drop", "-1", "--no-progress"])
    assert rc == 1
    assert "INT8 Dice drop" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before
