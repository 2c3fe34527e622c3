"""FP32/FP16 ONNX export: parity with PyTorch over every variant, metadata, dynamic shapes, atomic output."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from small_models import small_model

from edgeunet.checkpoint import make_checkpoint, save_checkpoint
from edgeunet.export import ExportOptions, ParityError, export_model, export_onnx, pipeline, read_metadata
from edgeunet.export.fp16 import convert_fp16
from edgeunet.export.onnx import model_metadata
from edgeunet.export.samples import InputSpec, fit_to_multiple, load_inputs
from edgeunet.export.verify import onnx_logits, parity, torch_logits
from edgeunet.models import list_models
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

CLASSES = ["background", "cell"]


def tiny(name: str):
    torch.manual_seed(0)
    model = small_model(name).eval()
    # Random BatchNorm statistics make the logits depend on every layer (fresh BN is the identity).
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every registered variant exported once: name -> (model, onnx path)."""
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    for name in list_models():
        model = tiny(name)
        out[name] = (model, export_onnx(model, folder / f"{name}.onnx", DEFAULT_PREPROCESSING, CLASSES))
    return out


@pytest.fixture(scope="module")
def images():
    return load_inputs("synthetic", 4, 64, "val", InputSpec(DEFAULT_PREPROCESSING, 1, 4)).images


@pytest.fixture(scope="module")
def volumes():
    """Model-ready synthetic volumes for the 3-D variants."""
    return load_inputs("synthetic", 2, 32, "val",
                       InputSpec(DEFAULT_PREPROCESSING, 1, 4, spatial_dims=3, multiples=(4, 4, 4))).images


