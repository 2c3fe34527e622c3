"""Pretrained encoders as U-Net encoders: ``skips = encoder(x)``, one feature map per level.

Built from a row of ``encoder_specs.ENCODERS`` and the config's width plan, with module names the
rest of edgeunet reads: level i is ``encoder.stages.{i}`` (so ONNX nodes are ``/encoder/stages.{i}/...``
and the INT8 search finds levels and depthwise convs), pooling is ``encoder.pool`` called once per
level (``/encoder/pool/MaxPool``, ``/encoder/pool_1/MaxPool``, ...). EfficientNet-Lite adds
``encoder.stem``, a stride-2 3x3 conv + BN + ReLU6 before level 0 (1/2 resolution).

A level of pretrained blocks is an ``nn.Sequential`` of ``InvertedResidual`` (MBConv) or
``ConvNormAct`` without norm (VGG) units, named ``0``, ``1``, ...; a new stage below them (the
TernausNet centre) is a skeleton ``DoubleBlock`` of ``cfg.stage_block(level)``. ``pretrained.py``
maps weight files onto these names.

Paddings are symmetric (kernel_size // 2), as in timm's and smp's EfficientNet-Lite encoders, not
TensorFlow's "same" (one pixel more at the bottom and right of a stride-2 conv): every map stays
aligned with the resize of the decoder and each conv is one ONNX Conv, without Pad nodes.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvNormAct, DoubleBlock, InvertedResidual, Pool, stage_widths
from .config import ModelConfig
from .encoder_specs import EncoderSpec, UnitSpec, encoder_spec

# The BatchNorm and activation of the TensorFlow EfficientNet-Lite checkpoints.
LITE_NORM = {"act_layer": nn.ReLU6, "eps": 1e-3}


def _unit(spec: EncoderSpec, unit: UnitSpec, in_channels: int, hidden: int, out: int) -> nn.Module:
    if spec.family == "vgg":
        return ConvNormAct(in_channels, out, unit.kernel_size, norm=False)
    return InvertedResidual(in_channels, out, hidden, kernel_size=unit.kernel_size, stride=unit.stride,
                            expand=unit.expand_ratio != 1, residual=unit.residual, norm=LITE_NORM)


def _unit_owners(prefix: str, unit: nn.Module) -> dict[str, nn.Module]:
    if isinstance(unit, InvertedResidual):
        hidden = {f"{prefix}.hidden": unit.expand.conv} if hasattr(unit, "expand") else {}
        return {**hidden, f"{prefix}.out": unit.project.conv}
    return {f"{prefix}.out": unit.conv}


class PretrainedEncoder(nn.Module):
    """The encoder of ``cfg.encoder``, cut to ``cfg.depth + 1`` levels. (B, in_channels, H, W) -> one
    map per level, level i at 1 / (stem stride * 2**i) resolution with ``skip_widths()[i]`` channels."""

    def __init__(self, cfg: ModelConfig, plan: dict[str, int]):
        super().__init__()
        spec = encoder_spec(cfg.encoder)
        in_channels = cfg.in_channels
        if spec.stem_channels:
            self.stem = ConvNormAct(in_channels, plan["enc0.stem"], 3, stride=2, **LITE_NORM)
            in_channels = plan["enc0.stem"]
        stages, pooled = [], []
        for i in range(cfg.depth + 1):
            # VGG pools before each level; a new stage pools in any encoder (MBConv levels stride themselves)
            pooled.append(i > 0 and (spec.family == "vgg" or i >= len(spec.levels)))
            if i >= len(spec.levels):
                widths = stage_widths(plan, f"enc{i}")
                stages.append(DoubleBlock(cfg.stage_block(i), in_channels, widths))
                in_channels = widths["out"]
                continue
            units = []
            for k, unit in enumerate(spec.levels[i]):
                out = plan[f"enc{i}.{k}.out"]
                units.append(_unit(spec, unit, in_channels, plan.get(f"enc{i}.{k}.hidden", in_channels), out))
                in_channels = out
            stages.append(nn.Sequential(*units))
        self.stages = nn.ModuleList(stages)
        self.pooled = tuple(pooled)
        if any(pooled):
            self.pool = Pool(2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if hasattr(self, "stem"):
            x = self.stem(x)
        skips = []
        for stage, pooled in zip(self.stages, self.pooled):
            x = stage(self.pool(x, (2, 2)) if pooled else x)
            skips.append(x)
        return skips

    def width_owners(self) -> dict[str, nn.Module]:
        """Width name (``enc0.stem``, ``enc{i}.{k}.hidden``, ``enc{i}.{k}.out``, a new stage's ``enc{i}.mid`` ...)
        -> the conv whose output channels are that width; the names of ``ModelConfig.width_plan``."""
        owners = {"enc0.stem": self.stem.conv} if hasattr(self, "stem") else {}
        for i, stage in enumerate(self.stages):
            if isinstance(stage, DoubleBlock):
                owners.update({f"enc{i}.{name}": conv for name, conv in stage.width_owners().items()})
                continue
            for k, unit in enumerate(stage):
                owners.update(_unit_owners(f"enc{i}.{k}", unit))
        return owners

    def skip_names(self) -> list[str]:
        """The width name of each level's output, shallow to deep."""
        return [f"enc{i}.out" if isinstance(stage, DoubleBlock) else f"enc{i}.{len(stage) - 1}.out"
                for i, stage in enumerate(self.stages)]

    def skip_widths(self) -> list[int]:
        """The actual channels of each level's output (they change when pruned)."""
        owners = self.width_owners()
        return [owners[name].out_channels for name in self.skip_names()]
