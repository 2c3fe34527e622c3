"""Variants are data: a frozen config describes a model completely, and the registry maps names to configs."""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field

BLOCKS = ("conv", "ds", "ir")
UPSAMPLES = ("transpose", "bilinear")


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
    layer_widths: tuple[tuple[str, int], ...] = field(default=())

    def __post_init__(self):
        if self.block not in BLOCKS:
            raise ValueError(f"unknown block {self.block!r}: use one of {', '.join(BLOCKS)}")
        if self.upsample not in UPSAMPLES:
            raise ValueError(f"unknown upsample {self.upsample!r}: use one of {', '.join(UPSAMPLES)}")
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must list at least two positive channel counts, got {self.widths}")
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
        """H and W must be multiples of this (2 ** depth)."""
        return 2**self.depth

    def width_plan(self) -> dict[str, int]:
        """Channel count of every free layer width, by name (``enc2.mid``, ``dec0.up``, ...).

        Decoder stage ``decJ`` up-samples to the resolution of encoder stage ``depth - 1 - J``.
        """
        plan: dict[str, int] = {}
        ws = self.widths
        for i, w in enumerate(ws):
            self._block_plan(plan, f"enc{i}", w, ws[i - 1] if i else self.in_channels)
        for j in range(self.depth):
            skip = ws[self.depth - 1 - j]
            plan[f"dec{j}.up"] = skip
            if self.attention:
                plan[f"dec{j}.gate"] = max(1, int(round(skip * self.gate_ratio)))
            self._block_plan(plan, f"dec{j}", skip, 2 * skip)
        plan.update(dict(self.layer_widths))
        return plan

    def _block_plan(self, plan: dict[str, int], prefix: str, out: int, in_channels: int) -> None:
        plan[f"{prefix}.mid"] = out
        plan[f"{prefix}.out"] = out
        if self.block == "ir":
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


# The registry. Edge variants default to bilinear up-sampling (resize + 1x1 conv): fewer
# parameters than 2x2 transposed convs and friendlier to INT8 kernels.
_REGISTRY: dict[str, ModelConfig] = {
    "unet": ModelConfig(name="unet", block="conv", widths=_widths(64, 4), upsample="transpose"),
    "unet-ds": ModelConfig(name="unet-ds", block="ds", widths=_widths(16, 4), upsample="bilinear"),
    "unet-mobile": ModelConfig(name="unet-mobile", block="ir", widths=(16, 24, 32, 64, 128), upsample="bilinear", expand_ratio=4),
    "unet-attention": ModelConfig(name="unet-attention", block="ds", widths=_widths(16, 4), upsample="bilinear", attention=True),
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
