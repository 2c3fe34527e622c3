"""Structured channel pruning of a U-Net with Torch-Pruning's dependency graph.

Every free width of the model (``enc2.mid``, ``dec0.up``, ``enc3.1.hidden`` ... see
``ModelConfig.width_plan``) is owned by one convolution whose output channels define it
(``UNet.width_owners``). Pruning a width builds that convolution's dependency group, so every
coupled layer follows: BatchNorm statistics, the depthwise convolution after it, the decoder
convolution that reads the width through the skip concatenation (at the right offset), the
attention gate's projections, the residual adds of inverted residuals (in a pretrained
EfficientNet-Lite encoder, the outputs of a level's blocks are one group) and of Transformer blocks (their
linear attention is traced as the convs it couples: ``_attention_traced_as_convs``; its heads are never
pruned, the feed-forward's hidden width is). The head is never a group root, so the classes stay.

Groups are rooted here rather than by ``tp.pruner.BasePruner``, which roots them in module order:
a decoder's depthwise convolution then roots one group spanning both halves of a skip
concatenation and splits the kept channels between skip and up-sampling unevenly, so that
neither is a multiple of ``round_to``.

``--ratio`` is the fraction of channels removed from every width; kept counts are rounded to
multiples of ``round_to`` and never go below ``min_channels`` (16 by default; see ``plan``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging

import torch
from torch import nn

from ..errors import UserError, require
from ..models.blocks import DoubleBlock, LinearAttention
from ..models.cost import Cost, count_cost
from ..train.losses import SegmentationLoss
from .importance import check_importance, make_importance
from .plan import MIN_CHANNELS, check_ratio, planned_widths

tp = require("torch_pruning", "train", "torch-pruning")
logger = logging.getLogger(__name__)


def width_owners(model) -> dict[str, nn.Module]:
    """Width name (as in ``model.width_plan()``) -> the conv whose ``out_channels`` is that width."""
    return model.width_owners()


class _GateSigmoid(tp.pruner.function.BasePruningFunc):
    """Torch-Pruning handler for the attention gates' sigmoids: (B, 1, H, W) maps multiplied into skips.

    The dependency graph couples all inputs of an element-wise product, so without this the skip
    channels would be tied to the single psi channel (and the concatenation offsets inferred from
    it). A sigmoid reports its skip's channel count and prunes nothing: the broadcast stops there.
    Torch-Pruning looks customized pruners up by class, so one handler serves every gate.
    """

    def __init__(self, skip_convs: dict[nn.Module, nn.Module]):
        super().__init__()
        self.skip_convs = skip_convs  # sigmoid module -> the gate's skip projection (its in_channels = skip width)

    def prune_out_channels(self, layer, idxs):
        return layer

    def prune_in_channels(self, layer, idxs):
        return layer

    def get_out_channels(self, layer):
        return self.skip_convs[layer].in_channels

    def get_in_channels(self, layer):
        return None


def _coupled_as_convs(attention: LinearAttention, x: torch.Tensor) -> torch.Tensor:
    """What linear attention couples, as convs alone: the input width into q, k and v; one attention width among
    q, k, v and the projection; the projection's output onto the residual."""
    return attention.proj(attention.q(x) + attention.k(x) + attention.v(x))


@contextlib.contextmanager
def _attention_traced_as_convs(model):
    """Torch-Pruning reads channel dependencies from the autograd graph, and the head reshapes and batched matmuls
    of linear attention defeat its reshape rules. While the graph is built, each ``LinearAttention`` runs as
    ``_coupled_as_convs``: the same conv modules, coupled as the real attention couples them, so every group the
    pruner forms is one the attention allows. The attention width (q, k, v: the heads) is no width of the plan
    and is never pruned; the residual width the blocks read and write is."""
    attentions = [m for m in model.modules() if isinstance(m, LinearAttention)]
    for m in attentions:
        m.forward = functools.partial(_coupled_as_convs, m)
    try:
        yield
    finally:
        for m in attentions:
            del m.forward


def build_graph(model, example_inputs: torch.Tensor):
    """Torch-Pruning's dependency graph of ``model``, with attention-gate broadcasts and linear attention handled."""
    skip_convs = {stage.gate.psi[2]: stage.gate.skip.conv for stage in model.decoder.stages if stage.gate is not None}
    custom = {nn.Sigmoid: _GateSigmoid(skip_convs)} if skip_convs else None
    was_training = model.training
    with torch.enable_grad(), _attention_traced_as_convs(model):
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs, customized_pruners=custom)
    model.train(was_training)
    return graph


