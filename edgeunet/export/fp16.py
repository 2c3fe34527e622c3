"""FP16 ONNX: float16 weights and compute inside, float32 ``images`` in and ``logits`` out.

Uses ONNX Runtime's own converter (``onnxruntime.transformers.float16``), which keeps the
inputs that must stay float32 (Resize scales and roi) and inserts Casts at the graph edges.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import require
from .onnx import save_onnx, set_metadata


def _sort_nodes(graph) -> None:
    """Orders ``graph.node`` topologically (the converter appends its input Casts at the end)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        runnable = [n for n in pending if all(name in ready for name in n.input)]
        if not runnable:
            raise RuntimeError("the FP16 graph has a cycle or a dangling input; this is a bug, please report it")
        for node in runnable:
            ready.update(node.output)
        ordered += runnable
        pending = [n for n in pending if all(n is not r for r in runnable)]
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike, props: dict[str, str]) -> Path:
    """Converts the FP32 ONNX file ``src`` to FP16 at ``dst`` with metadata ``props``.

    Args:
        src: FP32 edgeunet ONNX file.
        dst: Output path; written atomically after ``onnx.checker``.
        props: The ``metadata_props`` to write (``precision`` should be ``"fp16"``).

    Returns:
        ``dst``: float32 input (B, C, H, W) and output (B, K, H, W), float16 initializers.
    """
    onnx = require("onnx", "train")
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model_proto = onnx.load(str(src))
    # Shape inference is off: with dynamic H and W it adds nothing, and the converter only
    # needs it for value_info, which the slimmed FP32 graph already carries.
    half = convert_float_to_float16(model_proto, keep_io_types=True, disable_shape_infer=True)
    _sort_nodes(half.graph)
    set_metadata(half, props)
    return save_onnx(half, dst)
