"""Rewrites of a QDQ INT8 graph after ``quantize_static``, for ONNX Runtime's CPU kernels (``quantize_int8``
applies them to every INT8 file it writes; ``benchmarks/int8_profile.py`` measures what they gain):

* ``share_concat_scales``: ONNX Runtime fuses DQ -> Concat -> Q into ``QLinearConcat``, which requantizes
  each input through a lookup table unless its scale and zero point equal the output's; then it copies
  bytes. When the inputs and the output of a Concat already share one zero point (ReLU outputs: zero
  point 0 in uint8, see ``ModelConfig.up_act``), every scale of the group is set to the largest of them.
  That only widens ranges (nothing is clipped that was not before, and a zero point of 0 still clamps at
  0 where ``quantize_static`` removed a ReLU), and the Concat's own output had the widest range anyway.
  Scale initializers are shared by a tensor's Q and DQ nodes and by the pass-through ops after them
  (MaxPool, nearest Resize), so the producers, the other readers and those ops follow. A Conv that reads
  a widened tensor gets its int32 bias requantized to the new input scale x weight scale: ONNX Runtime
  fuses DQ -> Conv -> Q into ``QLinearConv`` only when the bias scale is that product (else the Conv
  stays float, between a DQ and a Q: slower than the copy saves).
* ``dequantize_after_depth_to_space``: DQ -> DepthToSpace (the pixel-shuffle head) becomes
  DepthToSpace -> DQ: a permutation commutes with a per-tensor DQ, and it moves a quarter of the bytes.
* ``shape_before_dequantize``: a ``Shape`` that reads a DQ's output (the dynamic reshapes of the Transformer
  blocks' attention read the spatial size of a quantized tensor) reads the DQ's quantized input instead: the
  shape is the same, and a DQ left with no other reader, which dequantized a whole feature map for its shape
  alone, is removed.
"""

from __future__ import annotations

import collections
import logging

import numpy as np

logger = logging.getLogger(__name__)


def _scalar(initializers: dict, name: str):
    from onnx import numpy_helper

    tensor = initializers.get(name)
    if tensor is None:
        return None
    value = numpy_helper.to_array(tensor)
    return value if value.size == 1 else None


def _producers_readers(graph) -> tuple[dict, dict]:
    producers = {out: node for node in graph.node for out in node.output}
    readers = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            readers[name].append(node)
    return producers, readers


def _concat_groups(graph, initializers: dict) -> list[list[tuple[str, str]]]:
    """Per eligible Concat, the (scale, zero point) initializer names of its inputs' DQ and its output's Q."""
    producers, readers = _producers_readers(graph)
    groups = []
    for node in graph.node:
        after = readers.get(node.output[0], []) if node.op_type == "Concat" else []
        if len(after) != 1 or after[0].op_type != "QuantizeLinear" or len(after[0].input) < 3:
            continue
        dqs = [producers.get(name) for name in node.input]
        if any(dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 3 for dq in dqs):
            continue
        pairs = [(dq.input[1], dq.input[2]) for dq in dqs] + [(after[0].input[1], after[0].input[2])]
        if all(_scalar(initializers, s) is not None and _scalar(initializers, z) is not None for s, z in pairs):
            groups.append(pairs)
    return groups


def share_concat_scales(model_proto) -> int:
    """Gives the inputs and output of each Concat with one zero point the largest scale of them (in place).

    Returns:
        How many Concats now run as copies. A Concat whose inputs have different zero points (a signed
        input next to a ReLU output) is left alone.
    """
    from onnx import numpy_helper

    graph = model_proto.graph
    initializers = {i.name: i for i in graph.initializer}
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    groups = _concat_groups(graph, initializers)
    zero_of: dict[str, str] = {}
    for pairs in groups:
        for scale, zero in pairs:
            zero_of[scale] = zero
            parent[find(scale)] = find(pairs[0][0])
    members = collections.defaultdict(list)
    for scale in zero_of:
        members[find(scale)].append(scale)
    widened: set[str] = set()
    shared_roots = set()
    for root, names in members.items():
        zeros = {(z.dtype.str, int(z)) for z in (_scalar(initializers, zero_of[n]) for n in names)}
        if len(zeros) != 1:
            continue
        scales = {name: _scalar(initializers, name) for name in names}
        widest = max(scales.values(), key=float)
        for name, scale in scales.items():
            if float(scale) != float(widest):
                widened.add(name)
            initializers[name].CopyFrom(numpy_helper.from_array(np.array(widest, dtype=widest.dtype), name))
        shared_roots.add(root)
    _requantize_biases(graph, initializers, widened)
    count = sum(1 for pairs in groups if find(pairs[0][0]) in shared_roots)
    logger.debug("shared concat scales: %d group(s), %d Concat(s) now copy", len(shared_roots), count)
    return count