def _coupled_names(graph, owners: dict[str, nn.Module]) -> list[tuple[str, ...]]:
    """Width names grouped by dependency group (an inverted residual's add ties ``mid`` to ``out``)."""
    by_module = {module: name for name, module in owners.items()}
    seen, sets = set(), []
    for name, module in owners.items():
        if name in seen:
            continue
        prune_fn = graph.get_pruner_of_module(module).prune_out_channels
        group = graph.get_pruning_group(module, prune_fn, list(range(module.out_channels)))
        others = [by_module[d.target.module] for d, _ in group
                  if d.target.module in by_module and graph.is_out_channel_pruning_fn(d.handler)]
        names = [name] + [other for other in others if other != name]
        seen.update(names)
        sets.append(tuple(names))
    return sets


def _unit_ends(model) -> list[tuple[int, tuple[str, ...], str, bool]]:
    """Every inverted residual of a skeleton stage (``DoubleBlock``) as (fixed input channels, input width
    names, output width name, has residual). The blocks of a pretrained encoder are not among them: their
    residual adds come from the architecture table, whatever the widths."""
    skips, ends = model.encoder.skip_names(), []
    depth = len(skips) - 1
    blocks = [(f"enc{i}", s, (skips[i - 1],) if i else ()) for i, s in enumerate(model.encoder.stages)
              if isinstance(s, DoubleBlock)]
    blocks += [(f"dec{j}", s.block, (skips[depth - 1 - j], f"dec{j}.up")) for j, s in enumerate(model.decoder.stages)]
    for prefix, block, inputs in blocks:
        if block.block != "ir":
            continue
        fixed = 0 if inputs else model.cfg.stem_channels
        ends.append((fixed, inputs, f"{prefix}.mid", block.unit1.use_residual))
        ends.append((0, (f"{prefix}.mid",), f"{prefix}.out", block.unit2.use_residual))
    return ends


def _keep_residuals(model, targets: dict[str, int], coupled: dict[str, tuple[str, ...]], current: dict[str, int],
                    round_to: int) -> dict[str, int]:
    """Moves a width by ``round_to`` where pruning would make an inverted residual's input and output
    widths equal although it has no residual add: the model rebuilt from its config would add one."""
    targets = dict(targets)
    for _ in range(4 * len(targets)):
        clash = next(((fixed, ins, out) for fixed, ins, out, residual in _unit_ends(model)
                      if not residual and fixed + sum(targets[n] for n in ins) == targets[out]), None)
        if clash is None:
            return targets
        out = clash[2]
        moved = targets[out] + round_to if targets[out] + round_to <= current[out] else targets[out] - round_to
        if moved < 1:
            raise UserError(f"pruning {out} to {targets[out]} channels would change the block structure: "
                            "use another --ratio or --round-to")
        for name in coupled[out]:
            targets[name] = moved
    raise RuntimeError("could not keep the residual structure of the inverted residual blocks")


def _accumulate_gradients(model, batches) -> None:
    """Gradients of the training loss over calibration batches, for Taylor importance (BN statistics frozen)."""

    if not batches:
        raise UserError("taylor importance needs calibration batches (x, y) for gradients: "
                        "pass calib_batches or use l1")
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    model.zero_grad(set_to_none=True)
    loss_fn = SegmentationLoss()
    with torch.enable_grad():
        for x, y in batches:
            loss_fn(model(x.to(device)), y.to(device)).backward()
    model.train(was_training)


def example_input(model, size: int | None = None) -> torch.Tensor:
    """(1, C, S, S) zeros on the model's device ((1, C, S, S, S) for a 3-D model); S defaults to twice the
    size multiple."""
    cfg = model.cfg
    size = size or 2 * cfg.size_multiple
    dims = getattr(cfg, "spatial_dims", 2)
    return torch.zeros(1, cfg.in_channels, *[size] * dims, device=next(model.parameters()).device)


