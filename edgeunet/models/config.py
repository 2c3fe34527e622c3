"""Variants are data: a frozen config describes a model completely, and the registry maps names to configs."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field

from ..errors import UserError
from .encoder_specs import encoder_spec, encoder_widths

BLOCKS = ("conv", "ds", "ir")
# Up-sampling modes by spatial_dims: the linear resize is named after its dimensionality.
UPSAMPLES_BY_DIMS = {2: ("transpose", "bilinear", "nearest"), 3: ("transpose", "trilinear", "nearest")}
UPSAMPLES = tuple(dict.fromkeys(m for modes in UPSAMPLES_BY_DIMS.values() for m in modes))
SPATIAL_DIMS = tuple(UPSAMPLES_BY_DIMS)
# Fields added after the first configs (3-D support, up_act, encoder, the Transformer blocks); ``to_dict`` leaves
# them out at their defaults, so configs keep the JSON (checkpoints, ONNX metadata) of earlier versions, which
# older readers still load.
_DEFAULT_OMITTED = {"spatial_dims": 2, "pool": (), "up_act": False, "encoder": "", "attention_levels": (),
                    "attention_blocks": 1, "heads": 4}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a U-Net.

    Attributes:
        name: Variant name (registry key) the config came from.
        block: Stage block: ``conv`` (two 3x3 (3x3x3) conv-BN-ReLU), ``ds`` (depthwise-separable),
            ``ir`` (MobileNetV2 inverted residual).
        in_channels: Image channels.
        num_classes: Output classes (background included).
        widths: Encoder stage widths, shallow to deep; depth = len(widths) - 1 down-samplings.
        upsample: ``transpose`` (transposed conv, kernel = stride = the pooling factor), or a resize
            followed by a 1x1 conv: ``bilinear`` (2-D), ``trilinear`` (3-D) or ``nearest``.
        up_act: BatchNorm + ReLU after the 1x1 conv of a resize up-sampling. Both inputs of every
            decoder concat are then ReLU outputs, so an INT8 file gives them one scale and zero point
            and ONNX Runtime's QLinearConcat copies bytes instead of requantizing them.
        attention: Attention gates on the skips (Attention U-Net).
        expand_ratio: Hidden width factor of inverted residuals and of the Transformer blocks' feed-forward.
        gate_ratio: Attention gate width as a fraction of the skip width.
        fused_levels: The highest-resolution levels (encoder and decoder stages alike) that use
            plain 3x3 convs instead of ``block`` (the Fused-MBConv idea of EfficientNetV2):
            few channels at many pixels run poorly as depthwise convs, above all in INT8.
        space_to_depth: Stem factor S: the input is rearranged into S*S times the channels at
            1/S the resolution (lossless, ``pixel_unshuffle``), and the head predicts S*S
            sub-pixels per position that ``pixel_shuffle`` puts back. Moves the full-resolution
            work, which is memory-bound and quantizes poorly, into channels. 2-D only (see below).
        layer_widths: Per-layer channel counts that differ from the plan derived from
            ``widths`` (pruned models), as sorted (name, channels) pairs.
        spatial_dims: 2 (images, (B, C, H, W)) or 3 (volumes, (B, C, D, H, W)).
        pool: Down-sampling factor per axis at each of the ``depth`` poolings, shallow to deep,
            each 1 (keep) or 2 (halve); e.g. ``((1, 2, 2), (2, 2, 2), (2, 2, 2))`` keeps the slice
            count of a thick-slice volume at the first pooling. The decoder up-samples by the same
            factors. Empty (the default): 2 along every axis at every level.
        encoder: A pretrained encoder of ``edgeunet.models.encoder_specs.ENCODERS`` (``efficientnet-lite0``,
            ``vgg11``, ...), or empty for edgeunet's own. Its table fixes ``widths`` (the skip widths, of the
            first depth + 1 levels) and ``space_to_depth`` (its stem's stride: the head pixel-shuffles a
            1/2-resolution first skip back); ``block``, ``upsample``, ``up_act``, ``attention`` and
            ``fused_levels`` shape the decoder and any new stage below the pretrained ones. 2-D only.
        attention_levels: Encoder levels (0: full resolution) whose stage ends in Transformer blocks
            (``blocks.TransformerBlock``: depthwise-conv positions, ReLU linear attention, conv feed-forward);
            the lowest one or two levels, where the positions are few, in ``unet-vit``.
        attention_blocks: Transformer blocks at each of ``attention_levels``.
        heads: Attention heads of each block; the level's design width (``widths[level]``, also once pruned)
            is the width of q, k and v and must be divisible by it. The feed-forward's hidden width is
            ``expand_ratio`` times the level's width (``enc{i}.ffn{k}`` in the width plan).

    3-D has no space-to-depth: torch has no 3-D ``pixel_unshuffle`` (it would be an 8-D reshape
    and transpose in ONNX, past what TensorRT handles well), the factor cubes the stem's channels
    (8x for S=2) and it cannot follow per-axis pooling, where a thin axis is not halved. The 3-D
    edge variant keeps plain convs at its fused full-resolution level instead.
    """

    name: str = "custom"
    block: str = "conv"
    in_channels: int = 1
    num_classes: int = 2
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    upsample: str = "transpose"
    up_act: bool = False
    attention: bool = False
    expand_ratio: int = 4
    gate_ratio: float = 0.5
    fused_levels: int = 0
    space_to_depth: int = 1
    layer_widths: tuple[tuple[str, int], ...] = field(default=())
    spatial_dims: int = 2
    pool: tuple[tuple[int, ...], ...] = field(default=())
    encoder: str = ""
    attention_levels: tuple[int, ...] = field(default=())
    attention_blocks: int = 1
    heads: int = 4

    def __post_init__(self):
        if self.block not in BLOCKS:
            raise UserError(f"unknown block {self.block!r}: use one of {', '.join(BLOCKS)}")
        if self.spatial_dims not in SPATIAL_DIMS:
            raise UserError(f"spatial_dims must be 2 (images) or 3 (volumes), got {self.spatial_dims!r}")
        self._check_upsample()
        if self.up_act and self.upsample == "transpose":
            raise UserError("up_act needs a resize up-sampling: use upsample 'bilinear', 'trilinear' or 'nearest'")
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise UserError(f"widths must list at least two positive channel counts, got {self.widths}")
        if not 0 <= self.fused_levels <= len(self.widths):
            raise UserError(f"fused_levels must be between 0 and {len(self.widths)} (the number of levels), "
                            f"got {self.fused_levels}")
        if self.space_to_depth < 1:
            raise UserError(f"space_to_depth must be a positive factor (1: off), got {self.space_to_depth}")
        if self.in_channels < 1 or self.num_classes < 2:
            raise UserError("in_channels must be >= 1 and num_classes >= 2 (background counts as a class)")
        # JSON round trips give lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "layer_widths", tuple(sorted((str(k), int(v)) for k, v in self.layer_widths)))
        object.__setattr__(self, "pool", self._checked_pool())
        if self.spatial_dims == 3 and self.space_to_depth != 1:
            raise UserError(f"space_to_depth={self.space_to_depth} is 2-D only (pixel_unshuffle): "
                            "use 1 for a 3-D model")
        if self.encoder:
            encoder_spec(self.encoder).check_layout(self.widths, self.spatial_dims, self.pool, self.space_to_depth)
        object.__setattr__(self, "attention_levels", self._checked_attention_levels())

    def _checked_attention_levels(self) -> tuple[int, ...]:
        """``attention_levels`` as a sorted tuple of distinct levels, each with a width the heads divide."""
        try:
            levels = tuple(sorted({int(level) for level in self.attention_levels}))
        except (TypeError, ValueError):
            raise UserError(f"attention_levels must list encoder levels, got {self.attention_levels!r}") from None
        if not levels:
            return ()
        if self.encoder:
            raise UserError(f"attention_levels need edgeunet's own encoder, not the pretrained {self.encoder!r}")
        if levels[0] < 0 or levels[-1] > self.depth:
            raise UserError(f"attention_levels {list(levels)} must lie between 0 and {self.depth} (the deepest level)")
        if self.attention_blocks < 1 or self.heads < 1:
            raise UserError(f"attention_blocks ({self.attention_blocks}) and heads ({self.heads}) must be at least 1")
        odd = [f"level {i} ({self.widths[i]} channels)" for i in levels if self.widths[i] % self.heads]
        if odd:
            raise UserError(f"{self.heads} heads do not divide the width of {', '.join(odd)}: "
                            "choose a number of heads that divides every attention level's width")
        return levels

    def transformer(self, level: int) -> tuple[int, int] | None:
        """(attention width, heads) of the Transformer blocks at encoder ``level``; None where there are none."""
        return (self.widths[level], self.heads) if level in self.attention_levels else None

    def _check_upsample(self) -> None:
        modes = UPSAMPLES_BY_DIMS[self.spatial_dims]
        if self.upsample in modes:
            return
        if self.upsample in UPSAMPLES:
            other_dims = 3 if self.spatial_dims == 2 else 2
            other = modes[UPSAMPLES_BY_DIMS[other_dims].index(self.upsample)]
            raise UserError(f"upsample {self.upsample!r} is for {other_dims}-D models: "
                            f"use {other!r} for spatial_dims={self.spatial_dims}")
        raise UserError(f"unknown upsample {self.upsample!r}: use one of {', '.join(modes)}")

    def _checked_pool(self) -> tuple[tuple[int, ...], ...]:
        """``pool`` as a tuple of int tuples; () when it says 2 everywhere (the default, spelled out)."""
        try:
            pool = tuple(tuple(int(f) for f in level) for level in self.pool)
        except (TypeError, ValueError):
            raise UserError(f"pool must list one tuple of per-axis factors per level, got {self.pool!r}") from None
        if not pool:
            return ()
        example = ", ".join(["(" + ", ".join(["2"] * self.spatial_dims) + ")"] * self.depth)
        if len(pool) != self.depth or any(len(level) != self.spatial_dims for level in pool):
            raise UserError(f"pool {pool} must give {self.spatial_dims} factors for each of the {self.depth} "
                            f"poolings (widths give depth {self.depth}), e.g. ({example})")
        if any(f not in (1, 2) for level in pool for f in level):
            raise UserError(f"pool factors must be 1 (keep that axis) or 2 (halve it), got {pool}")
        return () if all(f == 2 for level in pool for f in level) else pool

    @property
    def depth(self) -> int:
        """Number of 2x down-samplings."""
        return len(self.widths) - 1

    @property
    def pool_factors(self) -> tuple[tuple[int, ...], ...]:
        """The per-axis down-sampling factors of each pooling, ``pool`` with the default filled in."""
        return self.pool or ((2,) * self.spatial_dims,) * self.depth

    @property
    def size_multiples(self) -> tuple[int, ...]:
        """Per spatial axis ((H, W) or (D, H, W)), the multiple its size must be: the product of its
        pooling factors, times the space-to-depth factor."""
        return tuple(math.prod(level[axis] for level in self.pool_factors) * self.space_to_depth
                     for axis in range(self.spatial_dims))

    @property
    def size_multiple(self) -> int:
        """One multiple valid on every axis: 2 ** depth times the space-to-depth factor unless ``pool``
        keeps an axis somewhere (then the least common multiple of ``size_multiples``, i.e. their max:
        they are powers of 2). Padding each axis only to ``size_multiples`` is enough, and less work."""
        return math.lcm(*self.size_multiples)

    @property
    def stem_channels(self) -> int:
        """Channels the encoder sees: the input's, times space_to_depth squared unless a pretrained encoder's own
        stem does the down-sampling (3-D has none)."""
        return self.in_channels if self.encoder else self.in_channels * self.space_to_depth**2

    def stage_block(self, level: int) -> str:
        """Block type of the stages at ``level`` (0: full resolution)."""
        return "conv" if level < self.fused_levels else self.block

    def width_plan(self) -> dict[str, int]:
        """Channel count of every free layer width, by name (``enc2.mid``, ``dec0.up``, ...).

        Decoder stage ``decJ`` up-samples to the resolution of encoder stage ``depth - 1 - J``. A pretrained
        encoder's layers are ``enc0.stem`` and ``enc{i}.{k}.hidden`` / ``enc{i}.{k}.out`` for its block k at
        level i (``EncoderSpec.unit_plan``); a new stage below them is planned as edgeunet's own.
        """
        plan: dict[str, int] = {}
        ws, spec = self.widths, encoder_spec(self.encoder) if self.encoder else None
        pretrained = min(len(ws), len(spec.levels)) if spec else 0
        plan.update(spec.unit_plan(pretrained) if spec else {})
        for i in range(pretrained, len(ws)):
            self._block_plan(plan, f"enc{i}", ws[i], ws[i - 1] if i else self.stem_channels, self.stage_block(i))
            if i in self.attention_levels:
                plan.update({f"enc{i}.ffn{k}": ws[i] * self.expand_ratio for k in range(self.attention_blocks)})
        for j in range(self.depth):
            level = self.depth - 1 - j
            skip = ws[level]
            up, out = spec.decoder_stage_widths(level) if spec else (skip, skip)
            plan[f"dec{j}.up"] = up
            if self.attention:
                plan[f"dec{j}.gate"] = max(1, int(round(skip * self.gate_ratio)))
            self._block_plan(plan, f"dec{j}", out, skip + up, self.stage_block(level))
        plan.update(dict(self.layer_widths))
        return plan

    def _block_plan(self, plan: dict[str, int], prefix: str, out: int, in_channels: int, block: str) -> None:
        plan[f"{prefix}.mid"] = out
        plan[f"{prefix}.out"] = out
        if block == "ir":
            plan[f"{prefix}.hidden1"] = in_channels * self.expand_ratio
            plan[f"{prefix}.hidden2"] = out * self.expand_ratio

    def to_dict(self) -> dict:
        """Plain JSON-able dict; ``spatial_dims``, ``pool``, ``up_act``, ``encoder`` and the Transformer fields are
        left out at their defaults (2-D configs read as before, also by edgeunet versions without 3-D support)."""
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["layer_widths"] = [list(p) for p in self.layer_widths]
        d["pool"] = [list(level) for level in self.pool]
        d["attention_levels"] = list(self.attention_levels)
        for key, default in _DEFAULT_OMITTED.items():
            if getattr(self, key) == default:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of ``to_dict``; configs of earlier versions (no ``spatial_dims``: 2-D) load too."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UserError(f"unknown model config keys {sorted(unknown)}: "
                            "this checkpoint may come from a newer edgeunet")
        return cls(**{**d, "widths": tuple(d.get("widths", cls.widths)),
                      "attention_levels": tuple(d.get("attention_levels", ())),
                      "layer_widths": tuple(tuple(p) for p in d.get("layer_widths", ()))})

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
# The depthwise-separable ones also put BN + ReLU on the up-sampling conv (``up_act``): their skips are ReLU
# outputs, so each decoder concat then joins two ReLU outputs and its INT8 form is a byte copy
# (benchmarks/up_act.py). The inverted-residual skips end in a linear projection, so unet-mobile gains nothing.
_EDGE_DS = dict(_EDGE, up_act=True)


