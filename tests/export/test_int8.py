"""INT8 export: real quantization, target flavours, Dice check on a trained model, culprit report."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from small_models import small_model

from edgeunet.data.sources import load_samples
from edgeunet.export import DiceDropError, ExportOptions, export_model, read_metadata
from edgeunet.export.int8 import worst_tensors
from edgeunet.export.targets import cpu_lacks_vnni, quant_settings
from edgeunet.models import list_models
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING, preprocess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tiny_checkpoint):
    return tiny_checkpoint[0]


@pytest.fixture(scope="module")
def cpu_export(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu") / "export"
    return out, export_model(
        trained, out, ExportOptions(int8=True, calib_images=8, target="cpu", int8_search=False), progress=False
    )


@pytest.fixture(scope="module")
def trt_export(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("trt") / "export"
    options = ExportOptions(int8=True, calib_images=8, target="tensorrt", calib_method="percentile")
    return out, export_model(trained, out, options, progress=False)


def _producers(graph) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


@pytest.mark.parametrize("flavour", ["cpu_export", "trt_export"])
def test_int8_quantizes_conv_inputs(flavour, request):
    out, _ = request.getfixturevalue(flavour)
    graph = onnx.load(str(out / "model.int8.onnx")).graph
    producers = _producers(graph)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    quantized = [
        n
        for n in convs
        if all(getattr(producers.get(name), "op_type", "") == "DequantizeLinear" for name in n.input[:2])
    ]
    assert convs and len(quantized) >= 0.9 * len(convs)


@pytest.mark.parametrize("flavour", ["cpu_export", "trt_export"])
def test_int8_keeps_dice(flavour, request):
    _, report = request.getfixturevalue(flavour)
    quality = report["int8_quality"]
    assert quality["fp32"]["mean_dice"] > 0.8
    assert quality["dice_drop"] <= 0.01


def test_tensorrt_target_has_only_zero_zero_points(trt_export):
    out, report = trt_export
    model = onnx.load(str(out / "model.int8.onnx"))
    inits = {t.name: t for t in model.graph.initializer}
    zero_points = [
        n.input[2] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2
    ]
    assert zero_points
    for name in zero_points:  # int8 activations and weights, int32 biases
        assert inits[name].data_type in (onnx.TensorProto.INT8, onnx.TensorProto.INT32)
        assert not numpy_helper.to_array(inits[name]).any()
    assert report["calibration"]["quantization"]["activation_type"] == "QInt8"


def test_cpu_target_uses_uint8_activations(cpu_export):
    out, report = cpu_export
    model = onnx.load(str(out / "model.int8.onnx"))
    inits = {t.name: t for t in model.graph.initializer}
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantize and all(inits[n.input[2]].data_type == onnx.TensorProto.UINT8 for n in quantize)
    assert report["calibration"]["quantization"]["reduce_range"] == cpu_lacks_vnni()


def test_int8_structure_for_onnx_runtime(cpu_export, trt_export):
    """The structure the CPU speed relies on: a SpaceToDepth stem (no 6-D Transpose), every skip Concat with
    quantized inputs and output (ONNX Runtime runs QLinearConcat), Resize's Q/DQ on its input's scale."""
    for out, _ in (cpu_export, trt_export):
        graph = onnx.load(str(out / "model.int8.onnx")).graph
        producers = _producers(graph)
        assert [n.op_type for n in graph.node if n.name == "/stem/SpaceToDepth"] == ["SpaceToDepth"]
        assert not any(n.op_type == "Transpose" for n in graph.node)
        concats = [n for n in graph.node if n.op_type == "Concat"]
        assert concats and all(producers[i].op_type == "DequantizeLinear" for n in concats for i in n.input)
        readers = {i: n for n in graph.node for i in n.input}
        assert all(readers[n.output[0]].op_type == "QuantizeLinear" for n in concats)
    graph = onnx.load(str(cpu_export[0] / "model.int8.onnx")).graph
    producers, readers = _producers(graph), {i: n for n in graph.node for i in n.input}
    for resize in (n for n in graph.node if n.op_type == "Resize"):
        dq, q = producers[resize.input[0]], readers[resize.output[0]]
        assert (dq.op_type, q.op_type) == ("DequantizeLinear", "QuantizeLinear") and dq.input[1:] == q.input[1:]


def test_int8_keeps_dynamic_shapes_and_metadata(cpu_export):
    out, _ = cpu_export
    session = ort.InferenceSession(str(out / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    for h, w in ((32, 64), (96, 48)):
        logits = session.run(None, {"images": np.random.default_rng(0).random((2, 1, h, w), dtype=np.float32)})[0]
        assert logits.shape == (2, 2, h, w)
    meta = read_metadata(out / "model.int8.onnx")
    assert meta.precision == "int8" and meta.class_names == ["background", "cell"]


def test_report_lists_calibration_images(cpu_export):
    _, report = cpu_export
    calibration = report["calibration"]
    assert calibration["count"] == 8 and calibration["method"] == "minmax"
    assert calibration["images"][0] == "synthetic-calib-0000"
    assert {a["file"] for a in report["artifacts"]} == {"model.onnx", "model.int8.onnx"}


@pytest.fixture(scope="module")
def own_predictions(tiny_checkpoint, tmp_path_factory):
    """A folder whose masks are the FP32 ONNX model's own predictions: FP32 scores Dice 1.0 on it exactly, so
    INT8 loses Dice as soon as it changes one pixel, and a --max-dice-drop of 0 must fail."""
    from edgeunet.data.io import write_mask
    from edgeunet.data.synthetic import write_synthetic
    from edgeunet.export.onnx import export_onnx
    from edgeunet.export.verify import onnx_logits

    folder = tmp_path_factory.mktemp("own")
    data = write_synthetic(folder / "val", n=6, size=64, seed=7)
    fp32 = export_onnx(tiny_checkpoint[1], folder / "model.onnx", DEFAULT_PREPROCESSING, ["background", "cell"])
    samples = load_samples(str(data))
    logits = onnx_logits(fp32, [preprocess(image, DEFAULT_PREPROCESSING) for _, image, _ in samples])
    for (name, _, _), lg in zip(samples, logits):
        write_mask(data / "masks" / f"{name}.png", lg.argmax(0).astype(np.uint8))
    return data


def test_dice_drop_failure_names_tensors_and_keeps_earlier_export(trained, cpu_export, own_predictions):
    out, _ = cpu_export
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    options = ExportOptions(int8=True, calib_images=4, int8_search=False, val=str(own_predictions), max_dice_drop=0)
    with pytest.raises(DiceDropError, match=r"exceeds --max-dice-drop 0; lowest-SQNR tensors: .+ dB"):
        export_model(trained, out, options, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cli_failed_dice_check_exits_2_and_keeps_folder(trained, own_predictions, tmp_path, capsys):
    from edgeunet.cli import main

    out = tmp_path / "out"
    assert main(["export", str(trained), "--out", str(out), "--val-images", "1", "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    rc = main(
        [
            "export",
            str(trained),
            "--out",
            str(out),
            "--int8",
            "--no-int8-search",
            "--val",
            str(own_predictions),
            "--calib-images",
            "4",
            "--max-dice-drop",
            "0",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "INT8 Dice drop" in err and "left as it was" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_int8_file_records_its_flavour(cpu_export, trt_export):
    for (out, _), flavour in ((cpu_export, "cpu"), (trt_export, "tensorrt")):
        proto = onnx.load(str(out / "model.int8.onnx"), load_external_data=False)
        props = {p.key: p.value for p in proto.metadata_props}
        assert props["int8_flavour"] == flavour and props["precision"] == "int8"


def test_cpu_lacks_vnni_reads_cpu_flags():
    assert cpu_lacks_vnni("x86_64", "flags\t: fpu sse avx2\n")
    assert not cpu_lacks_vnni("x86_64", "flags\t: fpu avx2 avx512_vnni\n")
    assert not cpu_lacks_vnni("x86_64", "flags\t: fpu avx2 avx_vnni\n")
    assert not cpu_lacks_vnni("aarch64", "Features\t: fp asimd\n")


def test_tensorrt_target_rejects_reduce_range():
    with pytest.raises(ValueError, match="reduce_range does not apply to --target tensorrt"):
        quant_settings("tensorrt", reduce_range=True)


def test_unknown_target_names_the_choices(trained, tmp_path):
    with pytest.raises(ValueError, match="unknown --target 'gpu': use one of cpu, arm, tensorrt"):
        export_model(trained, tmp_path / "out", ExportOptions(int8=True, target="gpu"), progress=False)


def test_worst_tensors_ranks_lowest_sqnr_first():
    rows = [{"tensor": "a", "sqnr_db": 30.0}, {"tensor": "b", "sqnr_db": None}, {"tensor": "c", "sqnr_db": 5.0}]
    assert [r["tensor"] for r in worst_tensors(rows, top=3)] == ["c", "a", "b"]


@pytest.mark.parametrize("target", ["cpu", "tensorrt"])
@pytest.mark.parametrize("name", list_models())
def test_every_variant_quantizes_its_convs(name, target, tmp_path):
    """Registry-driven: Q/DQ feed at least 90% of the Conv nodes of every variant; TensorRT zero points are 0."""
    from edgeunet.export.int8 import prepare, quantize_int8
    from edgeunet.export.onnx import export_onnx
    from edgeunet.runtime.metadata import ModelMetadata

    torch.manual_seed(0)
    model = small_model(name).eval()
    fp32 = export_onnx(model, tmp_path / "model.onnx", DEFAULT_PREPROCESSING, ["background", "cell"])
    dims = model.current_config().spatial_dims
    inputs = [
        preprocess(image, DEFAULT_PREPROCESSING, spatial_dims=dims)
        for _, image, _ in load_samples("synthetic", n=4 if dims == 2 else 2, size=32, split="calib", spatial_dims=dims)
    ]
    props = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props}
    quantize_int8(
        prepare(fp32, tmp_path / "prepared.onnx"),
        tmp_path / "model.int8.onnx",
        inputs,
        {**props, "precision": "int8"},
        target=target,
    )
    graph = onnx.load(str(tmp_path / "model.int8.onnx")).graph
    producers = _producers(graph)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    quantized = [
        n for n in convs if all(getattr(producers.get(i), "op_type", "") == "DequantizeLinear" for i in n.input[:2])
    ]
    assert convs and len(quantized) >= 0.9 * len(convs)
    assert (
        ModelMetadata.from_props(
            {p.key: p.value for p in onnx.load(str(tmp_path / "model.int8.onnx")).metadata_props}
        ).precision
        == "int8"
    )
    if target == "tensorrt":
        inits = {t.name: t for t in graph.initializer}
        zero_points = [
            n.input[2] for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2
        ]
        assert zero_points and not any(numpy_helper.to_array(inits[z]).any() for z in zero_points)