def prune_to_widths(model, widths: dict[str, int], importance: str = "l1", *,
                    example_inputs: torch.Tensor | None = None, calib_batches=None, round_to: int = 1):
    """Removes the least important channels so that each named width has the given channel count.

    Args:
        model: A ``UNet``; pruned in place (``model.cfg`` goes stale: use ``model.current_config()``).
        widths: Target channels by width name (``model.width_plan()`` keys); missing names are kept.
        importance: ``l1``, ``l2``, ``taylor`` (needs ``calib_batches``) or ``bn-scale``.
        example_inputs: (1, C, H, W) tensor for tracing; None uses ``example_input(model)``.
        calib_batches: (x (B, C, S, S), y (B, S, S)) pairs for Taylor gradients.
        round_to: Step by which widths move when a block structure would change.

    Returns:
        ``model``.
    """
    criterion = make_importance(importance)
    owners = width_owners(model)
    unknown = sorted(set(widths) - set(owners))
    if unknown:
        raise UserError(f"unknown widths {unknown}: use names from model.width_plan(), e.g. {next(iter(owners))}")
    graph = build_graph(model, example_inputs if example_inputs is not None else example_input(model))
    current = {name: module.out_channels for name, module in owners.items()}
    sets = _coupled_names(graph, owners)
    coupled = {name: names for names in sets for name in names}
    targets = {name: max(1, min(widths.get(name, current[name]), current[name])) for name in current}
    targets = {name: min(targets[n] for n in coupled[name]) for name in targets}
    targets = _keep_residuals(model, targets, coupled, current, round_to)
    if importance == "taylor":
        _accumulate_gradients(model, calib_batches)
    fallback = tp.importance.GroupMagnitudeImportance(p=1)
    chosen = []
    for names in sets:
        root, removed = owners[names[0]], current[names[0]] - targets[names[0]]
        if removed <= 0:
            continue
        prune_fn = graph.get_pruner_of_module(root).prune_out_channels
        group = graph.get_pruning_group(root, prune_fn, list(range(current[names[0]])))
        scores = criterion(group)
        if scores is None:  # bn-scale on a group without BatchNorm (e.g. a transposed up-sampling conv)
            scores = fallback(group)
        scores = torch.nan_to_num(scores.float().cpu(), nan=0.0)  # 0/0 when a whole group is zero
        chosen.append((root, prune_fn, torch.argsort(scores)[:removed].tolist()))
    for root, prune_fn, idxs in chosen:
        group = graph.get_pruning_group(root, prune_fn, idxs)
        if not graph.check_pruning_group(group):
            raise RuntimeError(f"Torch-Pruning refused to prune {len(idxs)} channels of {root}")
        group.prune()
    model.zero_grad(set_to_none=True)
    logger.info("pruned to %s", {n: c for n, c in model.width_plan().items() if c != current[n]})
    return model


def prune_model(model, ratio: float, importance: str = "l1", round_to: int = 8, *,
                example_inputs: torch.Tensor | None = None, steps: int = 1, calib_batches=None,
                stages: tuple[str, ...] | None = None, min_channels: int = MIN_CHANNELS):
    """Removes ``ratio`` of the channels of every width (or of the ``stages`` given, e.g. ``("enc2",)``).

    Args:
        model: A ``UNet``, pruned in place.
        ratio: Fraction of channels removed per width, in [0, 1).
        importance: ``l1``, ``l2``, ``taylor`` or ``bn-scale``.
        round_to: Kept channel counts are multiples of this.
        example_inputs: (1, C, H, W) tracing input; None picks a small valid one.
        steps: Prune in this many equal steps (re-ranking channels each time).
        calib_batches: (x, y) batches for ``taylor``.
        stages: Only widths of these stages (``enc0`` ... ``dec{D-1}``).
        min_channels: No width is pruned below this; narrower widths are kept whole.

    Returns:
        ``model``.
    """
    check_ratio(ratio)
    check_importance(importance)
    if round_to < 1 or steps < 1 or min_channels < 1:
        raise UserError(f"round_to ({round_to}), steps ({steps}) and min_channels ({min_channels}) must be at least 1")
    original = model.width_plan()
    for step in range(1, steps + 1):
        widths = planned_widths(original, ratio * step / steps, round_to, min_channels, stages)
        prune_to_widths(model, widths, importance, example_inputs=example_inputs, calib_batches=calib_batches,
                        round_to=round_to)
    return model


def cost(model, img_size: int) -> Cost:
    """Parameters and MACs of one (1, C, img_size, img_size) forward (``edgeunet.models.cost.count_cost``).

    A model on a GPU is counted through a CPU copy: the counter traces on the CPU.
    """
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    return count_cost(model if on_cpu else copy.deepcopy(model).cpu(), img_size)


def count_macs_params(model, img_size: int) -> tuple[int, int]:
    """Multiply-accumulates of one (1, C, img_size, img_size) forward pass, and the parameter count."""
    counted = cost(model, img_size)
    return counted.macs, counted.parameters
