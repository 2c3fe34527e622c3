"""Small models of any registered variant for the registry-driven tests."""

from __future__ import annotations

from edgeunet.models import create_model, get_config


def small_options(name: str, base_width: int, depth: int) -> dict:
    """``base_width`` and ``depth`` for edgeunet's own encoders; a pretrained encoder keeps its own widths
    (``base_width`` is refused there), so only ``depth`` makes it small."""
    return {"depth": depth} if get_config(name).encoder else {"base_width": base_width, "depth": depth}


def small_model(name: str, base_width: int = 8, depth: int = 2, **options):
    """``create_model(name, ...)`` at the small size of ``small_options``."""
    return create_model(name, **small_options(name, base_width, depth), **options)


def example_input(model, batch: int = 1, side: int = 32, seed: int = 0):
    """A seeded (batch, in_channels, side[, side], side) float32 tensor in ``model``'s dimensionality."""
    import torch

    cfg = model.current_config()
    shape = (batch, cfg.in_channels) + (side,) * cfg.spatial_dims
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
