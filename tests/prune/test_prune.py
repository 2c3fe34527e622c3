"""Pruning: every variant prunes, rounds, reloads from config and exports; the run writes its report."""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from small_models import example_input, small_model

from edgeunet.checkpoint import make_checkpoint, model_from_checkpoint, save_checkpoint
from edgeunet.models import count_parameters, create_model, get_config, list_models
from edgeunet.prune import prune_checkpoint, prune_model, pruner, sensitivity
from edgeunet.prune.plan import kept_channels
from edgeunet.prune.target import find_ratio, parse_count
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

VARIANTS = [(name, {}) for name in list_models()] + [("unet", {"upsample": "transpose", "attention": True})]
IDS = [name + ("-transpose-attention" if options else "") for name, options in VARIANTS]
CLASS_NAMES = ["background", "nucleus"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions run faster on one thread, and the test machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(name: str, options: dict, seed: int = 0):
    torch.manual_seed(seed)
    # 3-D variants keep their full-resolution level as plain 3x3x3 convs, most of their parameters: at 16 channels
    # (the pruner's MIN_CHANNELS) it is kept whole, so they start at 32 to have half their parameters to lose.
    base_width = 32 if get_config(name).spatial_dims == 3 else 16
    model = small_model(name, base_width=base_width, depth=2, **options)
    for module in model.modules():  # trained-looking BatchNorm, so lost statistics would show
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.2, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def pruned():
    """Variant id -> (original model, model pruned at 0.5 with round_to 8)."""
    out = {}
    for (name, options), key in zip(VARIANTS, IDS):
        original = _model(name, options)
        out[key] = (original, prune_model(copy.deepcopy(original), 0.5, "l1", 8).eval())
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    model = _model("unet-ds", {})
    save_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, CLASS_NAMES, {}, train_args={"img_size": 32}), path)
    return path


@pytest.fixture(scope="module")
def run(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("prune") / "run"
    report = prune_checkpoint(
        checkpoint,
        out,
        ratio=0.5,
        finetune_epochs=1,
        samples_per_epoch=8,
        batch_size=4,
        img_size=64,
        device="cpu",
        progress=False,
    )
    return out, report


@pytest.mark.parametrize("key", IDS)
def test_pruning_at_half_removes_parameters(pruned, key):
    original, model = pruned[key]
    assert count_parameters(model) < 0.5 * count_parameters(original)


@pytest.mark.parametrize("key", IDS)
def test_pruned_widths_are_multiples_of_round_to(pruned, key):
    original, model = pruned[key]
    before, after = original.width_plan(), model.width_plan()
    changed = {k: v for k, v in after.items() if v != before[k]}
    assert changed and all(v % 8 == 0 for v in changed.values()), changed


@pytest.mark.parametrize("key", IDS)
def test_pruned_model_reloads_from_config_with_identical_outputs(pruned, key, tmp_path):
    _, model = pruned[key]
    save_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, CLASS_NAMES), tmp_path / "p.pt")
    rebuilt, _ = model_from_checkpoint(tmp_path / "p.pt")
    x = example_input(model, batch=2, seed=1)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), model(x), atol=1e-6, rtol=0)
    assert rebuilt.width_plan() == model.width_plan()


@pytest.mark.parametrize("key", IDS)
@pytest.mark.slow
def test_pruned_model_exports_to_onnx_with_parity(pruned, key, tmp_path):
    import onnxruntime as ort

    from edgeunet.export.onnx import export_onnx

    _, model = pruned[key]
    path = export_onnx(copy.deepcopy(model), tmp_path / "m.onnx", DEFAULT_PREPROCESSING, CLASS_NAMES)
    x = example_input(model, seed=2).numpy()
    (onnx_logits,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4, rtol=1e-4)


def test_attention_gate_does_not_block_pruning_the_skip(pruned):
    original, model = pruned["unet-attention"]
    assert model.width_plan()["enc1.out"] == original.width_plan()["enc1.out"] // 2
    assert model.decoder.stages[1].gate.psi[1].out_channels == 1


