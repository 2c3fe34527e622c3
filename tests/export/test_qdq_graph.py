"""The QDQ rewrites after quantize_static (export.int8.qdq_graph) and the ``up_act`` layout that lets the
decoder concats of an INT8 file run as byte copies."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edgeunet.errors import UserError
from edgeunet.export.int8 import prepare, quantize_int8
from edgeunet.export.int8.qdq_graph import dequantize_after_depth_to_space, share_concat_scales
from edgeunet.models import ModelConfig, build_model, create_model, get_config
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

pytest.importorskip("torch", reason="building a model needs the train extra")


def _int8(tmp_path, per_channel: bool = True, **overrides):
    """(fp32 path, int8 path, calibration images) of a tiny untrained unet-ds, quantized as export does
    (``per_channel=False``: the search's per-tensor-weights candidate)."""
    import torch

    from edgeunet.export.onnx import export_onnx

    torch.manual_seed(0)
    model = create_model("unet-ds", base_width=8, depth=2, **overrides).eval()
    fp32 = export_onnx(model, tmp_path / "model.onnx", DEFAULT_PREPROCESSING, ["background", "nucleus"])
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 64, 64)).astype(np.float32) for _ in range(4)]
    int8 = tmp_path / "model.int8.onnx"
    quantize_int8(prepare(fp32, tmp_path / "prepared.onnx"), int8, calib, {"precision": "int8"},
                  overrides=None if per_channel else {"per_channel": False})
    return fp32, int8, calib


