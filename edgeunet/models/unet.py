"""One U-Net skeleton for every variant: ``skips = encoder(x)``, ``x = decoder(skips)``, ``head(x)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import DecoderStage, DoubleBlock, Pool, conv_layer, stage_widths
from .config import ModelConfig
from .encoders import PretrainedEncoder


def nearest_valid_size(size: int, multiple: int) -> int:
    """The closest positive multiple of ``multiple`` (ties round up)."""
    return max(multiple, int((size + multiple / 2) // multiple) * multiple)


class Encoder(nn.Module):
    """Returns the feature map of every stage, shallow to deep; stage i is pooled i times
    (1 / 2**i resolution unless ``cfg.pool`` keeps an axis)."""

    def __init__(self, cfg: ModelConfig, plan: dict[str, int]):
        super().__init__()
        self.pool = Pool(cfg.spatial_dims)
        self.factors = cfg.pool_factors
        stages, in_channels = [], cfg.stem_channels
        for i in range(cfg.depth + 1):
            widths = stage_widths(plan, f"enc{i}")
            stages.append(DoubleBlock(cfg.stage_block(i), in_channels, widths, cfg.spatial_dims,
                                      transformer=cfg.transformer(i)))
            in_channels = widths["out"]
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for i, stage in enumerate(self.stages):
            x = stage(self.pool(x, self.factors[i - 1]) if i else x)
            skips.append(x)
        return skips

    def width_owners(self) -> dict[str, nn.Module]:
        """Width name (``enc{i}.mid``, ...) -> the conv whose output channels are that width."""
        return {f"enc{i}.{name}": conv for i, s in enumerate(self.stages) for name, conv in s.width_owners().items()}

    def skip_names(self) -> list[str]:
        """The width name of each level's output, shallow to deep."""
        return [f"enc{i}.out" for i in range(len(self.stages))]

    def skip_widths(self) -> list[int]:
        """The actual channels of each level's output (they change when pruned)."""
        return [s.widths()["out"] for s in self.stages]


class Decoder(nn.Module):
    """Takes its widths from the encoder: stage j joins the deepest map with skip ``depth - 1 - j``."""

    def __init__(self, cfg: ModelConfig, plan: dict[str, int], encoder: Encoder | PretrainedEncoder):
        super().__init__()
        skip_widths = encoder.skip_widths()
        stages, in_channels = [], skip_widths[-1]
        for j in range(cfg.depth):
            widths = stage_widths(plan, f"dec{j}")
            level = cfg.depth - 1 - j
            stages.append(DecoderStage(cfg.stage_block(level), in_channels, skip_widths[level], widths, cfg.upsample,
                                       cfg.attention, cfg.spatial_dims, cfg.pool_factors[level], cfg.up_act))
            in_channels = widths["out"]
        self.stages = nn.ModuleList(stages)
        self.out_channels = in_channels

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        x = skips[-1]
        for j, stage in enumerate(self.stages):
            x = stage(x, skips[-2 - j])
        return x

    def width_owners(self) -> dict[str, nn.Module]:
        """Width name (``dec{j}.up``, ``dec{j}.gate``, ``dec{j}.mid``, ...) -> the conv that owns it."""
        return {f"dec{j}.{name}": conv for j, s in enumerate(self.stages) for name, conv in s.width_owners().items()}


class UNet(nn.Module):
    """U-Net built from a ModelConfig. (B, in_channels, H, W) -> (B, num_classes, H, W) logits, or
    (B, in_channels, D, H, W) -> (B, num_classes, D, H, W) for ``spatial_dims=3``.

    Each spatial size must be a multiple of its ``cfg.size_multiples`` entry (2 ** depth x
    space_to_depth unless ``cfg.pool`` keeps an axis at some level). With a pretrained ``cfg.encoder``
    (``encoders.PretrainedEncoder``) the encoder's own stem does what pixel_unshuffle does otherwise.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        plan = cfg.width_plan()
        self.encoder = PretrainedEncoder(cfg, plan) if cfg.encoder else Encoder(cfg, plan)
        self.decoder = Decoder(cfg, plan, self.encoder)
        self.head = conv_layer(cfg.spatial_dims, self.decoder.out_channels, cfg.num_classes * cfg.space_to_depth**2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()):
            self.check_input(x)
        s = self.cfg.space_to_depth
        skips = self.encoder(F.pixel_unshuffle(x, s) if s > 1 and not self.cfg.encoder else x)
        x = self.head(self.decoder(skips))
        return F.pixel_shuffle(x, s) if s > 1 else x

    def check_input(self, x: torch.Tensor) -> None:
        """Raises ValueError naming the fix when ``x`` has the wrong rank, channels or size."""
        dims = self.cfg.spatial_dims
        if x.ndim != 2 + dims:
            layout = "(B, C, H, W)" if dims == 2 else "(B, C, D, H, W)"
            raise ValueError(f"expected a {layout} tensor, got shape {tuple(x.shape)}")
        if x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"the input has {x.shape[1]} channels but the model takes {self.cfg.in_channels}")
        multiples, sizes = self.cfg.size_multiples, [int(n) for n in x.shape[2:]]
        if any(n % m for n, m in zip(sizes, multiples)):
            m = multiples[0] if len(set(multiples)) == 1 else "x".join(map(str, multiples))
            raise ValueError(
                f"input size {'x'.join(map(str, sizes))} is not a multiple of {m} (the model's size multiple): "
                f"pad or resize to {'x'.join(str(nearest_valid_size(n, k)) for n, k in zip(sizes, multiples))}"
            )

    def width_owners(self) -> dict[str, nn.Module]:
        """Width name (as in ``cfg.width_plan()``) -> the conv whose output channels are that width."""
        return {**self.encoder.width_owners(), **self.decoder.width_owners()}

    def width_plan(self) -> dict[str, int]:
        """The actual per-layer widths (differ from ``cfg.width_plan()`` once pruned)."""
        return {name: conv.out_channels for name, conv in self.width_owners().items()}

    def current_config(self) -> ModelConfig:
        """A config that rebuilds this model with its current (possibly pruned) widths."""
        import dataclasses

        default = dataclasses.replace(self.cfg, layer_widths=()).width_plan()
        changed = tuple((k, v) for k, v in self.width_plan().items() if default.get(k) != v)
        return dataclasses.replace(self.cfg, layer_widths=changed)