def _silence_half(model) -> None:
    """Zeroes half the channels of every width at their source (conv, bias, BatchNorm affine), so they carry nothing."""
    parents = {id(child): parent for parent in model.modules() for child in parent.children()}
    generator = torch.Generator().manual_seed(3)
    for name, conv in pruner.width_owners(model).items():
        dead = torch.randperm(conv.out_channels, generator=generator)[: conv.out_channels // 2]
        sources = [conv] + ([parents[id(parents[id(conv)])].gating.conv] if name.endswith(".gate") else [])
        for source in sources:
            if isinstance(source, torch.nn.ConvTranspose2d):
                source.weight.data[:, dead] = 0
            else:
                source.weight.data[dead] = 0
            if source.bias is not None:
                source.bias.data[dead] = 0
            norm = getattr(parents[id(source)], "norm", None)
            if norm is not None:
                norm.weight.data[dead], norm.bias.data[dead] = 0, 0


def _source_magnitude(group):
    """Importance = weight magnitude of the group's root conv: the silenced channels score 0."""
    conv = group[0].dep.target.module
    weight = (
        conv.weight.detach().transpose(0, 1) if isinstance(conv, torch.nn.ConvTranspose2d) else conv.weight.detach()
    )
    return weight.abs().flatten(1).sum(1)


@pytest.mark.parametrize("options", [{}, {"attention": True}], ids=["unet", "unet-transpose-attention"])
def test_pruning_silent_channels_leaves_outputs_unchanged(options, monkeypatch):
    # Plain conv blocks: a silenced channel is exactly zero downstream, so any misaligned skip
    # concatenation or attention-gate coupling would change the logits.
    model = _model("unet", options)
    _silence_half(model)
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = model(x)
    monkeypatch.setattr(pruner, "make_importance", lambda name: _source_magnitude)
    prune_model(model, 0.5, "l1", 8, min_channels=8)
    assert all(width == 8 for name, width in model.width_plan().items() if name.startswith("enc0"))
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5, rtol=0)


def test_batchnorm_statistics_follow_the_kept_channels(pruned):
    original, model = pruned["unet"]
    kept = model.encoder.stages[1].unit1.norm.running_mean
    assert kept.shape == (16,) and set(kept.tolist()) <= set(
        original.encoder.stages[1].unit1.norm.running_mean.tolist()
    )