def _requantize_biases(graph, initializers: dict, widened: set[str]) -> None:
    """Int32 biases of the Convs whose input scale is in ``widened``: bias scale = input scale x weight scale."""
    from onnx import numpy_helper

    producers, readers = _producers_readers(graph)
    for conv in (n for n in graph.node if n.op_type == "Conv" and len(n.input) > 2):
        dqs = [producers.get(name) for name in conv.input[:3]]
        if any(dq is None or dq.op_type != "DequantizeLinear" for dq in dqs) or dqs[0].input[1] not in widened:
            continue
        x_scale, w_scale = (numpy_helper.to_array(initializers[dq.input[1]]) for dq in dqs[:2])
        bias_q, bias_scale = dqs[2].input[0], dqs[2].input[1]
        if bias_q not in initializers or bias_scale not in initializers or len(readers[bias_scale]) != 1:
            continue  # a bias scale another node reads too cannot be changed for this Conv alone
        q_old, scale_old = (numpy_helper.to_array(initializers[n]) for n in (bias_q, bias_scale))
        old = q_old.astype(np.float64) * scale_old.astype(np.float64)
        # per-channel weights: one scale per output channel; per-tensor: one for all (the bias scale keeps its shape)
        new_scale = np.broadcast_to(x_scale.astype(np.float64) * w_scale.astype(np.float64),
                                    scale_old.shape).astype(np.float32)
        info = np.iinfo(np.int32)
        new_q = np.clip(np.round(old / new_scale.astype(np.float64)), info.min, info.max).astype(np.int32)
        initializers[bias_q].CopyFrom(numpy_helper.from_array(new_q.reshape(q_old.shape), bias_q))
        initializers[bias_scale].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(new_scale), bias_scale))


def dequantize_after_depth_to_space(model_proto) -> int:
    """Swaps each per-tensor DQ -> DepthToSpace pair (in place); returns how many."""
    graph = model_proto.graph
    initializers = {i.name: i for i in graph.initializer}
    producers, readers = _producers_readers(graph)
    outputs = {o.name for o in graph.output}
    swapped = 0
    for node in list(graph.node):
        dq = producers.get(node.input[0]) if node.op_type == "DepthToSpace" else None
        if (dq is None or dq.op_type != "DequantizeLinear" or len(readers[dq.output[0]]) != 1
                or dq.output[0] in outputs or _scalar(initializers, dq.input[1]) is None):
            continue
        quantized, out = dq.input[0], node.output[0]
        node.input[0], node.output[0] = quantized, f"{out}_quantized"
        dq.input[0], dq.output[0] = node.output[0], out
        nodes = [n for n in graph.node if n is not dq]
        nodes.insert(next(i for i, n in enumerate(nodes) if n is node) + 1, dq)
        del graph.node[:]
        graph.node.extend(nodes)
        swapped += 1
    return swapped


def shape_before_dequantize(model_proto) -> int:
    """Points each ``Shape`` fed by a DQ at the DQ's input and drops DQs left unread (in place); returns how many
    Shapes moved."""
    graph = model_proto.graph
    producers, _ = _producers_readers(graph)
    moved = 0
    for node in graph.node:
        dq = producers.get(node.input[0]) if node.op_type == "Shape" else None
        if dq is not None and dq.op_type == "DequantizeLinear":
            node.input[0] = dq.input[0]
            moved += 1
    if moved:
        _, readers = _producers_readers(graph)
        outputs = {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type == "DequantizeLinear" and not readers.get(n.output[0])
                and n.output[0] not in outputs]
        for node in dead:
            graph.node.remove(node)
    return moved