def _pretrained(name: str, encoder: str) -> ModelConfig:
    """A pretrained encoder with the edge decoder of unet-ds, its widths taken from the encoder's skips
    (TernausNet11's published ones for vgg11; ``EncoderSpec.decoder_widths``)."""
    return ModelConfig(name=name, encoder=encoder, block="ds", widths=encoder_widths(encoder),
                       **{**_EDGE_DS, "space_to_depth": encoder_spec(encoder).stem_stride})


_REGISTRY: dict[str, ModelConfig] = {
    "unet": ModelConfig(name="unet", block="conv", widths=_widths(64, 4), upsample="transpose"),
    "unet-ds": ModelConfig(name="unet-ds", block="ds", widths=(32, 48, 96, 192), **_EDGE_DS),
    "unet-mobile": ModelConfig(name="unet-mobile", block="ir", widths=(32, 48, 64, 128), expand_ratio=4, **_EDGE),
    "unet-attention": ModelConfig(name="unet-attention", block="ds", widths=(32, 48, 96, 192), attention=True,
                                  **_EDGE_DS),
    # unet-ds with Transformer blocks at its two lowest resolutions (1/8 and 1/16 of the input), laid out to stay
    # fast in INT8 as EfficientViT is: ReLU linear attention (no softmax), BatchNorm, depthwise-conv positions.
    "unet-vit": ModelConfig(name="unet-vit", block="ds", widths=(32, 48, 96, 192), attention_levels=(2, 3),
                            attention_blocks=1, heads=4, **_EDGE_DS),
    # ImageNet-pretrained encoders (weights: edgeunet.models.pretrained). EfficientNet-Lite's stride-2 stem
    # takes the place of the space-to-depth stem; TernausNet11 (arXiv:1801.05746) adds a centre stage at 1/32.
    "unet-efficientnet-lite0": _pretrained("unet-efficientnet-lite0", "efficientnet-lite0"),
    "unet-efficientnet-lite1": _pretrained("unet-efficientnet-lite1", "efficientnet-lite1"),
    "unet-efficientnet-lite2": _pretrained("unet-efficientnet-lite2", "efficientnet-lite2"),
    "ternausnet": _pretrained("ternausnet", "vgg11"),
    # 3-D (Cicek et al. 2016): 3x3x3 conv-BN-ReLU stages, 2x2x2 transposed-conv up-sampling.
    "unet3d": ModelConfig(name="unet3d", spatial_dims=3, block="conv", widths=(32, 64, 128, 256), upsample="transpose"),
    # The 3-D edge variant, chosen by ONNX Runtime FP32 timings at 64^3 (1 thread, AMD EPYC) and a short
    # training on synthetic volumes: the full-resolution level is plain 3x3x3 convs (fused_levels=1;
    # depthwise-separable there lost 3 to 7 Dice points) kept to 8 channels, which runs twice as fast as 16
    # at the same Dice; 8-16-32-64 is 1.2x faster again but lost a Dice point. Trilinear up-sampling runs
    # as fast as transposed convs and stays int8 in ONNX Runtime. No space-to-depth in 3-D (see ModelConfig).
    "unet3d-ds": ModelConfig(name="unet3d-ds", spatial_dims=3, block="ds", widths=(8, 32, 64, 128),
                             upsample="trilinear", fused_levels=1),
}


