"""Variants are data: a frozen config describes a model completely, and the registry maps names to configs."""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field

BLOCKS = ("conv", "ds", "ir")
UPSAMPLES = ("transpose", "bilinear", "nearest")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a U-Net.

    Attributes:
        name: Variant name (registry key) the config came from.
        block: Stage block: ``conv`` (two 3x3 conv-BN-ReLU), ``ds`` (depthwise-separable),
            ``ir`` (MobileNetV2 inverted residual).
        in_channels: Image channels.
        num_classes: Output classes (background included).
        widths: Encoder stage widths, shallow to deep; depth = len(widths) - 1 down-samplings.
        upsample: ``transpose`` (2x2 transposed conv) or ``bilinear`` (resize + 1x1 conv).
        attention: Attention gates on the skips (Attention U-Net).
        expand_ratio: Hidden width factor of inverted residuals.
        gate_ratio: Attention gate width as a fraction of the skip width.
        fused_levels: The highest-resolution levels (encoder and decoder stages alike) that use
            plain 3x3 convs instead of ``block`` (the Fused-MBConv idea of EfficientNetV2):
            few channels at many pixels run poorly as depthwise convs, above all in INT8.
        space_to_depth: Stem factor S: the input is rearranged into S*S times the channels at
            1/S the resolution (lossless, ``pixel_unshuffle``), and the head predicts S*S
            sub-pixels per position that ``pixel_shuffle`` puts back. Moves the full-resolution
            work, which is memory-bound and quantizes poorly, into channels.
        layer_widths: Per-layer channel counts that differ from the plan derived from
            ``widths`` (pruned models), as sorted (name, channels) pairs.
    """

    name: str = "custom"
    block: str = "conv"
    in_channels: int = 1
    num_classes: int = 2
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    upsample: str = "transpose"
    attention: bool = False
    expand_ratio: int = 4
    gate_ratio: float = 0.5
    fused_levels: int = 0
    space_to_depth: int = 1
    layer_widths: tuple[tuple[str, int], ...] = field(default=())

    def __post_init__(self):
        if self.block not in BLOCKS:
            raise ValueError(f"unknown block {self.block!r}: use one of {', '.join(BLOCKS)}")
        if self.upsample not in UPSAMPLES:
            raise ValueError(f"unknown upsample {self.upsample!r}: use one of {', '.join(UPSAMPLES)}")
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must list at least two positive channel counts, got {self.widths}")
        if not 0 <= self.fused_levels <= len(self.widths):
            raise ValueError(f"fused_levels must be between 0 and {len(self.widths)} (the number of levels), got {self.fused_levels}")
        if self.space_to_depth < 1:
            raise ValueError(f"space_to_depth must be a positive factor (1: off), got {self.space_to_depth}")
        if self.in_channels < 1 or self.num_classes < 2:
            raise ValueError("in_channels must be >= 1 and num_classes >= 2 (background counts as a class)")
        # JSON round trips give lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "layer_widths", tuple(sorted((str(k), int(v)) for k, v in self.layer_widths)))

    @property
    def depth(self) -> int:
        """Number of 2x down-samplings."""
        return len(self.widths) - 1

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (2 ** depth, times the space-to-depth factor)."""
        return 2**self.depth * self.space_to_depth

    @property
    def stem_channels(self) -> int:
        """Channels the first stage sees (the input's, times space_to_depth squared)."""
        return self.in_channels * self.space_to_depth**2

    def stage_block(self, level: int) -> str:
        """Block type of the stages at ``level`` (0: full resolution)."""
        return "conv" if level < self.fused_levels else self.block

    def width_plan(self) -> dict[str, int]:
        """Channel count of every free layer width, by name (``enc2.mid``, ``dec0.up``, ...).

        Decoder stage ``decJ`` up-samples to the resolution of encoder stage ``depth - 1 - J``.
        """
        plan: dict[str, int] = {}
        ws = self.widths
        for i, w in enumerate(ws):
            self._block_plan(plan, f"enc{i}", w, ws[i - 1] if i else self.stem_channels, self.stage_block(i))
        for j in range(self.depth):
            skip = ws[self.depth - 1 - j]
            plan[f"dec{j}.up"] = skip
            if self.attention:
                plan[f"dec{j}.gate"] = max(1, int(round(skip * self.gate_ratio)))
            self._block_plan(plan, f"dec{j}", skip, 2 * skip, self.stage_block(self.depth - 1 - j))
        plan.update(dict(self.layer_widths))
        return plan

    def _block_plan(self, plan: dict[str, int], prefix: str, out: int, in_channels: int, block: str) -> None:
        plan[f"{prefix}.mid"] = out
        plan[f"{prefix}.out"] = out
        if block == "ir":
            plan[f"{prefix}.hidden1"] = in_channels * self.expand_ratio
            plan[f"{prefix}.hidden2"] = out * self.expand_ratio

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["layer_widths"] = [list(p) for p in self.layer_widths]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}: this checkpoint may come from a newer edgeunet")
        return cls(**{**d, "widths": tuple(d.get("widths", cls.widths)), "layer_widths": tuple(tuple(p) for p in d.get("layer_widths", ()))})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _widths(base: int, depth: int) -> tuple[int, ...]:
    return tuple(base * 2**i for i in range(depth + 1))


# The registry. The edge variants are laid out for INT8 on CPUs (measured against their earlier
# layout in benchmarks/): a space-to-depth stem and pixel-shuffle head keep the full-resolution
# work out of the network, the two highest-resolution levels use plain 3x3 convs (fused) because
# depthwise int8 kernels run no faster than float ones there, and up-sampling is bilinear resize
# + 1x1 conv (transposed convs stay float in ONNX Runtime's int8 graphs). Widths are multiples of 16.
_EDGE = dict(upsample="bilinear", fused_levels=2, space_to_depth=2)
_REGISTRY: dict[str, ModelConfig] = {
    "unet": ModelConfig(name="unet", block="conv", widths=_widths(64, 4), upsample="transpose"),
    "unet-ds": ModelConfig(name="unet-ds", block="ds", widths=(32, 48, 96, 192), **_EDGE),
    "unet-mobile": ModelConfig(name="unet-mobile", block="ir", widths=(32, 48, 64, 128), expand_ratio=4, **_EDGE),
    "unet-attention": ModelConfig(name="unet-attention", block="ds", widths=(32, 48, 96, 192), attention=True, **_EDGE),
}


def list_models() -> list[str]:
    """Names of the registered variants."""
    return sorted(_REGISTRY)


def get_config(name: str, **overrides) -> ModelConfig:
    """The registered config of ``name`` with ``overrides`` applied (a new object; the registry is never mutated).

    ``base_width`` and ``depth`` may be given instead of ``widths``: widths = base_width * 2**i.
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model {name!r}{hint}: choose one of {', '.join(list_models())}")
    cfg = _REGISTRY[name]
    base, depth = overrides.pop("base_width", None), overrides.pop("depth", None)
    if base is not None or depth is not None:
        if "widths" in overrides:
            raise ValueError("give either widths or base_width/depth, not both")
        overrides["widths"] = _widths(base or cfg.widths[0], depth if depth is not None else cfg.depth)
    unknown = set(overrides) - {f.name for f in dataclasses.fields(ModelConfig)}
    if unknown:
        raise ValueError(f"unknown model options {sorted(unknown)}: valid are {[f.name for f in dataclasses.fields(ModelConfig)]}")
    return dataclasses.replace(cfg, **overrides)
