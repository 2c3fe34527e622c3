"""Small named blocks of the U-Net skeleton. Their attribute names become state_dict keys,
ONNX node names and pruning/quantization exclusion lists: keep them stable."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class ConvNormAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> ReLU. (B, in, H, W) -> (B, out, H/stride, W/stride)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise conv + BN + ReLU, then 1x1 pointwise conv + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = ConvNormAct(in_channels, in_channels, 3, groups=in_channels)
        self.pointwise = ConvNormAct(in_channels, out_channels, 1)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear project; residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int):
        super().__init__()
        self.expand = ConvNormAct(in_channels, hidden_channels, 1)
        self.depthwise = ConvNormAct(hidden_channels, hidden_channels, 3, groups=hidden_channels)
        self.project = ConvNormAct(hidden_channels, out_channels, 1, act=False)
        self.use_residual = in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.use_residual else y


class DoubleBlock(nn.Module):
    """Two units of a block type, in -> mid -> out; the U-Net stage of every variant.

    ``widths`` maps the names ``mid``, ``out`` and for inverted residuals ``hidden1``,
    ``hidden2`` to channel counts (see ``ModelConfig.width_plan``).
    """

    def __init__(self, block: str, in_channels: int, widths: dict[str, int]):
        super().__init__()
        mid, out = widths["mid"], widths["out"]
        if block == "conv":
            self.unit1, self.unit2 = ConvNormAct(in_channels, mid), ConvNormAct(mid, out)
        elif block == "ds":
            self.unit1, self.unit2 = DepthwiseSeparable(in_channels, mid), DepthwiseSeparable(mid, out)
        elif block == "ir":
            self.unit1 = InvertedResidual(in_channels, mid, widths["hidden1"])
            self.unit2 = InvertedResidual(mid, out, widths["hidden2"])
        else:
            raise ValueError(f"unknown block {block!r}: use 'conv', 'ds' or 'ir'")
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unit2(self.unit1(x))

    def widths(self) -> dict[str, int]:
        """The actual channel counts, read from the layers (they change when pruned)."""
        if self.block == "ir":
            return {
                "hidden1": self.unit1.expand.conv.out_channels,
                "mid": self.unit1.project.conv.out_channels,
                "hidden2": self.unit2.expand.conv.out_channels,
                "out": self.unit2.project.conv.out_channels,
            }
        last = (lambda u: u.conv) if self.block == "conv" else (lambda u: u.pointwise.conv)
        return {"mid": last(self.unit1).out_channels, "out": last(self.unit2).out_channels}


class AttentionGate(nn.Module):
    """Additive attention gate on a skip connection (Oktay et al. 2018, Attention U-Net).

    The gating signal ``g`` (decoder, already up-sampled) and the skip ``x`` are projected to
    ``gate_channels``, summed, and turned into a (B, 1, H, W) weight in [0, 1] for ``x``.
    """

    def __init__(self, gating_channels: int, skip_channels: int, gate_channels: int):
        super().__init__()
        self.gating = ConvNormAct(gating_channels, gate_channels, 1, act=False)
        self.skip = ConvNormAct(skip_channels, gate_channels, 1, act=False)
        self.psi = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(gate_channels, 1, 1), nn.Sigmoid())

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * self.psi(self.gating(g) + self.skip(x))


class Up(nn.Module):
    """Doubles H and W: a 2x2 transposed conv, or bilinear resize followed by a 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, mode: str):
        super().__init__()
        if mode == "transpose":
            self.conv = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        elif mode in ("bilinear", "nearest"):
            self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        else:
            raise ValueError(f"unknown upsample {mode!r}: use 'transpose', 'bilinear' or 'nearest'")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "transpose":
            return self.conv(x)
        # 1x1 conv before the resize: same result, four times fewer MACs.
        align_corners = False if self.mode == "bilinear" else None
        return F.interpolate(self.conv(x), scale_factor=2.0, mode=self.mode, align_corners=align_corners)


class DecoderStage(nn.Module):
    """Up-sample, gate the skip (optional), concatenate [skip, up], then a DoubleBlock."""

    def __init__(self, block: str, in_channels: int, skip_channels: int, widths: dict[str, int], upsample: str, attention: bool):
        super().__init__()
        self.up = Up(in_channels, widths["up"], upsample)
        self.gate = AttentionGate(widths["up"], skip_channels, widths["gate"]) if attention else None
        self.block = DoubleBlock(block, skip_channels + widths["up"], widths)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if self.gate is not None:
            skip = self.gate(x, skip)
        return self.block(torch.cat([skip, x], dim=1))

    def widths(self) -> dict[str, int]:
        out = {"up": self.up.conv.out_channels, **self.block.widths()}
        if self.gate is not None:
            out["gate"] = self.gate.skip.conv.out_channels
        return out
