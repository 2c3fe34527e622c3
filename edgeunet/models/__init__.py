"""Model zoo: ``create_model(name, ...)``, ``list_models()``, ``ModelConfig``."""

from __future__ import annotations

from .config import ModelConfig, get_config, list_models
from .pretrained import encoder_normalization, load_encoder_weights
from .unet import UNet, nearest_valid_size


def create_model(name: str, in_channels: int = 1, num_classes: int = 2, **overrides) -> UNet:
    """Builds a registered variant.

    Args:
        name: One of ``list_models()``.
        in_channels: Image channels.
        num_classes: Output classes, background included.
        **overrides: Any ``ModelConfig`` field, or ``base_width``/``depth`` instead of ``widths`` (only
            ``depth`` for a pretrained encoder; its weights load with ``load_encoder_weights``).
    """
    return UNet(get_config(name, in_channels=in_channels, num_classes=num_classes, **overrides))


def build_model(cfg: ModelConfig) -> UNet:
    """Rebuilds a model from its config (checkpoints and pruned models)."""
    return UNet(cfg)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "ModelConfig", "UNet", "build_model", "count_parameters", "create_model", "encoder_normalization", "get_config",
    "list_models", "load_encoder_weights", "nearest_valid_size",
]
