"""What ``build-engine`` reads from an edgeunet ONNX file before building: its metadata, whether H and
W are fixed, and the flavour of an INT8 file (TensorRT takes only the symmetric ``tensorrt`` one).

An INT8 file names its flavour in ``metadata_props["int8_flavour"]`` (``"cpu"`` or ``"tensorrt"``).
Older exports do not; their graph tells: uint8 or non-zero zero points on QuantizeLinear /
DequantizeLinear, or QOperator nodes (QLinearConv, ...), are the cpu flavour.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ...errors import MissingFileError, UserError
from ...runtime.metadata import ModelMetadata
from ...runtime.session import CPU, ort_session
from ..targets import FLAVOUR_KEY, TARGETS

logger = logging.getLogger(__name__)

FLAVOURS = TARGETS  # an INT8 file's flavour is the --target it was written for
QOPERATOR_OPS = {"QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearConcat", "QLinearSigmoid",
                 "QLinearLeakyRelu", "QLinearAveragePool", "QLinearGlobalAveragePool", "ConvInteger",
                 "MatMulInteger", "DynamicQuantizeLinear"}
CPU_FLAVOUR_FIX = ("it is the cpu INT8 flavour (uint8 activations), which TensorRT does not take: export the TensorRT "
                   "flavour with `edgeunet export --int8 --target tensorrt CKPT --out DIR` and build from its "
                   "model.int8.onnx")


@dataclass(frozen=True)
class OnnxFacts:
    """The facts of an edgeunet ONNX file that an engine build needs.

    Attributes:
        metadata: Parsed ``metadata_props``.    props: The raw ``metadata_props`` strings.
        static_hw: (H, W) ((D, H, W) for 3-D models) when the graph fixes them, else None.
    """

    metadata: ModelMetadata
    props: dict[str, str]
    static_hw: tuple[int, ...] | None


def read_onnx_facts(onnx_path: str | Path) -> OnnxFacts:
    """Reads an edgeunet ONNX file through the runtime's session factory (``ort_session``, CPU).

    Raises:
        MissingFileError: The file does not exist.
        UserError: It is not a loadable ONNX model, or has no edgeunet metadata.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise MissingFileError(f"ONNX file not found: {onnx_path} (export one with `edgeunet export CKPT --out DIR`)")
    session = ort_session(onnx_path, threads=1, providers=[CPU])
    props = dict(session.get_modelmeta().custom_metadata_map)
    meta = ModelMetadata.from_props(props, source=str(onnx_path))
    inputs = {i.name: i for i in session.get_inputs()}
    if meta.input_name not in inputs:
        raise UserError(f"{onnx_path} has no input {meta.input_name!r} (it has {', '.join(inputs)}): "
                        "re-export it with `edgeunet export`")
    spatial = (list(inputs[meta.input_name].shape) + [None] * 5)[2:2 + meta.spatial_dims]
    static = all(isinstance(d, int) and d > 0 for d in spatial)
    return OnnxFacts(meta, props, tuple(spatial) if static else None)


def _constants(graph) -> dict:
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _quantize_outputs_uint8(node) -> bool:
    """A QuantizeLinear without a zero point writes uint8 unless ``output_dtype`` (opset 21) says otherwise."""
    return node.op_type == "QuantizeLinear" and not any(a.name == "output_dtype" for a in node.attribute)


def graph_flavour(onnx_path: str | Path) -> str | None:
    """The INT8 flavour the graph shows (``"cpu"`` or ``"tensorrt"``), or None when onnx is not installed."""
    try:
        import onnx
    except ImportError:
        return None
    model = onnx.load(str(onnx_path), load_external_data=False)
    constants = _constants(model.graph)
    for node in model.graph.node:
        if node.op_type in QOPERATOR_OPS:
            return "cpu"
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        zero_point = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if zero_point is None:
            if _quantize_outputs_uint8(node):
                return "cpu"
            continue
        value = constants.get(zero_point)
        if value is not None and (value.dtype.kind == "u" or value.any()):
            return "cpu"
    return "tensorrt"


def int8_flavour(onnx_path: str | Path, facts: OnnxFacts) -> str | None:
    """``"cpu"`` or ``"tensorrt"`` for an INT8 file (its ``int8_flavour`` key, else its graph); None otherwise."""
    if facts.metadata.precision != "int8":
        return None
    declared = facts.props.get(FLAVOUR_KEY)
    if declared in FLAVOURS:
        return declared
    if declared:
        raise UserError(f"{onnx_path} says int8_flavour={declared!r}, not one of {', '.join(FLAVOURS)}: "
                        "re-export it with `edgeunet export --int8 --target tensorrt CKPT --out DIR`")
    flavour = graph_flavour(onnx_path)
    if flavour is None:
        logger.warning("%s names no INT8 flavour and onnx is not installed to read its graph: building anyway "
                       "(TensorRT refuses uint8 Q/DQ files from `--target cpu`)", onnx_path)
    return flavour


def check_int8_flavour(onnx_path: str | Path, facts: OnnxFacts) -> None:
    """UserError (naming ``edgeunet export --int8 --target tensorrt``) for a cpu- or arm-flavour INT8 file."""
    flavour = int8_flavour(onnx_path, facts)
    if flavour == "cpu":
        raise UserError(f"{onnx_path} cannot become a TensorRT engine: {CPU_FLAVOUR_FIX}")
    if flavour == "arm":
        raise UserError(f"{onnx_path} cannot become a TensorRT engine: it is the arm INT8 flavour (asymmetric int8 "
                        "activations, for phones): export the TensorRT flavour with `edgeunet export --int8 "
                        "--target tensorrt CKPT --out DIR` and build from its model.int8.onnx")