@pytest.fixture()
def checkpoint(tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint(make_checkpoint(tiny("unet-ds"), DEFAULT_PREPROCESSING, CLASSES, train_args={"img_size": 32}), path)
    return path


@pytest.mark.parametrize("name", list_models())
def test_onnx_matches_pytorch(exported, images, volumes, name):
    model, path = exported[name]
    images = volumes if model.current_config().spatial_dims == 3 else images
    figures = parity(torch_logits(model, images), onnx_logits(path, images))
    assert figures["argmax_agreement"] >= 0.9999
    assert figures["max_abs_diff"] < 1e-3


@pytest.mark.parametrize("name", list_models())
def test_onnx_runs_at_two_sizes_and_batch_two(exported, name):
    model, path = exported[name]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    sizes = ((32, 48), (64, 64)) if model.current_config().spatial_dims == 2 else ((16, 24, 32), (32, 32, 32))
    for size in sizes:
        x = np.random.default_rng(0).random((2, 1, *size), dtype=np.float32)
        logits = session.run(None, {"images": x})[0]
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        assert logits.shape == (2, 2, *size)
        assert np.abs(logits - expected).max() < 1e-3


def test_onnx_carries_metadata_and_passes_full_check(exported):
    _, path = exported["unet"]
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    meta = read_metadata(path)
    assert (meta.in_channels, meta.num_classes, meta.size_multiple, meta.precision) == (1, 2, 4, "fp32")
    assert meta.class_names == CLASSES and meta.preprocessing == DEFAULT_PREPROCESSING
    assert meta.model_config["widths"] == [8, 16, 32]


@pytest.mark.slow
def test_static_img_size_fixes_height_and_width(tmp_path):
    path = export_onnx(tiny("unet-ds"), tmp_path / "m.onnx", DEFAULT_PREPROCESSING, CLASSES, img_size=32)
    dims = [d.dim_value or d.dim_param for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [1, 32, 32] and isinstance(dims[0], str)


def test_img_size_not_a_multiple_names_valid_sizes(tmp_path):
    with pytest.raises(ValueError, match="not a multiple of 8.*use 32 or 40"):
        export_onnx(tiny("unet-ds"), tmp_path / "m.onnx", DEFAULT_PREPROCESSING, CLASSES, img_size=35)


def test_fp16_file_has_fp16_weights_and_float32_io(exported, images, tmp_path):
    model, path = exported["unet-attention"]
    props = model_metadata(model.current_config().to_dict(), DEFAULT_PREPROCESSING, CLASSES, "fp16").to_props()
    half = convert_fp16(path, tmp_path / "model.fp16.onnx", props)
    proto = onnx.load(str(half))
    float_weights = [
        t for t in proto.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    ]
    assert sum(t.data_type == onnx.TensorProto.FLOAT16 for t in float_weights) >= 0.9 * len(float_weights)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert read_metadata(half).precision == "fp16"
    assert parity(torch_logits(model, images), onnx_logits(half, images))["argmax_agreement"] >= 0.995


def test_fit_to_multiple_crops_center_and_pads_short_sides():
    image, mask = np.arange(2 * 10 * 3, dtype=np.float32).reshape(2, 10, 3), np.ones((10, 3), dtype=np.int64)
    out, out_mask = fit_to_multiple(image, mask, 4)
    assert out.shape == (2, 8, 4) and out_mask.shape == (8, 4)
    assert np.array_equal(out[:, :, :3], image[:, 1:9, :])  # rows 1..8 kept, one column padded after
    assert np.array_equal(out[:, :, 3], image[:, 1:9, 2])  # edge padding
    assert out_mask[:, 3].sum() == 0 and out_mask[:, :3].all()


@pytest.mark.slow
def test_export_model_writes_report_with_hashes(checkpoint, tmp_path):
    report = export_model(checkpoint, tmp_path / "out", ExportOptions(fp16=True, calib_images=2), progress=False)
    saved = json.loads((tmp_path / "out" / "export.json").read_text())
    assert saved == report
    files = {a["file"]: a for a in report["artifacts"]}
    assert set(files) == {"model.onnx", "model.fp16.onnx"}
    assert files["model.onnx"]["opset"] == 17 and len(files["model.onnx"]["sha256"]) == 64
    assert files["model.fp16.onnx"]["parity"]["argmax_agreement"] >= 0.995
    assert {"torch", "onnx", "onnxruntime", "onnxslim", "python", "edgeunet"} <= set(report["toolchain"])
    assert not list(tmp_path.glob(".out.*"))


@pytest.mark.slow
def test_failed_parity_keeps_earlier_export(checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "out"
    export_model(checkpoint, out, ExportOptions(calib_images=1), progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def failing(precision, figures, min_agreement=None):
        raise ParityError("simulated parity failure")

    monkeypatch.setattr(pipeline, "check_parity", failing)
    with pytest.raises(ParityError, match="simulated"):
        export_model(checkpoint, out, ExportOptions(fp16=True, calib_images=1), progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".out.*"))


def test_out_dir_with_foreign_files_is_refused(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="holds files an export does not write.*best.pt"):
        export_model(checkpoint, tmp_path, ExportOptions(calib_images=1), progress=False)


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="checks the message shown when TensorRT is absent"
)
def test_engine_without_tensorrt_names_the_extra(checkpoint, tmp_path):
    with pytest.raises(ImportError, match=r"pip install 'edgeunet\[trt\]'.*target device"):
        export_model(checkpoint, tmp_path / "out", ExportOptions(engine=True), progress=False)


@pytest.mark.slow
def test_cli_export_subprocess(checkpoint, tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "edgeunet",
        "export",
        str(checkpoint),
        "--out",
        str(out),
        "--calib-images",
        "2",
        "--no-progress",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "model.onnx" in result.stdout and "argmax agreement" in result.stdout
    assert (out / "model.onnx").is_file() and (out / "export.json").is_file()


def _export_cli(argv: list[str]) -> int:
    """Runs the export command through its own parser (other commands may be missing while developing)."""
    import argparse

    from edgeunet.cli import export as export_cli

    parser = argparse.ArgumentParser(prog="edgeunet")
    export_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


# --- Disjoint data roles: calibration, search, verification ---------------------------------------------------


def _folder(path, n: int, size: int = 32, seed: int = 0):
    from edgeunet.data.synthetic import write_synthetic

    return write_synthetic(path, n=n, size=size, seed=seed)


def _plan(**options):
    from edgeunet.export.roles import plan_roles

    return plan_roles(ExportOptions(**options))


def _stems(plan) -> dict[str, list[str]]:
    return {role: plan.stems(role) for role in ("calibration", "search", "verification")}


def test_one_folder_is_dealt_into_three_disjoint_roles_by_seed(tmp_path):
    folder = _folder(tmp_path / "cells", 24)
    plan = _plan(int8=True, calib=str(folder))
    stems = _stems(plan)
    assert [len(v) for v in stems.values()] == [8, 8, 8]
    assert (
        set(stems["calibration"]).isdisjoint(stems["search"])
        and set(stems["search"]).isdisjoint(stems["verification"])
        and set(stems["calibration"]).isdisjoint(stems["verification"])
    )
    assert plan.summary() == "one folder: 24 files -> 8 calibration, 8 search, 8 verification (seed 0)"
    assert _stems(_plan(int8=True, calib=str(folder))) == stems  # deterministic
    assert _stems(_plan(int8=True, calib=str(folder), seed=1)) != stems


def test_counts_cap_a_role_without_moving_images_between_roles(tmp_path):
    folder = _folder(tmp_path / "cells", 30)
    full = _stems(_plan(calib=str(folder)))
    capped = _stems(_plan(calib=str(folder), calib_images=3, search_images=2))
    assert capped["verification"] == full["verification"]
    assert set(capped["calibration"]) <= set(full["calibration"]) and len(capped["calibration"]) == 3
    assert set(capped["search"]) <= set(full["search"]) and len(capped["search"]) == 2


def test_train_val_folder_calibrates_on_train_and_halves_val(tmp_path):
    _folder(tmp_path / "ds" / "train", 6)
    _folder(tmp_path / "ds" / "val", 4, seed=1)
    plan = _plan(int8=True, calib=str(tmp_path / "ds"))
    assert plan.layout == "train/val folder"
    assert plan.roles["calibration"].source.endswith("train") and plan.roles["calibration"].count == 6
    assert plan.roles["search"].source.endswith("val") and plan.roles["verification"].source.endswith("val")
    assert len(plan.stems("search")) == 2 and set(plan.stems("search")).isdisjoint(plan.stems("verification"))


def test_val_folder_gives_search_and_verification(tmp_path):
    calib, val = _folder(tmp_path / "calib", 5), _folder(tmp_path / "val", 6, seed=1)
    plan = _plan(int8=True, calib=str(calib), val=str(val))
    assert plan.roles["calibration"].source == str(calib) and plan.roles["calibration"].count == 5
    assert plan.roles["verification"].source == str(val) and plan.roles["verification"].count == 3
    assert "--" not in plan.summary() and "6 files -> 3 search, 3 verification" in plan.summary()


def test_roles_the_export_does_not_use_leave_their_images_to_verification(tmp_path):
    """No search (FP32 and FP16 only, or --no-int8-search): all held-out images verify, not half of them."""
    from edgeunet.export.pipeline import used_roles
    from edgeunet.export.roles import plan_roles

    calib, val = _folder(tmp_path / "calib", 5), _folder(tmp_path / "val", 6, seed=1)
    options = ExportOptions(int8=True, int8_search=False, calib=str(calib), val=str(val))
    plan = plan_roles(options, used=used_roles(options))
    assert [len(v) for v in _stems(plan).values()] == [5, 0, 6]
    assert "6 files -> 0 search (unused), 6 verification" in plan.summary(used_roles(options))
    one = _folder(tmp_path / "one", 24)
    options = ExportOptions(calib=str(one))  # FP32 only: neither calibration nor search
    assert [len(v) for v in _stems(plan_roles(options, used=used_roles(options))).values()] == [0, 0, 24]
    options = ExportOptions(int8=True, int8_search=False, calib=str(one))
    halves = _stems(plan_roles(options, used=used_roles(options)))
    assert [len(v) for v in halves.values()] == [12, 0, 12] and set(halves["calibration"]).isdisjoint(
        halves["verification"])


def test_same_folder_as_calib_and_val_is_split_as_one_folder(tmp_path):
    folder = _folder(tmp_path / "cells", 9)
    plan = _plan(int8=True, calib=str(folder), val=str(folder))
    assert plan.layout == "one folder" and [len(v) for v in _stems(plan).values()] == [3, 3, 3]


def test_synthetic_roles_use_distinct_seeds():
    from edgeunet.data.sources import SPLIT_SEED_OFFSETS

    plan = _plan(int8=True)
    assert {plan.stems(r)[0] for r in ("calibration", "search", "verification")} == {
        "synthetic-calib-0000",
        "synthetic-search-0000",
        "synthetic-val-0000",
    }
    assert len({SPLIT_SEED_OFFSETS[s] for s in ("calib", "search", "val")}) == 3


def test_folder_too_small_for_three_roles_names_the_fix(tmp_path):
    folder = _folder(tmp_path / "cells", 2)
    with pytest.raises(
        ValueError,
        match=r"2 image/mask pair\(s\): too few for disjoint calibration, search and "
        r"verification images \(3 at least\): add images, or give .*--val DIR",
    ):
        _plan(calib=str(folder))


@pytest.mark.slow
def test_export_json_records_three_disjoint_roles_of_a_folder(checkpoint, tmp_path):
    folder = _folder(tmp_path / "cells", 12)
    options = ExportOptions(int8=True, calib=str(folder), search_time=1.0, search_img_size=32)
    report = export_model(checkpoint, tmp_path / "out", options, progress=False)
    data = json.loads((tmp_path / "out" / "export.json").read_text())["data"]
    assert data == report["data"] and data["seed"] == 0 and data["layout"] == "one folder"
    roles = {role: set(data[role]) for role in ("calibration", "search", "verification")}
    assert all(len(stems) == 4 for stems in roles.values()) and data["counts"]["verification"] == 4
    assert not (
        roles["calibration"] & roles["search"]
        or roles["search"] & roles["verification"]
        or roles["calibration"] & roles["verification"]
    )
    assert set(report["calibration"]["images"]) == roles["calibration"]
    assert set(report["verification"]["images"]) == roles["verification"]
    assert report["int8_search"]["count"] == 4 and report["int8_quality"]["count"] == 4


@pytest.mark.slow
def test_no_foreground_skips_the_dice_check_loudly(checkpoint, tmp_path, caplog):
    from edgeunet.data.io import write_mask

    folder = _folder(tmp_path / "cells", 6)
    for mask in (folder / "masks").iterdir():
        write_mask(mask, np.zeros((32, 32), dtype=np.uint8))
    options = ExportOptions(int8=True, int8_search=False, calib=str(folder), target="tensorrt")
    with caplog.at_level("WARNING"):
        report = export_model(checkpoint, tmp_path / "out", options, progress=False)
    assert report["int8_quality"]["dice_check"] == "skipped: verification images have no foreground"
    assert "INT8 Dice check skipped: verification images have no foreground" in caplog.text


@pytest.mark.parametrize("value, needle", [(-0.01, "must be 0 or more"), (float("nan"), "must be a number")])
def test_max_dice_drop_below_zero_or_nan_is_refused(value, needle):
    from edgeunet.errors import UserError

    with pytest.raises(UserError, match=f"--max-dice-drop.*{needle}"):
        ExportOptions(max_dice_drop=value)


@pytest.mark.slow
def test_stale_staging_folder_of_a_killed_export_is_removed(checkpoint, tmp_path):
    stale = tmp_path / ".out.tmp-999999"
    (stale / "sub").mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"half written")
    export_model(checkpoint, tmp_path / "out", ExportOptions(val_images=1), progress=False)
    assert not stale.exists() and (tmp_path / "out" / "model.onnx").is_file()


# --- One options object: the CLI flags and recipe keys come from ExportOptions --------------------------------


def test_every_option_is_a_cli_flag_and_a_recipe_key_with_one_default():
    import argparse
    import dataclasses

    from edgeunet.cli import export as export_cli
    from edgeunet.export.recipes import RECIPE_KEYS

    parser = argparse.ArgumentParser(prog="edgeunet")
    export_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", "ckpt.pt", "--out", "o"])
    for field in dataclasses.fields(ExportOptions):
        assert getattr(args, field.name) is None, field.name  # not given: the recipe or ExportOptions decides
        assert field.name in RECIPE_KEYS
    given = parser.parse_args(["export", "c", "--out", "o", "--calib-images", "3", "--search-img-size", "64"])
    assert (given.calib_images, given.search_img_size) == (3, 64)


def test_old_flag_spellings_still_work(capsys):
    from edgeunet.cli import build_parser

    args = build_parser().parse_args(["export", "c", "--out", "o", "--calib-size", "3", "--search-size", "64"])
    assert (args.calib_images, args.search_img_size) == (3, 64)
    assert "--calib-size is deprecated" in capsys.readouterr().err


def test_options_from_a_recipe_mapping_suggest_the_close_key():
    with pytest.raises(ValueError, match="unknown key 'calib_imagse': did you mean 'calib_images'"):
        ExportOptions.from_dict({"calib_imagse": 3})
    assert ExportOptions.from_dict({"calib_size": 5}).calib_images == 5  # an old recipe key still reads


def test_int8_search_side_defaults():
    assert ExportOptions(img_size=64).search_side(16) == 64
    assert ExportOptions().search_side(24) == 240 and ExportOptions(search_img_size=96).search_side(16) == 96


def test_missing_masks_skip_the_dice_check_with_the_reason(caplog):
    from edgeunet.export.quality import int8_quality
    from edgeunet.export.samples import Inputs

    logits = [np.zeros((2, 8, 8), dtype=np.float32)]
    with caplog.at_level("WARNING"):
        record = int8_quality(logits, logits, Inputs(["a"], [np.zeros((1, 8, 8), np.float32)], [None]), 2, 0.01)
    assert record["dice_check"] == "skipped: verification images have no masks" and record["dice_drop"] is None
    assert "INT8 Dice check skipped" in caplog.text
