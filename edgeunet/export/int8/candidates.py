"""What the INT8 search may leave in float: layer groups found from the ONNX node names.

The exported node names follow the module names (``/encoder/stages.0/unit1/depthwise/conv/Conv``,
``/decoder/stages.3/up/Resize``, ``/head/Conv``; see ``edgeunet.models.blocks``), so a node's
role and resolution level can be read from its name and op type. Level L is the resolution
1 / 2**L: encoder stage i is level i, decoder stage j is level depth - 1 - j, the head and the
stem of a pretrained encoder (``/encoder/stem/``) are level 0.

Groups (each a set of node names that ``quantize_static`` leaves in float):

* ``depthwise``, ``transpose``, ``head``: every depthwise conv / transposed conv / the head.
* ``level.L``: every node at level L (a float island at one resolution).
* ``depthwise.L``, ``up.L`` (up-sampling conv and resize), ``concat.L`` (the skip Concat with
  the nodes that feed it and the node it feeds), ``gate.L`` (attention gate).
* ``transformer.L``: the Transformer blocks at level L (``/encoder/stages.L/transformer/``), and
  ``attention.L``: their linear attention alone (``.../attn/``: q, k, v, the MatMuls, the division, the
  projection). Its summary and readout (``float_attention_nodes``) are float in every candidate.

Option candidates change ONNX Runtime's quantization settings instead: per-tensor weights,
uint8 weights (u8u8 kernels: no saturation on CPUs without VNNI, so no reduce_range),
reduce_range toggled, and the QOperator format (QLinearConv nodes instead of Q/DQ pairs).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

_STAGE = re.compile(r"^/(encoder|decoder)/stages\.(\d+)/")
_POOL = re.compile(r"^/encoder/pool(?:_(\d+))?/")


@dataclass(frozen=True)
class Candidate:
    """One quantization choice: quantize_int8 overrides plus the groups left in float.

    Attributes:
        name: Readable label, e.g. ``full``, ``weights uint8``, ``full + float depthwise.0``.
        options: ``quantize_int8`` overrides (``per_channel``, ``reduce_range``, ``weight_type``, ``quant_format``).
        float_groups: Names of the groups left in float.
        nodes: Node names left in float (the union of ``float_groups``).
    """

    name: str
    options: tuple[tuple[str, object], ...] = ()
    float_groups: tuple[str, ...] = ()
    nodes: frozenset[str] = field(default_factory=frozenset)

    def with_group(self, group: str, nodes: set[str]) -> Candidate:
        """This candidate with one more group in float."""
        groups = self.float_groups + (group,)
        name = f"{self.name.split(' + ')[0]} + float {', '.join(groups)}"
        return Candidate(name, self.options, groups, self.nodes | frozenset(nodes))

    def with_options(self, name: str, **options) -> Candidate:
        """This candidate with other quantization settings (float groups kept)."""
        merged = {**dict(self.options), **options}
        return Candidate(name, tuple(sorted(merged.items())), self.float_groups, self.nodes)

    def to_dict(self) -> dict:
        return {"name": self.name, "options": dict(self.options), "float_groups": list(self.float_groups),
                "float_nodes": len(self.nodes)}


def node_level(name: str, depth: int) -> int | None:
    """Resolution level of a node from its name (see module docstring); None when unknown."""
    stage = _STAGE.match(name)
    if stage:
        index = int(stage.group(2))
        return index if stage.group(1) == "encoder" else depth - 1 - index
    pool = _POOL.match(name)
    if pool:
        return int(pool.group(1) or 0) + 1
    # the stem of a pretrained encoder (a strided conv) makes level 0, as the head reads it
    return 0 if name.startswith(("/head/", "/encoder/stem/")) else None


def _is_depthwise(node) -> bool:
    if node.op_type != "Conv":
        return False
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    return group > 1 or "/depthwise/" in node.name


def _neighbours(graph, node) -> set[str]:
    """Names of the nodes that feed ``node`` and that it feeds."""
    producers = {out: n.name for n in graph.node for out in n.output}
    outputs = set(node.output)
    names = {producers[i] for i in node.input if i in producers}
    names |= {n.name for n in graph.node if outputs & set(n.input)}
    return names


def layer_groups(model_proto) -> dict[str, set[str]]:
    """Groups of node names by role and level, in the order the search tries them.

    Args:
        model_proto: The prepared FP32 ONNX model (``int8.prepare``), with edgeunet node names.

    Returns:
        Ordered ``{group name: node names}``; empty groups and repeats of an earlier set are dropped.
    """
    graph = model_proto.graph
    stages = (_STAGE.match(n.name) for n in graph.node)
    depth = max((int(m.group(2)) for m in stages if m and m.group(1) == "encoder"), default=0)
    by_level: dict[str, set[str]] = defaultdict(set)
    roles: dict[str, set[str]] = defaultdict(set)
    for node in graph.node:
        level = node_level(node.name, depth)
        if level is not None:
            by_level[f"level.{level}"].add(node.name)
        if _is_depthwise(node):
            roles["depthwise"].add(node.name)
            roles[f"depthwise.{level}"].add(node.name)
        if node.op_type == "ConvTranspose":
            roles["transpose"].add(node.name)
        if node.name.startswith("/head/"):
            roles["head"].add(node.name)
        if "/up/" in node.name:
            roles[f"up.{level}"].add(node.name)
        if "/gate/" in node.name:
            roles[f"gate.{level}"].add(node.name)
        if "/transformer/" in node.name:
            roles[f"transformer.{level}"].add(node.name)
            if "/attn/" in node.name:
                roles[f"attention.{level}"].add(node.name)
        if node.op_type == "Concat" and level is not None:
            roles[f"concat.{level}"] |= {node.name} | _neighbours(graph, node)
    ordered = [("depthwise", roles["depthwise"]), ("transpose", roles["transpose"]), ("head", roles["head"])]
    for level in range(depth + 1):  # full resolution first: that is where the time goes
        ordered.append((f"level.{level}", by_level[f"level.{level}"]))
        ordered += [(f"{role}.{level}", roles[f"{role}.{level}"])
                    for role in ("depthwise", "up", "concat", "gate", "transformer", "attention")]
    groups: dict[str, set[str]] = {}
    for name, nodes in ordered:
        if nodes and all(nodes != seen for seen in groups.values()):
            groups[name] = set(nodes)
    return groups


def float_attention_nodes(model_proto) -> set[str]:
    """Nodes INT8 keeps in float in every candidate: the key-value summary and the readout of linear attention
    (``edgeunet.models.blocks.KeyValueSummary`` and ``Readout``), a sum over the positions whose range grows with
    the image, and a ratio whose int8 denominator can round to zero."""
    return {n.name for n in model_proto.graph.node if "/summary/" in n.name or "/readout/" in n.name}


def option_candidates(base: Candidate, reduce_range: bool) -> list[Candidate]:
    """ONNX Runtime settings to try against ``base`` (full INT8 with the target's defaults)."""
    return [
        base.with_options("per-tensor weights", per_channel=False),
        base.with_options("weights uint8 (u8u8)", weight_type="QUInt8", reduce_range=False),
        base.with_options(f"reduce_range {'off' if reduce_range else 'on'}", reduce_range=not reduce_range),
        base.with_options("QOperator format", quant_format="QOperator"),
    ]
