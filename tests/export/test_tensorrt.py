"""TensorRT planning (profile shapes, precision flags, trtexec line) without TensorRT; builds skip without it."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from tiny_onnx import tiny_onnx

from edgeunet.errors import UserError
from edgeunet.export import build_engine, export_onnx
from edgeunet.export.tensorrt.facts import graph_flavour, int8_flavour, read_onnx_facts
from edgeunet.export.tensorrt.plan import build_mode, trtexec_command
from edgeunet.export.tensorrt.shapes import check_shapes, default_shapes, parse_shapes
from edgeunet.models import create_model
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    model = create_model("unet-ds", base_width=8, depth=2)
    path = tmp_path_factory.mktemp("trt") / "model.onnx"
    return export_onnx(model, path, DEFAULT_PREPROCESSING, ["background", "cell"])


def test_parse_shapes_reads_min_opt_max():
    assert parse_shapes("1x1x256x256,1x1x512x512,4x1x1024x1024") == ((1, 1, 256, 256), (1, 1, 512, 512),
                                                                    (4, 1, 1024, 1024))


def test_parse_shapes_rejects_two_shapes():
    with pytest.raises(ValueError, match="give min,opt,max"):
        parse_shapes("1x1x256x256,1x1x512x512")


def test_parse_shapes_rejects_three_dims():
    with pytest.raises(ValueError, match="write BxCxHxW"):
        parse_shapes("1x256x256,1x1x512x512,1x1x512x512")


def test_check_shapes_rejects_size_off_the_multiple():
    shapes = parse_shapes("1x1x250x256,1x1x512x512,1x1x512x512")
    with pytest.raises(ValueError, match="250 is not a multiple of 16"):
        check_shapes(shapes, 1, 16)


def test_check_shapes_rejects_wrong_channels():
    with pytest.raises(ValueError, match="has 3 channels but the model takes 1"):
        check_shapes(parse_shapes("1x3x256x256,1x3x256x256,1x3x256x256"), 1, 16)


def test_check_shapes_rejects_min_above_max():
    with pytest.raises(ValueError, match="min <= opt <= max"):
        check_shapes(parse_shapes("4x1x256x256,1x1x256x256,1x1x256x256"), 1, 16)


def test_check_shapes_enforces_static_size():
    with pytest.raises(ValueError, match="exported for 128x128"):
        check_shapes(parse_shapes("1x1x256x256,1x1x256x256,1x1x256x256"), 1, 16, static_hw=(128, 128))


def test_default_shapes_round_to_the_multiple():
    assert default_shapes(1, 48) == ((1, 1, 288, 288), (1, 1, 528, 528), (4, 1, 1056, 1056))
    assert default_shapes(3, 16, static_hw=(128, 96))[2] == (4, 3, 128, 96)


def test_build_mode_trt10_defaults_to_strong_typing():
    assert build_mode(10, "int8") == {"strongly_typed": True, "flags": []}


def test_build_mode_trt10_fp16_flag_is_weakly_typed():
    assert build_mode(10, "fp32", fp16=True) == {"strongly_typed": False, "flags": ["FP16"]}
    assert build_mode(10, "int8", int8=True) == {"strongly_typed": False, "flags": ["INT8", "FP16"]}


def test_build_mode_int8_flag_needs_qdq_model():
    with pytest.raises(ValueError, match="--int8 needs a Q/DQ model"):
        build_mode(10, "fp32", int8=True)


def test_build_mode_trt11_refuses_precision_flags():
    assert build_mode(11, "fp16") == {"strongly_typed": True, "flags": []}
    with pytest.raises(ValueError, match="TensorRT 11 takes precision from the ONNX file"):
        build_mode(11, "fp32", fp16=True)


def test_build_mode_rejects_trt8():
    with pytest.raises(ValueError, match="TensorRT 10 or newer"):
        build_mode(8, "fp32")


def test_trtexec_command_lists_profile_and_flags():
    shapes = parse_shapes("1x1x256x256,1x1x512x512,4x1x1024x1024")
    cmd = trtexec_command("m.onnx", "m.engine", shapes, {"strongly_typed": False, "flags": ["FP16"]}, 2048, "cache.bin")
    assert cmd == ["trtexec", "--onnx=m.onnx", "--saveEngine=m.engine", "--minShapes=images:1x1x256x256",
                   "--optShapes=images:1x1x512x512", "--maxShapes=images:4x1x1024x1024", "--fp16",
                   "--memPoolSize=workspace:2048M", "--timingCacheFile=cache.bin"]


def test_dry_run_writes_trtexec_file(onnx_file):
    result = build_engine(onnx_file, shapes="1x1x64x64,1x1x128x128,2x1x256x256", dry_run=True)
    text = (onnx_file.parent / "model.fp32.engine.trtexec.txt").read_text()
    assert result["trtexec"] in text and "--minShapes=images:1x1x64x64" in text and "--stronglyTyped" in text


@pytest.mark.skipif(HAS_TRT, reason="checks the message shown when TensorRT is absent")
def test_build_without_tensorrt_names_extra_and_keeps_trtexec_line(onnx_file, tmp_path):
    engine = tmp_path / "m.engine"
    with pytest.raises(ImportError, match=r"pip install 'edgeunet\[trt\]'.*target device.*trtexec --onnx="):
        build_engine(onnx_file, engine)
    assert (tmp_path / "m.engine.trtexec.txt").is_file()


@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_TRT, reason="needs TensorRT and an NVIDIA GPU")
def test_build_engine_writes_engine_and_sidecar(onnx_file, tmp_path):
    engine = tmp_path / "model.fp32.engine"
    result = build_engine(onnx_file, engine, shapes="1x1x64x64,1x1x128x128,2x1x128x128",
                          timing_cache=tmp_path / "cache.bin")
    facts = json.loads((tmp_path / "model.fp32.engine.json").read_text())
    assert engine.stat().st_size == result["size_bytes"] > 0
    assert facts["profile"]["images"]["max"] == [2, 1, 128, 128]
    assert facts["metadata"]["precision"] == "fp32" and facts["tensorrt_version"]
    assert (tmp_path / "cache.bin").is_file()


def _ort_quantized(tmp_path, **settings):
    """The tiny model quantized by ONNX Runtime's static quantizer with ``settings``."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Images(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"images": rng.random((1, 1, 16, 16), dtype=np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    out = tmp_path / "quantized.onnx"
    quantize_static(str(tiny_onnx(tmp_path / "model.onnx")), str(out), Images(), **settings)
    return out


