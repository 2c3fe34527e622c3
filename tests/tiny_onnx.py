"""Tiny edgeunet ONNX files built with onnx.helper (no torch, milliseconds): a 1x1 Conv from 1 channel to 2
classes, optionally behind QuantizeLinear -> DequantizeLinear in either INT8 flavour.

* ``"cpu"``: uint8 zero point 128 (asymmetric activations, as ``edgeunet export --int8 --target cpu``).
* ``"tensorrt"``: int8 zero point 0 (symmetric, as ``--target tensorrt``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeunet.runtime.metadata import ModelMetadata
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

SIZE_MULTIPLE = 8


def metadata(precision: str = "fp32") -> ModelMetadata:
    return ModelMetadata(in_channels=1, num_classes=2, size_multiple=SIZE_MULTIPLE,
                         preprocessing=dict(DEFAULT_PREPROCESSING), class_names=["background", "cell"],
                         precision=precision)


def tiny_onnx(path: str | Path, int8: str | None = None, declare_flavour: bool = True,
              static_hw: tuple[int, int] | None = None) -> Path:
    """Writes the model to ``path``.

    Args:
        path: Output ``.onnx``.
        int8: None (fp32), ``"cpu"`` or ``"tensorrt"`` Q/DQ flavour.
        declare_flavour: Write ``metadata_props["int8_flavour"]`` (older exports did not).
        static_hw: Fixed (H, W) (batch stays dynamic, as `edgeunet export --img-size` writes), else dynamic H, W.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w = static_hw or ("height", "width")
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, h, w])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2, h, w])
    weight = numpy_helper.from_array(np.array([1.0, -1.0], np.float32).reshape(2, 1, 1, 1), "weight")
    initializers, nodes, conv_input = [weight], [], "images"
    if int8:
        zero = np.array(128, np.uint8) if int8 == "cpu" else np.array(0, np.int8)
        initializers += [numpy_helper.from_array(np.array(0.02, np.float32), "scale"),
                         numpy_helper.from_array(zero, "zero_point")]
        nodes += [helper.make_node("QuantizeLinear", ["images", "scale", "zero_point"], ["q"]),
                  helper.make_node("DequantizeLinear", ["q", "scale", "zero_point"], ["dq"])]
        conv_input = "dq"
    nodes.append(helper.make_node("Conv", [conv_input, "weight"], ["logits"]))
    graph = helper.make_graph(nodes, "tiny", [images], [logits], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = metadata("int8" if int8 else "fp32").to_props()
    if int8 and declare_flavour:
        props["int8_flavour"] = int8
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)
