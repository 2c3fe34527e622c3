"""3-D U-Nets: the spatial_dims and pool knobs, the registered 3-D variants, ONNX export with dynamic
D, H and W. The registry-driven tests in test_models.py run the 3-D variants too."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from edgeunet.errors import UserError
from edgeunet.models import ModelConfig, build_model, count_parameters, create_model, get_config, list_models
from edgeunet.models.cost import count_cost

TINY = {"base_width": 4, "depth": 2}
ANISOTROPIC = ((1, 2, 2), (2, 2, 2))  # thick slices: the first pooling keeps the slice count


def convs(model, kind=torch.nn.Conv3d):
    return [m for m in model.modules() if isinstance(m, kind)]


def test_list_models_selects_by_spatial_dims():
    assert list_models(3) == ["unet3d", "unet3d-ds"]
    assert not set(list_models(2)) & set(list_models(3))
    assert list_models() == list_models(None) == sorted(list_models(2) + list_models(3))


def test_unet3d_is_the_reference_3d_unet():
    model = create_model("unet3d")
    assert model.cfg.widths == (32, 64, 128, 256) and model.cfg.size_multiple == 8
    stage_convs = [c for c in convs(model) if c is not model.head]
    assert stage_convs and all(c.kernel_size == (3, 3, 3) and c.groups == 1 for c in stage_convs)
    ups = convs(model, torch.nn.ConvTranspose3d)
    assert len(ups) == 3 and all(u.kernel_size == (2, 2, 2) and u.stride == (2, 2, 2) for u in ups)
    assert 5.5e6 <= count_parameters(model) <= 5.7e6
    assert not convs(model, torch.nn.Conv2d) and not convs(model, torch.nn.BatchNorm2d)


def test_unet3d_ds_is_depthwise_separable_below_its_fused_levels():
    model = create_model("unet3d-ds")
    fused = model.cfg.fused_levels
    for level, stage in enumerate(model.encoder.stages):
        depthwise = [c for c in convs(stage) if c.groups > 1]
        assert bool(depthwise) == (level >= fused), level
        assert all(c.groups == c.in_channels == c.out_channels and c.kernel_size == (3, 3, 3) for c in depthwise)
    assert count_parameters(model) < count_parameters(create_model("unet3d")) / 10


@pytest.mark.parametrize("block", ["conv", "ds", "ir"])
@pytest.mark.parametrize("upsample", ["transpose", "trilinear", "nearest"])
@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.slow
def test_3d_knobs_combine_on_every_block(block, upsample, attention):
    model = create_model("unet3d", block=block, upsample=upsample, attention=attention, fused_levels=1, **TINY)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 1, 8, 12, 4)).shape == (1, 2, 8, 12, 4)


@pytest.mark.parametrize("upsample", ["transpose", "trilinear"])
@pytest.mark.slow
def test_anisotropic_pool_keeps_the_slice_axis_and_restores_the_input_size(upsample):
    model = create_model("unet3d-ds", pool=ANISOTROPIC, upsample=upsample, num_classes=3, **TINY).eval()
    assert model.cfg.size_multiples == (2, 4, 4) and model.cfg.size_multiple == 4
    x = torch.randn(1, 1, 6, 12, 20)  # 6 slices: a multiple of 2, not of 4
    with torch.no_grad():
        skips = model.encoder(x)
        assert [tuple(s.shape[2:]) for s in skips] == [(6, 12, 20), (6, 6, 10), (3, 3, 5)]
        assert model(x).shape == (1, 3, 6, 12, 20)


def test_anisotropic_size_error_names_the_per_axis_multiples():
    model = create_model("unet3d", pool=ANISOTROPIC, **TINY)
    with pytest.raises(ValueError, match=r"input size 5x12x9 is not a multiple of 2x4x4.*pad or resize to 6x12x8"):
        model(torch.randn(1, 1, 5, 12, 9))


def test_wrong_rank_names_the_volume_layout():
    with pytest.raises(ValueError, match=r"expected a \(B, C, D, H, W\) tensor"):
        create_model("unet3d", **TINY)(torch.randn(1, 1, 16, 16))


def test_pool_of_twos_is_the_default_and_round_trips_through_json():
    assert get_config("unet3d", pool=((2, 2, 2),) * 3) == get_config("unet3d")
    cfg = get_config("unet3d-ds", pool=ANISOTROPIC, **TINY)
    d = json.loads(cfg.to_json())
    assert d["spatial_dims"] == 3 and d["pool"] == [[1, 2, 2], [2, 2, 2]]
    assert ModelConfig.from_dict(d) == cfg


def test_2d_configs_keep_the_keys_of_earlier_versions():
    """2-D configs leave the 3-D fields out, so checkpoints and ONNX metadata read as before (also by
    versions that reject unknown keys), and configs without them load as 2-D."""
    old_keys = {"name", "block", "in_channels", "num_classes", "widths", "upsample", "attention", "expand_ratio",
                "gate_ratio", "fused_levels", "space_to_depth", "layer_widths"}
    for name in list_models(2):
        cfg = get_config(name)
        d = cfg.to_dict()
        # up_act (BN + ReLU on the up-sampling conv) appears only where it is on: a layout no earlier version built
        # encoder: only the variants on a pretrained encoder, which no earlier version built
        encoder = {"encoder"} if cfg.encoder else set()
        # attention_levels: only the Transformer U-Net (its blocks and heads are at their defaults)
        encoder |= {"attention_levels"} if cfg.attention_levels else set()
        assert set(d) == old_keys | encoder | ({"up_act"} if cfg.up_act else set())
        assert ModelConfig.from_dict(d).spatial_dims == 2
        assert set(get_config(name, up_act=False).to_dict()) == old_keys | encoder
    assert "pool" in get_config("unet-ds", pool=((1, 2),) * 3).to_dict()


@pytest.mark.parametrize("options, message", [
    ({"spatial_dims": 4}, "spatial_dims must be 2 .* or 3"),
    ({"upsample": "bilinear"}, "'bilinear' is for 2-D models: use 'trilinear'"),
    ({"space_to_depth": 2}, "space_to_depth=2 is 2-D only"),
    ({"pool": ((1, 2, 2),)}, r"give 3 factors for each of the 2 poolings .*\(\(2, 2, 2\), \(2, 2, 2\)\)"),
    ({"pool": ((1, 2), (2, 2))}, "give 3 factors for each of the 2 poolings"),
    ({"pool": ((3, 2, 2), (2, 2, 2))}, "pool factors must be 1 .* or 2"),
    ({"pool": (1, 2)}, "one tuple of per-axis factors per level"),
])
def test_bad_3d_knobs_are_rejected(options, message):
    with pytest.raises(UserError, match=message):
        get_config("unet3d", **TINY, **options)


def test_trilinear_is_rejected_in_2d():
    with pytest.raises(UserError, match="'trilinear' is for 3-D models: use 'bilinear'"):
        get_config("unet-ds", upsample="trilinear")


@pytest.mark.slow
def test_count_cost_counts_a_cube_for_3d_models():
    model = create_model("unet3d-ds", **TINY)
    small, large = count_cost(model, 16), count_cost(model, 33)  # 33 rounds down to 32
    assert (small.size, large.size) == (16, 32)
    assert small.parameters == large.parameters == count_parameters(model)
    assert large.macs == 8 * small.macs  # every counted layer scales with the voxel count


def _export(model, side: int) -> bytes:
    axes = {0: "batch", 2: "depth", 3: "height", 4: "width"}
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, model.cfg.in_channels, side, side, side),), buffer, dynamo=False,
                          input_names=["images"], output_names=["logits"], opset_version=17,
                          dynamic_axes={"images": axes, "logits": axes})
    return buffer.getvalue()


@pytest.mark.parametrize("name", list_models(3))
@pytest.mark.slow
def test_onnx_export_matches_pytorch_at_other_sizes(name):
    """Exported with dynamic D, H and W at 8^3, the graph runs other sizes and batch 2 like PyTorch."""
    from edgeunet.runtime.session import ort_session

    torch.manual_seed(0)
    model = create_model(name, num_classes=3, **TINY).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so folding them is checked too
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    session = ort_session(_export(model, 8), threads=1)
    for shape in [(1, 1, 8, 8, 8), (2, 1, 4, 12, 20)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"images": x.numpy()})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_anisotropic_model_exports_and_matches():
    from edgeunet.runtime.session import ort_session

    torch.manual_seed(0)
    model = create_model("unet3d-ds", pool=ANISOTROPIC, upsample="transpose", **TINY).eval()
    session = ort_session(_export(model, 8), threads=1)
    x = torch.randn(1, 1, 6, 8, 12)
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_3d_model_rebuilds_from_its_config_with_pruned_widths():
    cfg = get_config("unet3d-ds", layer_widths=(("enc1.mid", 4), ("dec0.out", 4)), **TINY)
    model = build_model(cfg)
    assert model.width_plan()["enc1.mid"] == 4 and model.current_config() == cfg