def list_models(spatial_dims: int | None = None) -> list[str]:
    """Names of the registered variants with ``spatial_dims`` (2: images, 3: volumes, None: all, the default),
    so every variant, 2-D or 3-D, meets the registry-driven tests."""
    return sorted(n for n, c in _REGISTRY.items() if spatial_dims is None or c.spatial_dims == spatial_dims)


def _encoder_overrides(name: str, encoder: str, cfg: ModelConfig, base: int | None, depth: int | None,
                       overrides: dict) -> None:
    """Fills ``widths`` (and ``space_to_depth`` for a new encoder) into ``overrides`` from the encoder's table."""
    if base is not None:
        raise UserError(f"base_width does not apply to {name} ({encoder} encoder): its widths are the pretrained "
                        f"ones {encoder_widths(encoder)}; give depth to keep fewer levels, or prune it to narrow it")
    if "widths" not in overrides and (depth is not None or encoder != cfg.encoder):
        overrides["widths"] = encoder_widths(encoder, depth)
    if encoder != cfg.encoder:
        overrides.setdefault("space_to_depth", encoder_spec(encoder).stem_stride)


def get_config(name: str, **overrides) -> ModelConfig:
    """The registered config of ``name`` with ``overrides`` applied (a new object; the registry is never mutated).

    ``base_width`` and ``depth`` may be given instead of ``widths``: widths = base_width * 2**i. A model with a
    pretrained ``encoder`` takes ``depth`` only: its first depth + 1 levels (``encoder_widths``). Other widths
    keep a variant's Transformer blocks at the same levels counted from the deepest, unless
    ``attention_levels`` is given too.
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"unknown model {name!r}{hint}: choose one of {', '.join(list_models(None))}")
    cfg = _REGISTRY[name]
    base, depth = overrides.pop("base_width", None), overrides.pop("depth", None)
    if (base is not None or depth is not None) and "widths" in overrides:
        raise UserError("give either widths or base_width/depth, not both")
    encoder = overrides.get("encoder", cfg.encoder)
    if encoder:
        _encoder_overrides(name, encoder, cfg, base, depth, overrides)
    elif base is not None or depth is not None:
        overrides["widths"] = _widths(base or cfg.widths[0], depth if depth is not None else cfg.depth)
    if cfg.attention_levels and "widths" in overrides and "attention_levels" not in overrides:
        # the Transformer blocks stay at the same levels counted from the deepest (unet-vit at depth 2: 1 and 2)
        shift = len(overrides["widths"]) - len(cfg.widths)
        overrides["attention_levels"] = tuple(level + shift for level in cfg.attention_levels if level + shift >= 0)
    if overrides.get("upsample") == "transpose" and "up_act" not in overrides:
        overrides["up_act"] = False  # a transposed conv has no 1x1 conv to follow: the knob goes with the resize
    unknown = set(overrides) - {f.name for f in dataclasses.fields(ModelConfig)}
    if unknown:
        valid = [f.name for f in dataclasses.fields(ModelConfig)]
        raise UserError(f"unknown model options {sorted(unknown)}: valid are {valid}")
    return dataclasses.replace(cfg, **overrides)
