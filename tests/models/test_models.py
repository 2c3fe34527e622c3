"""Registry-driven model tests: every variant in list_models() enters each test.

The generic tests run every variant, 2-D and 3-D (``ALL``); inputs follow the variant's spatial_dims.
"""

from __future__ import annotations

import pytest
import torch
from small_models import small_model

from edgeunet.models import ModelConfig, build_model, count_parameters, create_model, get_config, list_models
from edgeunet.models.unet import nearest_valid_size

ALL = list_models(spatial_dims=None)
# Small widths keep the suite fast; the architecture (block, upsample, attention) is the variant's own.
# A 3-D stage costs a side's worth more than a 2-D one: smaller widths and volumes still.
SMALL_BY_DIMS = {2: {"base_width": 8, "depth": 3}, 3: {"base_width": 4, "depth": 2}}
SIDE = {2: 32, 3: 16}  # a valid side for every small variant
# Sizes as multiples of the size multiple, odd and even, per axis.
UNITS = {2: [(4, 4), (5, 7), (8, 3)], 3: [(2, 2, 2), (3, 1, 2), (1, 3, 5)]}
# Sizes that are no multiple, as (units, offset) per axis: the nearest valid size is units x multiple.
OFF_GRID = {2: ((4, -2), (6, -3)), 3: ((4, -1), (6, -1), (2, 1))}


def dims(name: str) -> int:
    return get_config(name).spatial_dims


def small(name: str, **kw):
    return small_model(name, **{**SMALL_BY_DIMS[dims(name)], **kw})


def example(name: str, batch: int = 1, channels: int = 1) -> torch.Tensor:
    return torch.randn(batch, channels, *[SIDE[dims(name)]] * dims(name))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("case", range(3))
@pytest.mark.slow
def test_forward_shape_over_sizes(name, case):
    model = small(name, in_channels=3, num_classes=4).eval()
    size = tuple(u * m for u, m in zip(UNITS[dims(name)][case], model.cfg.size_multiples))
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 4, *size)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.slow
def test_every_parameter_gets_a_gradient(name):
    # Three input channels: with one, the first depthwise BatchNorm's scale is cancelled by the
    # BatchNorm after the pointwise conv (scale invariance), so its gradient is zero up to rounding.
    torch.manual_seed(0)
    model = small(name, in_channels=3)
    model(example(name, 2, 3)).logsumexp(1).mean().backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not missing


@pytest.mark.parametrize("name", ALL)
@pytest.mark.slow
def test_config_round_trip_rebuilds_identical_model(name):
    torch.manual_seed(0)
    model = small(name, num_classes=3).eval()
    cfg = ModelConfig.from_dict(model.cfg.to_dict())
    assert cfg == model.cfg
    clone = build_model(cfg).eval()
    clone.load_state_dict(model.state_dict(), strict=True)
    x = example(name)
    with torch.no_grad():
        assert torch.equal(model(x), clone(x))


@pytest.mark.parametrize("name", ALL)
def test_size_not_multiple_names_nearest_valid_size(name):
    model = small(name)
    m = model.cfg.size_multiple  # 8 or more in 2-D, 4 in 3-D
    sizes = [u * m + off for u, off in OFF_GRID[dims(name)]]
    valid = "x".join(str(u * m) for u, _ in OFF_GRID[dims(name)])
    assert valid == "x".join(str(nearest_valid_size(n, m)) for n in sizes)
    with pytest.raises(ValueError, match=rf"not a multiple of {m}.*pad or resize to {valid}"):
        model(torch.randn(1, 1, *sizes))


@pytest.mark.parametrize("name", ALL)
def test_wrong_channel_count_is_named(name):
    with pytest.raises(ValueError, match="3 channels but the model takes 1"):
        small(name)(example(name, channels=3))


@pytest.mark.parametrize("upsample", ["transpose", "bilinear", "nearest"])
@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.slow
def test_knobs_combine_on_every_block(upsample, attention):
    for name in list_models(2):  # 2-D; tests/test_models_3d.py combines the 3-D knobs
        model = small(name, upsample=upsample, attention=attention)
        assert model.cfg.upsample == upsample and model.cfg.attention == attention
        side = 2 * model.cfg.size_multiple
        assert model(torch.randn(1, 1, side, side)).shape == (1, 2, side, side)


def test_classic_unet_has_the_quoted_31m_parameters():
    assert 31.0e6 <= count_parameters(create_model("unet", in_channels=1, num_classes=2)) <= 31.1e6


def test_unet_ds_default_is_small():
    assert count_parameters(create_model("unet-ds")) <= 0.5e6


