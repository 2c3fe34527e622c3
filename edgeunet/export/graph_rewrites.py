"""Exact rewrites of the exported FP32 graph for ONNX Runtime's CPU kernels (``export_onnx`` applies them to
``model.onnx``, so every file made from it has them; ``int8.prepare`` applies them to older FP32 files).

Only rewrites that leave every output unchanged (up to float rounding) and that measured faster in
INT8 with ONNX Runtime (``benchmarks/int8_profile.py`` records the figures) live here:

* ``space_to_depth_stem``: the space-to-depth stem exports from ``pixel_unshuffle`` as
  Unsqueeze -> Reshape -> Reshape -> Transpose (6-D) -> Reshape -> Squeeze. ONNX Runtime runs that
  6-D Transpose as a generic single-threaded copy (about 6 % of the INT8 time of the default edge
  model at 512 px on 2 threads). ``SpaceToDepth`` does the same rearrangement in one node; its
  output channels come in (row offset, column offset, channel) order where ``pixel_unshuffle``'s
  come in (channel, row offset, column offset) order, so the input channels of the Conv that
  reads the stem are permuted to match. Only applied when every reader of the stem is a Conv
  with ``group == 1`` (a grouped conv would need its groups permuted too).
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

STEM_NODE = "/stem/SpaceToDepth"
_CHAIN_OPS = ("Unsqueeze", "Reshape", "Transpose", "Squeeze")
_UNSHUFFLE_PERM = [0, 1, 3, 5, 2, 4]  # (B, C, H/S, S, W/S, S) -> (B, C, S, S, H/S, W/S)


def _stem_chain(graph) -> tuple[list, str] | None:
    """The pixel_unshuffle nodes after the graph input (in graph order) and the tensor they end in, or None."""
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    tensor, chain = graph.input[0].name, []
    while len(readers.get(tensor, [])) == 1 and readers[tensor][0].op_type in _CHAIN_OPS:
        node = readers[tensor][0]
        chain.append(node)
        tensor = node.output[0]
    transposes = [n for n in chain if n.op_type == "Transpose"]
    if len(transposes) != 1 or _ints(transposes[0], "perm") != _UNSHUFFLE_PERM or chain[-1].op_type == "Transpose":
        return None
    return chain, tensor


def _ints(node, name: str) -> list[int]:
    return next((list(a.ints) for a in node.attribute if a.name == name), [])


def _group(node) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def space_to_depth_stem(model_proto, in_channels: int) -> bool:
    """Replaces the exported ``pixel_unshuffle`` stem by ``SpaceToDepth`` (in place); see the module docstring.

    Args:
        model_proto: The prepared FP32 ONNX model (``int8.prepare``).
        in_channels: Image channels C (the stem turns C into C * S * S).

    Returns:
        True when the stem was rewritten; False (model untouched) when the graph has no such stem or
        a reader of it is not a plain Conv.
    """
    from onnx import helper, numpy_helper

    graph = model_proto.graph
    found = _stem_chain(graph)
    if found is None:
        return False
    chain, stem = found
    readers = [n for n in graph.node if stem in n.input]
    weights = {i.name: i for i in graph.initializer}
    if not readers or any(n.op_type != "Conv" or n.input[0] != stem or n.input[1] not in weights
                          or _group(n) != 1 for n in readers):
        return False
    channels = numpy_helper.to_array(weights[readers[0].input[1]]).shape[1]
    factor = int(round((channels / in_channels) ** 0.5))
    if factor < 2 or in_channels * factor * factor != channels:
        return False
    # SpaceToDepth channel (k * C + c) holds pixel_unshuffle channel (c * S * S + k), k = row offset * S + col offset
    order = [c * factor * factor + k for k in range(factor * factor) for c in range(in_channels)]
    for conv in readers:
        w = numpy_helper.to_array(weights[conv.input[1]])
        name = f"{conv.input[1]}_space_to_depth"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w[:, order]), name))
        conv.input[1] = name
    node = helper.make_node("SpaceToDepth", [graph.input[0].name], [stem], name=STEM_NODE, blocksize=factor)
    dropped = {id(n) for n in chain}
    kept = [n for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend([node] + kept)
    _drop_unused_initializers(graph)
    logger.debug("space-to-depth stem: %d pixel_unshuffle nodes -> SpaceToDepth(blocksize=%d)", len(chain), factor)
    return True


def _drop_unused_initializers(graph) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
