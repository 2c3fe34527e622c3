"""The exact graph rewrites before INT8 quantization (export.graph_rewrites): the file structure they rely on."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeunet.export.graph_rewrites import STEM_NODE, space_to_depth_stem
from edgeunet.export.int8 import prepare
from edgeunet.export.onnx import export_onnx
from edgeunet.models import create_model
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

pytest.importorskip("torch", reason="exporting a model needs the train extra")
pytestmark = pytest.mark.slow  # every test exports a model


def _export(tmp_path, name: str = "unet-ds", **overrides) -> tuple:
    import torch

    torch.manual_seed(0)
    model = create_model(name, base_width=8, depth=2, **overrides).eval()
    # the graph as PyTorch exports it: export_onnx's own rewrite is what these tests check
    fp32 = export_onnx(model, tmp_path / "model.onnx", DEFAULT_PREPROCESSING, ["background", "nucleus"],
                       graph_rewrites=False)
    return fp32, model.current_config().in_channels


def _logits(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("in_channels", [1, 3])
def test_stem_becomes_space_to_depth_with_the_same_outputs(tmp_path, in_channels):
    fp32, channels = _export(tmp_path, in_channels=in_channels)
    before = onnx.load(str(fp32)).graph
    assert any(n.op_type == "Transpose" and len(list(n.attribute[0].ints)) == 6 for n in before.node)
    prepared = prepare(fp32, tmp_path / "prepared.onnx")
    graph = onnx.load(str(prepared)).graph
    stem = [n for n in graph.node if n.op_type == "SpaceToDepth"]
    assert [n.name for n in stem] == [STEM_NODE] and stem[0].input[0] == graph.input[0].name
    assert not any(n.op_type in ("Transpose", "Reshape", "Unsqueeze", "Squeeze") for n in graph.node)
    readers = [n for n in graph.node if stem[0].output[0] in n.input]
    assert [n.op_type for n in readers] == ["Conv"]
    x = np.random.default_rng(1).standard_normal((2, channels, 48, 80)).astype(np.float32)  # H != W, batch 2
    np.testing.assert_allclose(_logits(prepared, x), _logits(fp32, x), rtol=1e-4, atol=1e-4)


def test_prepare_without_rewrite_keeps_the_exported_stem(tmp_path):
    fp32, _ = _export(tmp_path)
    graph = onnx.load(str(prepare(fp32, tmp_path / "prepared.onnx", rewrite=False))).graph
    assert not any(n.op_type == "SpaceToDepth" for n in graph.node)
    assert any(n.op_type == "Transpose" for n in graph.node)


def test_model_without_space_to_depth_is_left_alone(tmp_path):
    fp32, _ = _export(tmp_path, space_to_depth=1)
    model_proto = onnx.load(str(fp32))
    nodes = [n.SerializeToString() for n in model_proto.graph.node]
    assert space_to_depth_stem(model_proto, 1) is False
    assert [n.SerializeToString() for n in model_proto.graph.node] == nodes


def test_grouped_conv_reader_is_left_alone(tmp_path):
    fp32, _ = _export(tmp_path)
    model_proto = onnx.load(str(prepare(fp32, tmp_path / "prepared.onnx", rewrite=False)))
    graph = model_proto.graph
    reader = next(n for n in graph.node if n.op_type == "Conv")
    kept = [a for a in reader.attribute if a.name != "group"]
    del reader.attribute[:]
    reader.attribute.extend(kept + [onnx.helper.make_attribute("group", 2)])  # its channel order cannot be permuted
    nodes = [n.SerializeToString() for n in graph.node]
    assert space_to_depth_stem(model_proto, 1) is False
    assert [n.SerializeToString() for n in graph.node] == nodes


def test_profile_fold_leaves_no_dq_resize_q(tmp_path):
    """benchmarks/int8_profile.py's "Resize on uint8" experiment: no DQ -> Resize -> Q left, same argmax."""
    from benchmarks.int8_profile import fold_linear_resize
    from edgeunet.export.int8 import quantize_int8

    fp32, _ = _export(tmp_path)
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 64, 64)).astype(np.float32) for _ in range(4)]
    int8 = tmp_path / "model.int8.onnx"
    quantize_int8(prepare(fp32, tmp_path / "prepared.onnx"), int8, calib, {"precision": "int8"})
    model_proto = onnx.load(str(int8))
    resizes = sum(n.op_type == "Resize" for n in model_proto.graph.node)
    assert resizes and fold_linear_resize(model_proto) == resizes
    producers = {o: n for n in model_proto.graph.node for o in n.output}
    readers = {i: n for n in model_proto.graph.node for i in n.input}
    for resize in (n for n in model_proto.graph.node if n.op_type == "Resize"):
        assert producers[resize.input[0]].op_type != "DequantizeLinear"
        assert readers[resize.output[0]].op_type != "QuantizeLinear"
    folded = tmp_path / "folded.onnx"
    onnx.save(model_proto, str(folded))
    x = calib[0][None]
    agree = (_logits(folded, x).argmax(1) == _logits(int8, x).argmax(1)).mean()
    assert agree > 0.99


def test_export_onnx_writes_the_space_to_depth_stem_and_matches_pytorch(tmp_path):
    import torch

    torch.manual_seed(0)
    model = create_model("unet-ds", base_width=8, depth=2).eval()
    path = export_onnx(model, tmp_path / "model.onnx", DEFAULT_PREPROCESSING, ["background", "nucleus"])
    graph = onnx.load(str(path)).graph
    assert [n.name for n in graph.node if n.op_type == "SpaceToDepth"] == [STEM_NODE]
    assert not any(n.op_type == "Transpose" for n in graph.node)
    x = np.random.default_rng(2).standard_normal((1, 1, 64, 96)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_logits(path, x), expected, rtol=1e-4, atol=1e-4)

