"""edgeunet bench: harness fields, failure rows, sibling checks, baseline gate, writers and CLI."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time

import numpy as np
import pytest

from edgeunet.bench import (
    BenchSettings,
    compare_to_baseline,
    format_table,
    load_baseline,
    run_bench,
    save_pareto_plot,
    unmatched_rows,
)
from edgeunet.bench.harness import model_labels
from edgeunet.bench.memory import RssPeak
from edgeunet.bench.plot import pareto_front
from edgeunet.bench.report import csv_text, format_markdown, write_csv, write_json, write_markdown
from edgeunet.bench.siblings import apply_sibling_checks
from edgeunet.errors import UserError
from edgeunet.timing import TimingSettings, latency_stats, time_callable

FAST = BenchSettings(num_images=2, sizes=(32, 30), batches=(1, 2), threads=1, device="cpu",
                     timing=TimingSettings(warmup=1, min_time=0.05, min_rounds=3))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """best.pt and model.onnx of one tiny U-Net (same weights), plus a broken ONNX and a fake engine."""
    torch = pytest.importorskip("torch")
    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.export.onnx import export_onnx
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    folder = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    model = create_model("unet-ds", base_width=8, depth=2).eval()
    save_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, ["background", "cell"]), folder / "best.pt")
    export_onnx(model, folder / "model.onnx", DEFAULT_PREPROCESSING, ["background", "cell"])
    (folder / "broken.onnx").write_bytes(b"not an onnx file")
    (folder / "model.fp32.engine").write_bytes(b"not an engine")
    return folder


@pytest.fixture(scope="module")
def result(models):
    paths = [models / name for name in ("best.pt", "model.onnx", "broken.onnx", "model.fp32.engine")]
    return run_bench(paths, FAST, progress=False)


def _rows(result, model, size=32):
    return [r for r in result["rows"] if r["model"] == model and r["size"] == size]


def test_ok_rows_have_ordered_percentiles_and_positive_throughput(result):
    ok = [r for r in result["rows"] if r["status"] == "ok"]
    assert len(ok) == 4  # best.pt and model.onnx at 32 px, batch 1 and 2
    for r in ok:
        lat = r["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert lat["mean"] > 0 and lat["std"] >= 0
        assert r["iterations"] >= FAST.timing.min_rounds
        assert r["throughput_ips"] == pytest.approx(r["batch"] * 1000 / lat["mean"])


def test_ok_rows_record_size_cost_and_accuracy(result):
    for r in (r for r in result["rows"] if r["status"] == "ok"):
        assert r["file_mb"] > 0 and r["parameters"] > 0 and r["macs"] > 0
        assert all(d is None or 0.0 <= d <= 1.0 for d in r["dice"] + r["iou"]) and len(r["dice"]) == 2
        assert 0.0 <= r["mean_dice"] <= 1.0
        assert r["peak_rss_mb"] is None or r["peak_rss_mb"] >= 0
        assert r["gpu_mem_mb"] is None  # CPU run


def test_checkpoint_and_its_onnx_export_score_the_same(result):
    torch_row, onnx_row = _rows(result, "best.pt")[0], _rows(result, "model.onnx")[0]
    assert onnx_row["backend"] == "onnxruntime" and torch_row["backend"] == "torch"
    assert onnx_row["dice"] == pytest.approx(torch_row["dice"], abs=1e-3)
    assert onnx_row["parameters"] == torch_row["parameters"]


def test_size_that_is_not_a_multiple_fails_with_the_fix(result):
    rows = _rows(result, "model.onnx", size=30)
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert "not a multiple of 8" in rows[0]["reason"] and "use 24 or 32" in rows[0]["reason"]


def test_unreadable_model_fails_with_reason_while_others_run(result):
    rows = [r for r in result["rows"] if r["model"] == "broken.onnx"]
    assert rows and all(r["status"] == "failed" and "could not be loaded by ONNX Runtime" in r["reason"] for r in rows)
    assert any(r["status"] == "ok" for r in result["rows"])


def test_engine_without_tensorrt_is_skipped_with_reason(result):
    pytest.importorskip("torch")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    rows = [r for r in result["rows"] if r["model"] == "model.fp32.engine"]
    assert rows and all(r["status"] == "skipped" and r["reason"].startswith("TensorRT not installed") for r in rows)


def test_environment_and_settings_record_threads(result):
    assert result["environment"]["threads"] == 1 and result["settings"]["threads"] == 1
    assert result["environment"]["cpu"]["model"]
    assert result["settings"]["sizes"] == [30, 32] and result["settings"]["min_iters"] == 3


def test_baseline_gate_passes_against_itself(result):
    assert compare_to_baseline(result, copy.deepcopy(result), 1.10, 0.01) == []


def test_baseline_gate_fails_on_injected_slowdown(result):
    baseline = copy.deepcopy(result)
    for r in baseline["rows"]:
        if r["latency_ms"]:
            r["latency_ms"]["p50"] /= 2
    regressions = compare_to_baseline(result, baseline, 1.10, 0.01)
    assert len(regressions) == 4 and all("slower" in line and "x2.00" in line for line in regressions)


def test_baseline_gate_fails_on_dice_drop(result):
    baseline = copy.deepcopy(result)
    for r in baseline["rows"]:
        if r["mean_dice"] is not None:
            r["mean_dice"] += 0.05
    regressions = compare_to_baseline(result, baseline, 1.10, 0.01)
    assert regressions and all("mean Dice" in line for line in regressions)


def test_baseline_rows_on_one_side_are_reported_not_failed(result):
    baseline = copy.deepcopy(result)
    baseline["rows"] = [r for r in baseline["rows"] if r["model"] != "best.pt"]
    baseline["rows"].append({**baseline["rows"][0], "model": "gone.onnx"})
    assert compare_to_baseline(result, baseline, 1.10, 0.01) == []
    lines = unmatched_rows(result, baseline)
    assert any(line.startswith("new row") and "best.pt" in line for line in lines)
    assert any(line.startswith("missing row") and "gone.onnx" in line for line in lines)


def test_load_baseline_rejects_a_foreign_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"epochs": 3}))
    with pytest.raises(UserError, match="has no bench rows: give the --json file"):
        load_baseline(path)


def test_pareto_plot_is_a_png(result, tmp_path):
    from PIL import Image

    path = save_pareto_plot(result, tmp_path / "pareto.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100


def test_csv_and_markdown_hold_every_row(result, tmp_path):
    import csv

    with open(write_csv(result, tmp_path / "bench.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(result["rows"]) and {"p50_ms", "dice_1", "status"} <= rows[0].keys()
    markdown = write_markdown(result, tmp_path / "bench.md").read_text()
    assert sum(line.startswith("| ") for line in markdown.splitlines()) == len(result["rows"]) + 1  # header + rows


def test_json_is_strict_and_round_trips(result, tmp_path):
    def no_nan(name):
        raise AssertionError(f"non-strict JSON constant {name}")

    loaded = json.loads(write_json(result, tmp_path / "bench.json").read_text(), parse_constant=no_nan)
    assert len(loaded["rows"]) == len(result["rows"]) and set(loaded) == {"environment", "settings", "rows"}


def test_table_lists_every_row_and_the_environment(result):
    lines = format_table(result).splitlines()
    assert lines[0].startswith("model") and len(lines) == 2 + len(result["rows"]) + 2
    assert "threads 1" in lines[-1]


def _row(path, precision, dice, p50, backend="onnxruntime", group='{"widths": [8, 16]}'):
    return {"model": path.split("/")[-1], "path": path, "precision": precision, "backend": backend, "size": 64,
            "batch": 1,
            "latency_ms": {"p50": p50}, "mean_dice": dice, "status": "ok", "reason": "", "note": "", "_group": group}


def test_int8_below_its_fp32_sibling_fails_the_accuracy_gate():
    rows = [_row("a/model.onnx", "fp32", 0.80, 10.0), _row("a/model.int8.onnx", "int8", 0.75, 5.0)]
    apply_sibling_checks(rows, max_dice_drop=0.01)
    assert rows[1]["status"] == "accuracy-gate" and "0.0500 below fp32 model.onnx" in rows[1]["reason"]
    assert rows[0]["status"] == "ok" and "_group" not in rows[0]


def test_int8_slower_than_fp32_gets_a_note():
    rows = [_row("a/model.onnx", "fp32", 0.80, 10.0), _row("a/model.int8.onnx", "int8", 0.80, 13.0)]
    apply_sibling_checks(rows, max_dice_drop=0.01)
    assert rows[1]["status"] == "ok" and rows[1]["note"] == "int8 slower than fp32 x1.30"


def test_models_of_other_configs_are_not_siblings():
    rows = [_row("a/model.onnx", "fp32", 0.80, 1.0, group='{"widths": [4]}'),
            _row("b/model.int8.onnx", "int8", 0.50, 9.0)]
    apply_sibling_checks(rows, max_dice_drop=0.01)
    assert rows[1]["status"] == "ok" and rows[1]["note"] == ""


def test_time_callable_runs_min_iters_and_min_time():
    calls = []
    settings = TimingSettings(warmup=2, min_time=0.03, min_rounds=5)
    timed = time_callable(lambda: calls.append(time.sleep(0.002)), settings)
    stats, iterations = timed["latency_ms"], timed["iterations"]
    assert iterations >= 5 and len(calls) == iterations + 2
    assert stats["mean"] * iterations >= 30 * 0.99


def test_latency_stats_in_ms():
    stats = latency_stats(np.array([1e6, 2e6, 3e6, 4e6]))
    assert stats["p50"] == pytest.approx(2.5) and stats["mean"] == pytest.approx(2.5)
    assert stats["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))


def test_rss_peak_sees_memory_freed_inside_the_block():
    with RssPeak() as probe:
        start = probe.peak_mb
        block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MB, touched
        del block
    if start is None:
        pytest.skip("no /proc on this platform")
    assert probe.peak_mb - start >= 48


def test_pareto_front_keeps_only_undominated_points():
    assert pareto_front([(1, 0.5), (2, 0.4), (3, 0.7), (4, 0.7), (0.5, 0.2)]) == [(0.5, 0.2), (1, 0.5), (3, 0.7)]


def test_model_labels_add_folders_only_where_names_repeat(tmp_path):
    from pathlib import Path

    labels = model_labels([Path("runs/a/best.pt"), Path("runs/b/best.pt"), Path("export/model.onnx")])
    assert labels == ["a/best.pt", "b/best.pt", "model.onnx"]


def test_unknown_backend_names_the_choices(models):
    choices = "torch, onnxruntime, tensorrt, openvino"
    with pytest.raises(UserError, match=f"unknown backend\\(s\\) tvm: use some of {choices}"):
        run_bench([models / "model.onnx"], BenchSettings(backends=("tvm",)), progress=False)


def test_unknown_model_file_type_names_the_kinds(models):
    with pytest.raises(UserError, match="unknown model file type '.xyz': give a checkpoint"):
        run_bench([models / "model.xyz"], progress=False)


def _cli(argv):
    from edgeunet.cli import bench

    parser = argparse.ArgumentParser(prog="edgeunet")
    bench.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_sizes_must_be_integers():
    from edgeunet.cli.bench import int_list

    with pytest.raises(argparse.ArgumentTypeError, match="'256,x' is not a comma-separated list of positive integers"):
        int_list("256,x")


def test_cli_writes_outputs_then_gates_on_an_edited_baseline(models, tmp_path, capsys):
    argv = ["bench", str(models / "model.onnx"), "--img-size", "32", "--num-images", "2", "--threads", "1", "--warmup",
            "1",
            "--min-time", "0.05", "--min-iters", "3", "--no-progress"]
    out = tmp_path / "first.json"
    assert _cli(argv + ["--json", str(out), "--md", str(tmp_path / "b.md"), "--csv", str(tmp_path / "b.csv")]) == 0
    assert "model.onnx" in capsys.readouterr().out and (tmp_path / "b.md").is_file() and (tmp_path / "b.csv").is_file()
    baseline = json.loads(out.read_text())
    baseline["rows"][0]["latency_ms"]["p50"] /= 4  # the earlier run was 4x faster
    out.write_text(json.dumps(baseline))
    assert _cli(argv + ["--baseline", str(out), "--max-slowdown", "1.5"]) == 1
    assert "regression: model.onnx fp32 onnxruntime 32px batch 1: slower" in capsys.readouterr().out


def test_csv_text_pads_per_class_columns_for_failed_rows(result):
    header, *lines = csv_text(result).splitlines()
    assert header.count(",") == lines[-1].count(",")
    assert "Settings:" in format_markdown(result)


@pytest.mark.cuda
def test_checkpoint_on_cuda_records_gpu_memory(models):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU")
    result = run_bench([models / "best.pt"], dataclasses.replace(FAST, sizes=(32,), device="cuda"), progress=False)
    assert all(r["status"] == "ok" and r["device"] == "cuda" and r["gpu_mem_mb"] > 0 for r in result["rows"])


@pytest.mark.tensorrt
def test_engine_runs_and_scores_like_its_onnx(models, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU")
    from edgeunet.export.tensorrt import build_engine

    engine = build_engine(models / "model.onnx", tmp_path / "model.fp32.engine",
                          shapes="1x1x32x32,1x1x32x32,2x1x64x64")["engine"]
    settings = dataclasses.replace(FAST, sizes=(32, 64), batches=(1, 4), device="cuda")
    result = run_bench([models / "model.onnx", engine], settings,
                       progress=False)
    rows = {(r["backend"], r["size"], r["batch"]): r for r in result["rows"]}
    assert rows[("tensorrt", 64, 1)]["status"] == "ok" and rows[("tensorrt", 64, 1)]["gpu_mem_mb"] > 0
    assert rows[("tensorrt", 32, 1)]["dice"] == pytest.approx(rows[("onnxruntime", 32, 1)]["dice"], abs=1e-2)
    assert "outside the engine's profile" in rows[("tensorrt", 32, 4)]["reason"]


def test_openvino_files_get_one_row_group_per_precision_asked(tmp_path):
    from edgeunet.bench.models import check_models

    for name in ("model.onnx", "model.xml"):
        (tmp_path / name).write_bytes(b"x")
    files = [tmp_path / "model.onnx", tmp_path / "model.xml"]
    chosen = check_models(files, BenchSettings(openvino_precisions=("f32", "bf16")))
    assert [(c.label, c.backend, c.hint) for c in chosen] == [
        ("model.onnx", "onnxruntime", None), ("model.xml", "openvino", "f32"), ("model.xml@bf16", "openvino", "bf16")]
    assert [c.label for c in check_models(files, BenchSettings())] == ["model.onnx", "model.xml"]  # f32 only


def test_unknown_openvino_precision_is_bad_input():
    with pytest.raises(UserError, match="--openvino-precision bf8: use some of f32, bf16, f16"):
        BenchSettings(openvino_precisions=("f32", "bf8"))
    assert BenchSettings(openvino_precisions=("bf16", "bf16")).to_dict()["openvino_precisions"] == ["bf16"]