def test_inverted_residual_does_not_gain_a_skip_when_widths_meet():
    # enc0 keeps 16 (the floor) and 0.6 of enc1's 24 rounds to 16: enc1's first unit would map 16 -> 16
    # and gain a residual add when rebuilt from its config.
    model = create_model("unet-mobile", widths=(16, 24, 32), fused_levels=0, space_to_depth=1).eval()
    prune_model(model, 0.6, "l1", 8)
    rebuilt, _ = model_from_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, CLASS_NAMES))
    assert [s.unit1.use_residual for s in rebuilt.encoder.stages] == [
        s.unit1.use_residual for s in model.encoder.stages
    ]
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), model(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("importance", ["l2", "taylor", "bn-scale"])
def test_every_importance_prunes(importance):
    model = _model("unet-ds", {"upsample": "transpose"})
    batches = [(torch.randn(2, 1, 32, 32), torch.randint(0, 2, (2, 32, 32)))]
    prune_model(model, 0.5, importance, 8, calib_batches=batches)
    assert model.width_plan()["enc1.out"] == 16


def test_steps_reach_the_same_widths_as_one_step():
    one = prune_model(_model("unet-ds", {}), 0.5, "l1", 8)
    two = prune_model(_model("unet-ds", {}), 0.5, "l1", 8, steps=2)
    assert two.width_plan() == one.width_plan()


def test_ratio_is_the_fraction_of_channels_removed():
    assert [kept_channels(64, 0.5, 8), kept_channels(24, 0.5, 8, min_channels=1), kept_channels(64, 0.0, 8)] == [
        32,
        16,
        64,
    ]


def test_narrow_layers_keep_min_channels():
    assert [kept_channels(16, 0.5, 8), kept_channels(64, 0.9, 8), kept_channels(16, 0.5, 8, min_channels=1)] == [
        16,
        16,
        8,
    ]


def test_bad_importance_names_the_choices():
    with pytest.raises(ValueError, match="unknown importance 'l3': use one of l1, l2, taylor, bn-scale"):
        prune_model(_model("unet-ds", {}), 0.5, "l3")


def test_bad_ratio_names_the_range():
    with pytest.raises(ValueError, match=r"use a value in \[0, 1\)"):
        prune_model(_model("unet-ds", {}), 1.5)


def test_taylor_without_batches_names_the_fix():
    with pytest.raises(ValueError, match="pass calib_batches or use l1"):
        prune_model(_model("unet-ds", {}), 0.5, "taylor")


def test_parse_count_reads_suffixes():
    assert [parse_count(t) for t in ("150000", "150k", "1.5M", "0.2G", "2e6")] == [
        150000,
        150000,
        1500000,
        200000000,
        2000000,
    ]


def test_parse_count_rejects_expressions_without_evaluating():
    with pytest.raises(ValueError, match="is not a count: write e.g. 150000, 150k"):
        parse_count("__import__('os').getcwd()")


@pytest.mark.slow
def test_target_params_is_reached_at_or_below():
    model = _model("unet-ds", {})
    target = count_parameters(model) // 2
    ratio = find_ratio(model, 32, 8, target_params=target)
    assert count_parameters(prune_model(model, ratio, "l1", 8)) <= target


def test_unreachable_target_gives_the_reachable_count():
    with pytest.raises(ValueError, match="out of reach: ratio 0.95 leaves"):
        find_ratio(_model("unet-ds", {}), 32, 8, target_params=10)


def test_prune_checkpoint_writes_trainer_outputs_and_report(run):
    out, _ = run
    assert all((out / name).is_file() for name in ("best.pt", "last.pt", "metrics.jsonl", "prune.json"))


def test_prune_report_records_sizes_widths_and_dice(run):
    out, report = run
    doc = json.loads((out / "prune.json").read_text())
    assert doc["parameters"]["after"] < doc["parameters"]["before"] and doc["macs"]["after"] < doc["macs"]["before"]
    assert doc["widths"]["before"]["enc2.out"] == 64 and doc["widths"]["after"]["enc2.out"] == 32
    assert set(doc["dice"]) == {"before", "pruned", "finetuned"} and doc["dice"]["finetuned"] is not None
    assert (
        doc["settings"]["ratio"] == 0.5
        and doc["time_s"]["total"] > 0
        and doc == json.loads(json.dumps(report, default=str))
    )


def test_pruned_checkpoint_rebuilds_from_config_and_records_pruning(run):
    out, report = run
    model, ckpt = model_from_checkpoint(out / "best.pt")
    assert model.width_plan() == report["widths"]["after"]
    assert ckpt["prune"]["ratio"] == 0.5 and ckpt["prune"]["parameters_before"] == report["parameters"]["before"]


@pytest.mark.slow
def test_steps_fine_tune_in_between_with_taylor_importance(checkpoint, tmp_path):
    report = prune_checkpoint(
        checkpoint,
        tmp_path,
        ratio=0.5,
        importance="taylor",
        steps=2,
        finetune_epochs=1,
        min_channels=8,
        samples_per_epoch=8,
        batch_size=4,
        device="cpu",
        progress=False,
    )
    assert [row["ratio"] for row in report["steps"]] == [0.25, 0.5] and "dice_finetuned" in report["steps"][0]
    assert (tmp_path / "step1" / "best.pt").is_file() and (tmp_path / "best.pt").is_file()


@pytest.mark.slow
def test_sensitivity_reports_every_stage(checkpoint, tmp_path):
    rows = sensitivity(checkpoint, "synthetic", 0.5, out=tmp_path, min_channels=8, samples_per_epoch=8, device="cpu")
    assert [r["stage"] for r in rows] == ["enc0", "enc1", "enc2", "dec0", "dec1"]
    assert all(r["parameters_removed"] > 0 and r["dice_drop"] is not None for r in rows)
    assert len(json.loads((tmp_path / "sensitivity.json").read_text())["stages"]) == 5


def _cli(argv: list[str]) -> int:
    from edgeunet.cli import prune as prune_cli

    parser = argparse.ArgumentParser(prog="edgeunet")
    prune_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_bad_importance_lists_the_choices(capsys, checkpoint, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        _cli(["prune", str(checkpoint), "--importance", "l3", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'l3'" in err and all(name in err for name in ("l1", "l2", "taylor", "bn-scale"))


@pytest.mark.slow
def test_cli_target_params_prints_the_summary(capsys, checkpoint, tmp_path):
    before = count_parameters(_model("unet-ds", {}))
    rc = _cli(
        [
            "prune",
            str(checkpoint),
            "--target-params",
            "30k",
            "--finetune-epochs",
            "0",
            "--samples-per-epoch",
            "8",
            "--device",
            "cpu",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0 and f"parameters {before:,} -> " in printed
    assert json.loads((tmp_path / "prune.json").read_text())["parameters"]["after"] <= 30_000


def test_cli_sensitivity_rejects_a_target(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="drop --target-macs/--target-params"):
        _cli(["prune", str(checkpoint), "--sensitivity", "--target-params", "9k", "--out", str(tmp_path)])


@pytest.mark.slow
def test_prune_command_runs_as_a_subprocess(checkpoint, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeunet",
            "prune",
            str(checkpoint),
            "--ratio",
            "0.25",
            "--finetune-epochs",
            "0",
            "--samples-per-epoch",
            "8",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "prune.json").read_text())["ratio"] == 0.25


def test_prune_refuses_an_out_holding_a_run_unless_exist_ok(checkpoint, run):
    from edgeunet.errors import UserError

    out, _ = run
    before = (out / "best.pt").read_bytes()
    options = dict(ratio=0.25, finetune_epochs=0, samples_per_epoch=8, batch_size=4, device="cpu", progress=False)
    with pytest.raises(UserError, match=r"already holds a run .*: overwrite it with --exist-ok, or choose another"):
        prune_checkpoint(checkpoint, out, **options)
    assert (out / "best.pt").read_bytes() == before
    report = prune_checkpoint(checkpoint, out, exist_ok=True, **options)
    assert report["ratio"] == 0.25 and json.loads((out / "prune.json").read_text())["ratio"] == 0.25


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("ratio", 1.5, r"--ratio 1.5 .* \[0, 1\)"),
        ("ratio", -0.1, r"--ratio -0.1 .* \[0, 1\)"),
        ("finetune_epochs", -1, "--finetune-epochs must be 0 or more"),
        ("steps", 0, "--steps must be at least 1"),
        ("lr", float("nan"), "--lr must be a positive finite number"),
        ("importance", "l3", "use one of l1, l2"),
        ("target_params", "lots", "--target-params 'lots' is not a count"),
    ],
)
def test_prune_settings_name_the_flag(field, value, message):
    from edgeunet.errors import UserError
    from edgeunet.prune import PruneSettings

    with pytest.raises(UserError, match=message):
        PruneSettings(**{field: value})


def test_prune_package_reexports_the_real_functions():
    import inspect

    import edgeunet.prune as prune_package
    from edgeunet.prune import run as run_module
    from edgeunet.prune import stage_sensitivity

    assert prune_package.prune_model is pruner.prune_model
    assert prune_package.prune_checkpoint is run_module.prune_checkpoint
    assert prune_package.sensitivity is stage_sensitivity.sensitivity
    assert "min_channels" in inspect.signature(prune_package.prune_model).parameters
