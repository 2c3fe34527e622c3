"""Registry-driven model tests: every variant in list_models() enters each test."""

from __future__ import annotations

import pytest
import torch

from edgeunet.models import ModelConfig, build_model, count_parameters, create_model, get_config, list_models

# Small widths keep the suite fast; the architecture (block, upsample, attention) is the variant's own.
SMALL = {"base_width": 8, "depth": 3}


def small(name: str, **kw):
    return create_model(name, **{**SMALL, **kw})


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("size", [(32, 32), (40, 56), (64, 24)])
def test_forward_shape_over_sizes(name, size):
    model = small(name, in_channels=3, num_classes=4).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 4, *size)


@pytest.mark.parametrize("name", list_models())
def test_every_parameter_gets_a_gradient(name):
    model = small(name)
    model(torch.randn(2, 1, 32, 32)).logsumexp(1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not missing


@pytest.mark.parametrize("name", list_models())
def test_config_round_trip_rebuilds_identical_model(name):
    torch.manual_seed(0)
    model = small(name, num_classes=3).eval()
    cfg = ModelConfig.from_dict(model.cfg.to_dict())
    assert cfg == model.cfg
    clone = build_model(cfg).eval()
    clone.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), clone(x))


@pytest.mark.parametrize("name", list_models())
def test_size_not_multiple_names_nearest_valid_size(name):
    model = small(name)  # depth 3 -> multiple of 8
    with pytest.raises(ValueError, match=r"not a multiple of 8.*pad or resize to 32x48"):
        model(torch.randn(1, 1, 30, 45))


@pytest.mark.parametrize("name", list_models())
def test_wrong_channel_count_is_named(name):
    with pytest.raises(ValueError, match="3 channels but the model takes 1"):
        small(name)(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
@pytest.mark.parametrize("attention", [False, True])
def test_knobs_combine_on_every_block(upsample, attention):
    for name in list_models():
        model = small(name, upsample=upsample, attention=attention)
        assert model.cfg.upsample == upsample and model.cfg.attention == attention
        assert model(torch.randn(1, 1, 16, 16)).shape == (1, 2, 16, 16)


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