def test_graph_flavour_reads_qdq_zero_points(tmp_path):
    assert graph_flavour(tiny_onnx(tmp_path / "cpu.onnx", int8="cpu")) == "cpu"
    assert graph_flavour(tiny_onnx(tmp_path / "trt.onnx", int8="tensorrt")) == "tensorrt"


def test_graph_flavour_of_onnxruntime_quantized_files(tmp_path):
    from onnxruntime.quantization import QuantFormat, QuantType

    uint8 = _ort_quantized(tmp_path, quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8)
    assert graph_flavour(uint8) == "cpu"
    qoperator = _ort_quantized(tmp_path, quant_format=QuantFormat.QOperator)
    assert graph_flavour(qoperator) == "cpu"
    symmetric = _ort_quantized(tmp_path, quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                               weight_type=QuantType.QInt8, extra_options={"ActivationSymmetric": True,
                                                                            "WeightSymmetric": True})
    assert graph_flavour(symmetric) == "tensorrt"


def test_declared_flavour_is_trusted_and_an_unknown_one_refused(tmp_path):
    model = tiny_onnx(tmp_path / "model.int8.onnx", int8="tensorrt")
    facts = read_onnx_facts(model)
    assert int8_flavour(model, facts) == "tensorrt"
    odd = type(facts)(facts.metadata, {**facts.props, "int8_flavour": "gpu"}, facts.static_hw)
    with pytest.raises(UserError, match=r"int8_flavour='gpu', not one of cpu, arm, tensorrt"):
        int8_flavour(model, odd)


def test_cpu_flavour_int8_is_refused_before_anything_is_written(tmp_path):
    model = tiny_onnx(tmp_path / "model.int8.onnx", int8="cpu", declare_flavour=False)
    with pytest.raises(UserError, match="edgeunet export --int8 --target tensorrt"):
        build_engine(model, dry_run=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx"]


def test_static_model_gets_its_size_in_every_profile_shape(tmp_path):
    model = tiny_onnx(tmp_path / "model.onnx", static_hw=(16, 24))
    result = build_engine(model, dry_run=True)
    assert "--minShapes=images:1x1x16x24" in result["trtexec"] and "--maxShapes=images:4x1x16x24" in result["trtexec"]