def test_unet_mobile_uses_inverted_residuals_with_residual_where_shapes_match():
    model = create_model("unet-mobile")
    units = [m for m in model.modules() if type(m).__name__ == "InvertedResidual"]
    assert units and any(u.use_residual for u in units) and not all(u.use_residual for u in units)


def test_attention_gates_sit_on_every_skip():
    model = create_model("unet-ds", attention=True)
    assert all(stage.gate is not None for stage in model.decoder.stages)


def test_unknown_model_lists_valid_names_and_suggests():
    with pytest.raises(ValueError, match=r"unknown model 'unet-dss' \(did you mean 'unet-ds'\?\).*unet-mobile"):
        create_model("unet-dss")


def test_unknown_option_is_rejected():
    with pytest.raises(ValueError, match="unknown model options"):
        create_model("unet-ds", wdiths=(8, 16))


def test_registry_is_not_mutated_by_overrides():
    before = get_config("unet-ds")
    create_model("unet-ds", base_width=4, depth=2, attention=True)
    assert get_config("unet-ds") == before


def test_base_width_and_depth_set_widths():
    assert get_config("unet", base_width=8, depth=2).widths == (8, 16, 32)


def test_layer_widths_override_the_plan():
    cfg = get_config("unet-ds", base_width=8, depth=2, layer_widths=(("enc1.mid", 8), ("dec0.out", 8)))
    model = build_model(cfg)
    plan = model.width_plan()
    assert plan["enc1.mid"] == 8 and plan["dec0.out"] == 8
    assert model.current_config() == cfg


@pytest.mark.slow
def test_fused_levels_use_plain_convs_at_the_highest_resolutions():
    model = create_model("unet-ds", base_width=8, depth=3, fused_levels=2)
    blocks = [s.block for s in model.encoder.stages] + [s.block.block for s in model.decoder.stages]
    # Encoder levels 0..3, then decoder stages at levels 2, 1, 0.
    assert blocks == ["conv", "conv", "ds", "ds", "ds", "conv", "conv"]
    assert not any(m.groups > 1 for m in model.encoder.stages[0].modules() if isinstance(m, torch.nn.Conv2d))


def test_fused_inverted_residual_levels_have_no_hidden_widths():
    plan = get_config("unet-mobile", fused_levels=1).width_plan()
    assert "enc0.hidden1" not in plan and "dec2.hidden1" not in plan and "enc1.hidden1" in plan


@pytest.mark.slow
def test_space_to_depth_scales_the_size_multiple_and_keeps_full_resolution_output():
    model = small("unet-ds", space_to_depth=2, num_classes=3).eval()
    assert model.cfg.size_multiple == 2**3 * 2
    assert model.encoder.stages[0].unit1.conv.in_channels == 4  # 1 channel x 2 x 2
    assert model.head.out_channels == 3 * 4
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 48)).shape == (1, 3, 32, 48)


@pytest.mark.slow
def test_space_to_depth_output_pixels_come_from_their_own_block():
    """Each 2x2 output block is predicted from the features at its position: changing the input far
    away (beyond the receptive field) leaves a block unchanged, and its 4 pixels may differ."""
    torch.manual_seed(0)
    model = create_model("unet-ds", widths=(8, 8), fused_levels=1, space_to_depth=2).eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        out = model(x)
        far = x.clone()
        far[..., 48:, 48:] = 0
        changed = model(far)
    assert torch.equal(out[..., :8, :8], changed[..., :8, :8])
    assert not torch.equal(out[..., 0::2, 0::2], out[..., 1::2, 1::2])


@pytest.mark.parametrize("options, message", [
    ({"fused_levels": 6}, "fused_levels must be between 0 and 5"),
    ({"fused_levels": -1}, "fused_levels must be between 0 and"),
    ({"space_to_depth": 0}, "space_to_depth must be a positive factor"),
])
def test_bad_layout_knobs_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        get_config("unet-ds", base_width=8, depth=4, **options)


def test_configs_without_the_new_knobs_rebuild_the_earlier_layout():
    """Checkpoints written before fused_levels/space_to_depth existed load as plain U-Nets."""
    old = {"name": "unet-ds", "block": "ds", "in_channels": 1, "num_classes": 2, "widths": [16, 32, 64, 128, 256],
           "upsample": "bilinear", "attention": False, "expand_ratio": 4, "gate_ratio": 0.5, "layer_widths": []}
    cfg = ModelConfig.from_dict(old)
    assert (cfg.fused_levels, cfg.space_to_depth, cfg.size_multiple) == (0, 1, 16)
    assert count_parameters(build_model(cfg)) == 258_637  # the unet-ds default of edgeunet 0.1
