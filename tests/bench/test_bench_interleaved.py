"""edgeunet bench through the shipped backends: interleaved rows with per-round ratios, the reference row,
Segmenter scoring, the runtime's session factory, the PyTorch backend, settings, and what uses the ratios."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time

import numpy as np
import pytest

from edgeunet.bench import BenchSettings, compare_to_baseline, run_bench, verdict_lines
from edgeunet.bench.interleave import recorded, run_rounds
from edgeunet.bench.plot import dice_limits, latency_limits
from edgeunet.bench.ratios import pair_ratio, ratio_text
from edgeunet.bench.report import check_output_path
from edgeunet.bench.siblings import apply_sibling_checks
from edgeunet.errors import UserError
from edgeunet.timing import TimingSettings

FAST = BenchSettings(num_images=2, sizes=(32,), batches=(1,), threads=1, device="cpu",
                     timing=TimingSettings(warmup=1, min_time=0.05, min_rounds=5))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """best.pt, model.onnx and a copy other.onnx of one tiny U-Net."""
    torch = pytest.importorskip("torch")
    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.export.onnx import export_onnx
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    folder = tmp_path_factory.mktemp("interleaved")
    torch.manual_seed(0)
    model = create_model("unet-ds", base_width=8, depth=2).eval()
    save_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, ["background", "cell"]), folder / "best.pt")
    export_onnx(model, folder / "model.onnx", DEFAULT_PREPROCESSING, ["background", "cell"])
    (folder / "other.onnx").write_bytes((folder / "model.onnx").read_bytes())
    return folder


@pytest.fixture(scope="module")
def result(models):
    return run_bench([models / "best.pt", models / "model.onnx", models / "other.onnx"], FAST, progress=False)


def test_rows_of_one_shape_are_timed_in_the_same_rounds(result):
    rows = result["rows"]
    assert {len(r["round_ms"]) for r in rows} == {rows[0]["iterations"]} and rows[0]["iterations"] >= 5
    assert all(r["latency_ms"]["min"] <= r["latency_ms"]["p50"] for r in rows)


def test_first_fp32_onnx_model_is_the_default_reference(result):
    by_model = {r["model"]: r for r in result["rows"]}
    assert by_model["model.onnx"]["verdict"] == "reference" and by_model["model.onnx"]["ratio"] == 1.0
    assert by_model["best.pt"]["reference"] == "model.onnx" and by_model["best.pt"]["ratio"] > 0
    assert by_model["best.pt"]["ratio_q25"] <= by_model["best.pt"]["ratio"] <= by_model["best.pt"]["ratio_q75"]


def test_reference_option_picks_another_model_by_path(models):
    settings = dataclasses.replace(FAST, reference=str(models / "best.pt"))
    result = run_bench([models / "best.pt", models / "model.onnx"], settings, progress=False)
    assert {r["model"]: r["verdict"] for r in result["rows"]}["best.pt"] == "reference"
    assert all(r["reference"] == "best.pt" for r in result["rows"])


def test_unknown_reference_is_a_user_error_before_any_run(models):
    with pytest.raises(UserError, match="--reference nothing.onnx is none of the benchmarked models: give one of"):
        run_bench([models / "model.onnx"], dataclasses.replace(FAST, reference="nothing.onnx"), progress=False)


def test_onnx_files_open_through_the_runtime_session_factory_and_score_through_segmenter(models, monkeypatch):
    from edgeunet.runtime import backend_ort, segmenter

    sessions, calls = [], []
    real_session, real_call = backend_ort.ort_session, segmenter.Segmenter.__call__
    monkeypatch.setattr(backend_ort, "ort_session", lambda *a, **k: sessions.append(k) or real_session(*a, **k))
    monkeypatch.setattr(segmenter.Segmenter, "__call__", lambda self, image: calls.append(self.backend) or
                        real_call(self, image))
    run_bench([models / "model.onnx", models / "best.pt"], FAST, progress=False)
    # the rows' sessions are open side by side: their intra-op threads spin within a call only
    assert sessions == [{"threads": 1, "providers": ["CPUExecutionProvider"], "spinning": "run"}]
    assert calls == ["onnxruntime"] * FAST.num_images + ["torch"] * FAST.num_images


def test_spinning_option_sets_the_mode_of_every_ort_session_and_is_recorded(models, monkeypatch):
    from edgeunet.cli import build_parser
    from edgeunet.cli.bench import settings_from_args
    from edgeunet.runtime import backend_ort

    sessions, real_session = [], backend_ort.ort_session
    monkeypatch.setattr(backend_ort, "ort_session", lambda *a, **k: sessions.append(k) or real_session(*a, **k))
    parse = build_parser().parse_args
    assert settings_from_args(parse(["bench", "m.onnx"])).spinning == "run"
    assert settings_from_args(parse(["bench", "m.onnx", "--spinning"])).spinning == "always"  # the bare flag of 0.1
    assert settings_from_args(parse(["bench", "m.onnx", "--spinning", "off"])).spinning == "off"
    result = run_bench([models / "model.onnx"], dataclasses.replace(FAST, spinning="always"), progress=False)
    assert sessions == [{"threads": 1, "providers": ["CPUExecutionProvider"], "spinning": "always"}]
    assert result["settings"]["spinning"] == "always"


def test_unknown_spinning_mode_is_refused_naming_the_modes():
    with pytest.raises(UserError, match="use run, always, off"):
        dataclasses.replace(FAST, spinning="sometimes")


def test_torch_backend_has_the_runtime_backend_interface(models):
    pytest.importorskip("torch")
    from edgeunet.bench.torch_backend import TorchBackend
    from edgeunet.runtime import Segmenter

    backend = TorchBackend(models / "best.pt", device="cpu")
    assert (backend.name, backend.providers, backend.max_batch, backend.fixed_size) == ("torch", ["cpu"], None, None)
    logits = backend.run(np.zeros((2, 1, 32, 32), np.float32))
    assert logits.shape == (2, 2, 32, 32) and logits.dtype == np.float32
    mask = Segmenter.from_backend(backend)(np.random.default_rng(0).integers(0, 255, (40, 50), dtype=np.uint8))
    assert mask.shape == (40, 50) and mask.dtype == np.uint8


def test_settings_are_normalized_and_validated_once():
    settings = BenchSettings(sizes=[512, 256, 256], batches=(8, 1))
    assert settings.sizes == (256, 512) and settings.batches == (1, 8)
    assert settings.to_dict()["min_iters"] == TimingSettings().min_rounds
    for bad, message in (({"sizes": ()}, "--img-size"), ({"batches": (0,)}, "--batch-size"),
                         ({"num_images": 0}, "--num-images"), ({"device": "tpu"}, "use auto, cpu or cuda"),
                         ({"threads": 0}, "--threads"), ({"max_dice_drop": -1}, "negative")):
        with pytest.raises(UserError, match=message):
            BenchSettings(**bad)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.sizes = (64,)


def test_min_rounds_are_run_even_when_the_rounds_outlast_the_budget():
    stores = [[], []]
    fns = [recorded(i, time.sleep, 0.02, store) for i, store in enumerate(stores)]
    run_rounds(fns, stores, TimingSettings(warmup=3, min_time=0.01, min_rounds=4))  # budget 0.02 s < 4 rounds
    assert [len(s) for s in stores] == [4, 4]


def test_a_fast_row_does_not_keep_a_slow_one_running_past_the_budget():
    stores = [[], []]
    fns = [recorded(0, time.sleep, 0.0, stores[0]), recorded(1, time.sleep, 0.01, stores[1])]
    run_rounds(fns, stores, TimingSettings(warmup=0, min_time=0.05, min_rounds=2))  # budget 0.1 s
    assert len(stores[0]) == len(stores[1]) and 2 <= len(stores[1]) <= 15


def _row(path, precision, round_ms, group='{"w": 1}', **extra):
    latency = {"p50": float(np.median(round_ms)), "p90": float(np.percentile(round_ms, 90))}
    return {"model": path.split("/")[-1], "path": path, "precision": precision, "backend": "onnxruntime", "size": 64,
            "batch": 1, "latency_ms": latency, "round_ms": list(round_ms), "mean_dice": 0.8, "status": "ok",
            "reason": "", "note": "", "_group": group, **extra}


def test_sibling_ratio_is_taken_round_by_round_so_drift_cancels():
    drift = np.linspace(10.0, 30.0, 21)  # the machine slows down 3x during the run
    rows = [_row("a/model.onnx", "fp32", drift), _row("a/model.int8.onnx", "int8", drift * 1.3)]
    apply_sibling_checks(rows, max_dice_drop=0.01)
    assert rows[1]["vs_fp32"]["ratio"] == pytest.approx(1 / 1.3) and rows[1]["vs_fp32"]["verdict"] == "slower"
    assert rows[1]["note"] == "int8 slower than fp32 x1.30"


def test_a_sibling_ratio_too_scattered_says_no_verdict_instead_of_slower():
    rng = np.random.default_rng(0)
    fp32, int8 = 10 + 8 * rng.random(21), 12 + 8 * rng.random(21)
    rows = [_row("a/model.onnx", "fp32", fp32), _row("a/model.int8.onnx", "int8", int8)]
    apply_sibling_checks(rows, max_dice_drop=0.01)
    assert rows[1]["vs_fp32"]["noisy"] and "no verdict" in rows[1]["note"] and "slower" not in rows[1]["note"]


def test_pair_ratio_falls_back_to_p50_without_rounds():
    a, b = _row("a.onnx", "fp32", [10.0]), _row("b.onnx", "fp32", [5.0])
    del a["round_ms"]
    ratio = pair_ratio(a, b)
    assert ratio["ratio"] == 2.0 and ratio["rounds"] == 0 and ratio_text(ratio) == "2.00"


def test_gate_flags_a_row_that_lost_speed_against_the_same_reference(result):
    baseline = copy.deepcopy(result)
    for r in baseline["rows"]:
        if r["model"] == "best.pt":
            r["ratio"] *= 1.5  # the baseline's best.pt was 1.5x faster relative to model.onnx
    lines = compare_to_baseline(result, baseline, 1.2, 0.01)
    assert len(lines) == 1 and "best.pt" in lines[0] and "slower against model.onnx" in lines[0]


def test_verdict_lines_say_when_the_machine_was_too_busy(result):
    busy = copy.deepcopy(result)
    for r in busy["rows"]:
        r["noisy"] = True
    lines = verdict_lines(busy)
    assert lines[-1].startswith("the machine was too busy for a verdict on 2 of 2 row(s)")
    assert all("no verdict" in line for line in lines[:-1])


def test_plot_axes_have_a_minimum_dice_span_and_go_logarithmic_past_10x():
    low, high = dice_limits([0.96091, 0.96093])
    assert high - low >= 0.02 and low < 0.96091 < 0.96093 < high <= 1.0
    assert dice_limits([0.999, 1.0])[1] == 1.0
    assert latency_limits([1.0, 50.0])[2] and not latency_limits([1.0, 5.0])[2]


def test_output_path_checks_create_nothing(tmp_path):
    target = tmp_path / "new" / "deeper" / "bench.json"
    assert check_output_path(target, "--json") == target and not (tmp_path / "new").exists()
    with pytest.raises(UserError, match="--csv .* is a folder"):
        check_output_path(tmp_path, "--csv")


def test_old_cli_spellings_still_work_and_say_the_new_one(models, capsys):
    from edgeunet.cli import bench

    parser = argparse.ArgumentParser(prog="edgeunet")
    bench.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "m.onnx", "--sizes", "64,32", "--batch", "2", "--n-images", "3"])
    assert (args.sizes, args.batches, args.num_images) == ([64, 32], [2], 3)
    err = capsys.readouterr().err
    assert "--sizes is deprecated" in err and "use --img-size" in err and "use --batch-size" in err
    settings = bench.settings_from_args(args)
    assert settings.sizes == (32, 64) and settings.timing == TimingSettings()


def test_a_fixed_size_file_is_skipped_at_other_sizes_not_failed(models, tmp_path, capsys):
    import torch

    from edgeunet.cli import main
    from edgeunet.export.onnx import export_onnx
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    torch.manual_seed(0)
    fixed = export_onnx(create_model("unet-ds", base_width=8, depth=2).eval(), tmp_path / "fixed.onnx",
                        DEFAULT_PREPROCESSING, ["background", "cell"], img_size=32)
    result = run_bench([models / "model.onnx", fixed], dataclasses.replace(FAST, sizes=(32, 64)), progress=False)
    by = {(r["model"], r["size"]): r for r in result["rows"]}
    assert by[("fixed.onnx", 32)]["status"] == "ok" and by[("model.onnx", 64)]["status"] == "ok"
    assert by[("fixed.onnx", 64)]["status"] == "skipped"
    reason = "the model was exported for 32x32 images only: bench it with --img-size 32"
    assert by[("fixed.onnx", 64)]["reason"] == reason
    code = main(["bench", str(models / "model.onnx"), str(fixed), "--img-size", "32,64", "--num-images", "2",
                 "--min-time", "0.05", "--threads", "1", "--device", "cpu", "--no-progress"])
    assert code == 0 and "0 problem(s)" in capsys.readouterr().out
