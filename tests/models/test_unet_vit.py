"""unet-vit, the Transformer U-Net: ReLU linear attention, its config knobs, pruning that keeps the heads, and the
INT8 rules that keep its ranges independent of the image size. The registry-driven tests (models, checkpoints,
pruning, ONNX parity at two sizes, INT8, runtime) run it like every other variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeunet.errors import UserError
from edgeunet.models import ModelConfig, build_model, create_model, get_config
from edgeunet.models.blocks import KeyValueSummary, LinearAttention, TransformerBlock
from edgeunet.models.cost import count_cost

SMALL = {"base_width": 8, "depth": 2}


def naive_attention(attn: LinearAttention, x: torch.Tensor) -> torch.Tensor:
    """The definition, position by position: out_n = sum_m v_m (k_m . q_n) / sum_m (k_m . q_n), per head (both sums
    taken as means, as the model does, which only matters for where ``eps`` bites)."""
    b, n = x.shape[0], x.shape[2] * x.shape[3]
    h, d = attn.heads, attn.head_dim
    q, k, v = (f(x).reshape(b, h, d, n) for f in (attn.q, attn.k, attn.v))
    weights = torch.einsum("bhdm,bhdn->bhmn", k, q) / n  # (B, heads, m, n): k_m . q_n / N, all >= 0 (ReLU)
    out = torch.einsum("bhdm,bhmn->bhdn", v, weights) / (weights.sum(2, keepdim=True) + attn.readout.eps)
    return attn.proj(out.reshape(b, h * d, *x.shape[2:]))


def test_linear_attention_is_the_normalised_relu_attention():
    torch.manual_seed(0)
    attn = LinearAttention(channels=12, dim=16, heads=4).eval()
    x = torch.randn(2, 12, 5, 7)
    torch.testing.assert_close(attn(x), naive_attention(attn, x), rtol=1e-4, atol=1e-5)


def test_key_value_summary_is_a_mean_over_positions():
    """Its range must not grow with the image: a tiled map (the same content 4 times) gives the same summary."""
    torch.manual_seed(0)
    v, k = torch.randn(1, 2, 3, 4, 4), torch.rand(1, 2, 3, 4, 4)
    tile = KeyValueSummary()(v.flatten(3), k.flatten(3))
    tiled = KeyValueSummary()(v.repeat(1, 1, 1, 2, 2).flatten(3), k.repeat(1, 1, 1, 2, 2).flatten(3))
    torch.testing.assert_close(tiled, tile)
    assert tile.shape == (1, 2, 4, 3)  # d + 1 rows: the last is the mean key, the normaliser's row
    torch.testing.assert_close(tile[:, :, -1], k.flatten(3).mean(-1))


def test_unet_vit_is_unet_ds_with_transformer_blocks_at_the_two_lowest_levels():
    vit, ds = create_model("unet-vit"), create_model("unet-ds")
    cfg = vit.cfg
    assert cfg.attention_levels == (2, 3) and cfg.widths == ds.cfg.widths and cfg.heads == 4
    blocks = {i: list(stage.transformer) for i, stage in enumerate(vit.encoder.stages) if hasattr(stage, "transformer")}
    assert list(blocks) == [2, 3] and all(len(b) == cfg.attention_blocks == 1 for b in blocks.values())
    assert all(isinstance(b, TransformerBlock) for level in blocks.values() for b in level)
    # no LayerNorm, GELU or softmax: BatchNorm and ReLU only, which fold and quantize
    kinds = {type(m) for m in vit.modules()}
    assert not kinds & {torch.nn.LayerNorm, torch.nn.GELU, torch.nn.Softmax, torch.nn.MultiheadAttention}
    # the budget: no more than twice unet-ds's MACs
    assert count_cost(vit, 256).macs <= 2 * count_cost(ds, 256).macs


@pytest.mark.parametrize("side", [(64, 64), (96, 160), (256, 128)])
def test_unet_vit_runs_at_any_valid_size(side):
    model = create_model("unet-vit").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, *side)).shape == (1, 2, *side)


def test_heads_levels_and_blocks_are_a_config_away():
    model = create_model("unet-vit", heads=8, attention_levels=(3,), attention_blocks=2)
    stages = model.encoder.stages
    assert not hasattr(stages[2], "transformer") and len(stages[3].transformer) == 2
    assert all(b.attn.heads == 8 and b.attn.head_dim == 192 // 8 for b in stages[3].transformer)
    assert {k for k in model.width_plan() if "ffn" in k} == {"enc3.ffn0", "enc3.ffn1"}


def test_other_depths_keep_the_blocks_at_the_lowest_levels():
    assert get_config("unet-vit", depth=2).attention_levels == (1, 2)
    assert get_config("unet-vit", depth=4).attention_levels == (3, 4)
    assert get_config("unet-vit", widths=(16, 32, 64), attention_levels=(2,)).attention_levels == (2,)


@pytest.mark.parametrize("options, words", [
    ({"heads": 5}, "5 heads do not divide"),
    ({"attention_levels": (4,)}, "between 0 and 3"),
    ({"attention_levels": ("x",)}, "must list encoder levels"),
    ({"attention_blocks": 0}, "at least 1"),
])
def test_bad_attention_options_name_the_fix(options, words):
    with pytest.raises(UserError, match=words):
        get_config("unet-vit", **options)


def test_attention_levels_need_edgeunets_own_encoder():
    with pytest.raises(UserError, match="own encoder"):
        get_config("unet-efficientnet-lite0", attention_levels=(3,))


def test_config_round_trip_and_older_configs_unchanged():
    cfg = get_config("unet-vit", attention_blocks=2, heads=2)
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.attention_levels == (2, 3)
    # the fields stay out of the JSON of every variant without Transformer blocks (earlier readers load it)
    assert not {"attention_levels", "attention_blocks", "heads"} & set(get_config("unet-ds").to_dict())


def test_3d_config_builds_transformer_blocks_on_volumes():
    model = create_model("unet-vit", spatial_dims=3, space_to_depth=1, upsample="trilinear", widths=(8, 16, 32),
                         attention_levels=(2,)).eval()
    assert isinstance(model.encoder.stages[2].transformer[0].attn.q.conv, torch.nn.Conv3d)
    with torch.no_grad():
        assert model(torch.randn(1, 1, 8, 16, 24)).shape == (1, 2, 8, 16, 24)


def test_pruning_keeps_the_heads_and_prunes_the_residual_and_feed_forward():
    from edgeunet.prune.pruner import prune_model

    torch.manual_seed(0)
    model = create_model("unet-vit", **SMALL).eval()
    heads_before = {n: (m.q.conv.out_channels, m.heads) for n, m in model.named_modules()
                    if isinstance(m, LinearAttention)}
    plan = model.width_plan()
    prune_model(model, 0.5, round_to=4, min_channels=4)
    after = model.width_plan()
    assert after["enc2.out"] < plan["enc2.out"] and after["enc2.ffn0"] < plan["enc2.ffn0"]
    heads_after = {n: (m.q.conv.out_channels, m.heads) for n, m in model.named_modules()
                   if isinstance(m, LinearAttention)}
    assert heads_after == heads_before
    rebuilt = build_model(model.current_config()).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(1, 1, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


def test_int8_keeps_summary_and_readout_in_float_and_holds_at_other_sizes(tmp_path):
    """Calibrated at 32 px, the INT8 file is as close to FP32 at 128 px: the key-value sums, whose range grows
    with the image, and the readout's division stay float, and the attention's tensors the quantizer sees have
    one range at every size."""
    pytest.importorskip("onnxruntime")
    import onnx
    import onnxruntime as ort

    from edgeunet.export.int8.candidates import float_attention_nodes, layer_groups
    from edgeunet.export.int8.quantize import prepare, quantize_int8
    from edgeunet.export.onnx import export_onnx

    torch.manual_seed(0)
    model = create_model("unet-vit", **SMALL)
    with torch.no_grad():  # BatchNorm statistics of real activations
        model.train()
        for _ in range(4):
            model(torch.randn(4, 1, 32, 32))
    model.eval()
    fp32 = export_onnx(model, tmp_path / "m.onnx", {"normalize": "none"}, ["bg", "fg"])
    prepared = prepare(fp32, tmp_path / "m.prep.onnx")
    kept = float_attention_nodes(onnx.load(str(prepared)))
    ops = {n.op_type for n in onnx.load(str(prepared)).graph.node if n.name in kept}
    assert {"MatMul", "Div"} <= ops and all("/summary/" in n or "/readout/" in n for n in kept)
    groups = layer_groups(onnx.load(str(prepared)))
    assert {"transformer.1", "transformer.2", "attention.1", "attention.2"} <= set(groups)
    assert groups["attention.2"] < groups["transformer.2"]
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 32, 32)).astype(np.float32) for _ in range(8)]
    settings = quantize_int8(prepared, tmp_path / "m.int8.onnx", calib, {"precision": "int8", "input_name": "images"})
    assert kept <= set(settings["nodes_to_exclude"])
    assert settings["qdq_rewrites"]["shape_before_dequantize"] > 0
    int8 = onnx.load(str(tmp_path / "m.int8.onnx"))
    producers = {o: n for n in int8.graph.node for o in n.output}
    shapes = [n for n in int8.graph.node if n.op_type == "Shape"]
    assert shapes and all(producers.get(n.input[0]) is None or producers[n.input[0]].op_type != "DequantizeLinear"
                          for n in shapes)
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32, tmp_path / "m.int8.onnx"))
    errors = {}
    for side in (32, 128):
        x = rng.standard_normal((1, 1, side, side)).astype(np.float32)
        y, y8 = a.run(None, {"images": x})[0], b.run(None, {"images": x})[0]
        errors[side] = float(np.abs(y - y8).mean() / np.abs(y).mean())
    assert errors[32] < 0.05 and errors[128] < 2 * errors[32] + 0.01, errors