def _logits(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _concat_params(model_proto) -> list[set]:
    """Per Concat, the set of (scale, zero point) values of its input DQs and output Q."""
    graph = model_proto.graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    readers = {i: n for n in graph.node for i in n.input}
    found = []
    for concat in (n for n in graph.node if n.op_type == "Concat"):
        nodes = [producers[i] for i in concat.input] + [readers[concat.output[0]]]
        found.append({(float(init[n.input[1]]), int(init[n.input[2]])) for n in nodes})
    return found


@pytest.mark.slow
def test_up_act_concats_share_one_scale_and_zero_point(tmp_path):
    _, int8, _ = _int8(tmp_path, up_act=True)
    groups = _concat_params(onnx.load(str(int8)))
    assert len(groups) == 2 and all(len(g) == 1 for g in groups)  # depth 2: two decoder concats, each a copy
    assert all(next(iter(g))[1] == 0 for g in groups)  # ReLU outputs: zero point 0 still clamps at 0


@pytest.mark.slow
def test_signed_up_branch_keeps_its_own_scale(tmp_path):
    """Without up_act the up-sampled branch is signed: its zero point differs, so nothing is forced together."""
    _, int8, _ = _int8(tmp_path, up_act=False)
    model_proto = onnx.load(str(int8))
    groups = _concat_params(model_proto)
    assert len(groups) == 2 and all(len(g) > 1 for g in groups)
    before = [i.SerializeToString() for i in model_proto.graph.initializer]
    assert share_concat_scales(model_proto) == 0
    assert [i.SerializeToString() for i in model_proto.graph.initializer] == before


@pytest.mark.slow
def test_shared_scales_keep_the_int8_file_close_to_fp32(tmp_path):
    fp32, int8, calib = _int8(tmp_path, up_act=True)
    x = calib[1][None]
    agree = (_logits(int8, x).argmax(1) == _logits(fp32, x).argmax(1)).mean()
    assert agree > 0.97


@pytest.mark.slow
def test_depth_to_space_runs_before_the_output_dequantize_with_the_same_outputs(tmp_path):
    _, int8, calib = _int8(tmp_path, up_act=True)
    graph = onnx.load(str(int8)).graph
    producers = {o: n for n in graph.node for o in n.output}
    last = producers[graph.output[0].name]
    assert last.op_type == "DequantizeLinear" and producers[last.input[0]].op_type == "DepthToSpace"
    # undo the swap by hand: the file must give exactly what DQ -> DepthToSpace gives
    model_proto = onnx.load(str(int8))
    g = model_proto.graph
    producers = {o: n for n in g.node for o in n.output}
    dq = producers[g.output[0].name]
    d2s = producers[dq.input[0]]
    quantized, out = d2s.input[0], dq.output[0]
    dq.input[0], dq.output[0], d2s.input[0], d2s.output[0] = quantized, "dq_first", "dq_first", out
    nodes = [n for n in g.node if n is not d2s] + [d2s]
    del g.node[:]
    g.node.extend(nodes)
    unswapped = tmp_path / "unswapped.onnx"
    onnx.save(model_proto, str(unswapped))
    x = np.stack([calib[2], calib[3]])  # batch 2
    np.testing.assert_array_equal(_logits(int8, x), _logits(unswapped, x))
    assert dequantize_after_depth_to_space(onnx.load(str(unswapped))) == 1


def test_up_act_adds_norm_and_relu_to_the_up_conv_only():
    on = create_model("unet-ds", base_width=8, depth=2, up_act=True).state_dict()
    off = create_model("unet-ds", base_width=8, depth=2, up_act=False).state_dict()
    added = set(on) - set(off)
    assert added and all(".up.norm." in k for k in added) and not set(off) - set(on)


def test_up_act_is_the_ds_edge_default_and_goes_with_the_resize():
    assert get_config("unet-ds").up_act and get_config("unet-attention").up_act
    assert not get_config("unet-mobile").up_act and not get_config("unet").up_act
    assert get_config("unet-ds", upsample="transpose").up_act is False  # a transposed conv has no 1x1 conv
    with pytest.raises(UserError, match="up_act needs a resize"):
        ModelConfig(upsample="transpose", up_act=True)


def test_configs_without_up_act_read_as_before():
    """Checkpoints of edgeunet 0.2 have no up_act key: they build the up-sampling they were trained with."""
    old = get_config("unet-ds", up_act=False).to_dict()
    assert "up_act" not in old
    model = build_model(ModelConfig.from_dict(old))
    assert not any(".up.norm." in k for k in model.state_dict())
    assert "up_act" in get_config("unet-ds").to_dict()


def _optimized_ops(path, tmp_path) -> list[str]:
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.slow
def test_a_widened_conv_input_gets_its_bias_requantized_and_stays_qlinearconv(tmp_path, per_channel):
    """A skip widened to its concat's scale also feeds a Conv (after MaxPool): with its old int32 bias (scale = old
    input scale x weight scale) ONNX Runtime would leave that Conv in float. The bias follows the new scale."""
    from edgeunet.export.int8.qdq_graph import _requantize_biases

    _, int8, calib = _int8(tmp_path, per_channel=per_channel, up_act=True)
    model_proto = onnx.load(str(int8))
    graph = model_proto.graph
    init = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    conv = next(n for n in graph.node if n.op_type == "Conv" and producers[n.input[0]].input[1].startswith("/encoder"))
    x_scale, w_scale = (producers[conv.input[i]].input[1] for i in (0, 1))
    bias_q, bias_scale = producers[conv.input[2]].input[:2]
    bias_before = numpy_helper.to_array(init[bias_q]) * numpy_helper.to_array(init[bias_scale])
    wider = numpy_helper.to_array(init[x_scale]) * 2
    init[x_scale].CopyFrom(numpy_helper.from_array(wider.astype(np.float32), x_scale))
    _requantize_biases(graph, init, {x_scale})
    new_scale = numpy_helper.to_array(init[bias_scale])
    np.testing.assert_allclose(new_scale, np.broadcast_to(wider * numpy_helper.to_array(init[w_scale]),
                                                          new_scale.shape), rtol=1e-6)
    bias_after = numpy_helper.to_array(init[bias_q]) * new_scale
    assert np.all(np.abs(bias_after - bias_before) <= new_scale / 2 + 1e-12)  # the same bias, to half a step
    widened = tmp_path / "widened.onnx"
    onnx.save(model_proto, str(widened))
    assert "Conv" not in _optimized_ops(widened, tmp_path)  # every conv still fused into QLinearConv


@pytest.mark.slow
def test_every_conv_of_an_int8_file_runs_as_qlinearconv(tmp_path):
    _, int8, _ = _int8(tmp_path, up_act=True)
    ops = _optimized_ops(int8, tmp_path)
    assert "QLinearConv" in ops and "Conv" not in ops


def _shape_of_dequantized_graph():
    """x (float) -> Q -> DQ -> Shape -> output, and (when ``keep``) DQ -> Relu -> second output."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
             helper.make_node("Shape", ["xd"], ["shape"], name="shape")]
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.uint8), "z")]
    return nodes, inits, helper, TensorProto


@pytest.mark.parametrize("other_reader", [False, True])
def test_shape_reads_the_quantized_tensor_and_an_unread_dequantize_goes(other_reader):
    from edgeunet.export.int8.qdq_graph import shape_before_dequantize

    nodes, inits, helper, tp = _shape_of_dequantized_graph()
    outputs = [helper.make_tensor_value_info("shape", tp.INT64, [4])]
    if other_reader:
        nodes.append(helper.make_node("Relu", ["xd"], ["y"], name="relu"))
        outputs.append(helper.make_tensor_value_info("y", tp.FLOAT, [1, 3, 5, 7]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", tp.FLOAT, [1, 3, 5, 7])], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert shape_before_dequantize(model) == 1
    shape = next(n for n in model.graph.node if n.op_type == "Shape")
    assert list(shape.input) == ["xq"]
    assert any(n.name == "dq" for n in model.graph.node) == other_reader  # kept only while something reads it
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.ones((1, 3, 5, 7), np.float32)
    assert session.run(["shape"], {"x": x})[0].tolist() == [1, 3, 5, 7]
