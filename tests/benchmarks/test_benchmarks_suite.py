"""The benchmark suite in benchmarks/: zoo selection, summary table, failure records and a quick end-to-end run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import monai_reference  # noqa: E402
from benchmarks.build import run_stage  # noqa: E402
from benchmarks.run import check_sizes, main, run_suite  # noqa: E402
from benchmarks.summary import format_summary, summary_headers, summary_rows  # noqa: E402
from benchmarks.zoo import FULL, QUICK, Variant, default_zoo, quick_zoo, select  # noqa: E402


def _row(path: str, size: int, p50: float | None, dice: float | None = 0.9, status: str = "ok",
         reason: str = "") -> dict:
    return {"model": Path(path).name, "path": path, "size": size, "batch": 1,
            "latency_ms": {"p50": p50} if p50 else None,
            "parameters": 1000, "macs": 2_000_000_000, "mean_dice": dice, "status": status, "reason": reason}


def _fake_bench() -> tuple[dict, list[dict]]:
    """A bench result over one variant's four files at two sizes, and its build record."""
    files = {"torch-fp32": "w/a/train/best.pt", "onnx-fp32": "w/a/export/model.onnx",
             "onnx-int8": "w/a/export/model.int8.onnx",
             "pruned-int8": "w/a/export-pruned/model.int8.onnx"}
    p50 = {"torch-fp32": 40.0, "onnx-fp32": 20.0, "onnx-int8": 10.0, "pruned-int8": 5.0}
    rows = [_row(path, size, p50[kind] * size / 256, dice=0.8 if kind == "onnx-int8" else 0.9)
            for size in (256, 512) for kind, path in files.items()]
    record = {"label": "a", "files": files, "errors": {}, "note": ""}
    return {"settings": {"sizes": [256, 512]}, "rows": rows}, [record]


def test_summary_rows_fold_bench_rows_into_one_line_per_variant():
    result, records = _fake_bench()
    (line,) = summary_rows(result, records)
    assert line["variant"] == "a" and line["parameters"] == 1000 and line["macs_size"] == 256
    assert line["dice"] == {"torch-fp32": 0.9, "onnx-fp32": 0.9, "onnx-int8": 0.8, "pruned-int8": 0.9}
    assert line["p50_ms"][512] == {"torch-fp32": 80.0, "onnx-fp32": 40.0, "onnx-int8": 20.0, "pruned-int8": 10.0}
    assert line["int8_speedup"] == {256: 2.0, 512: 2.0} and line["pruned_int8_speedup"] == {256: 4.0, 512: 4.0}


def test_format_summary_has_every_column_and_speedups():
    result, records = _fake_bench()
    text = format_summary(summary_rows(result, records), [256, 512])
    header, _, line = text.splitlines()[:3]
    assert header == "| " + " | ".join(summary_headers([256, 512], 256)) + " |"
    assert "INT8 x@256" in header and "pruned INT8 ms@512" in header and "GMACs@256" in header
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:6] == ["a", "0.001", "2.00", "0.9000", "0.8000", "0.9000"]
    assert cells[10:12] == ["2.00", "4.00"]


def test_summary_lists_failed_stages_and_rows_as_problems():
    result, records = _fake_bench()
    records[0]["errors"]["export-pruned"] = "DiceDropError: INT8 Dice 0.70 is 0.20 below FP32"
    result["rows"][0].update(status="failed", reason="size 250 is not a multiple of 16", latency_ms=None)
    (line,) = summary_rows(result, records)
    text = format_summary([line], [256, 512])
    assert "- a: export-pruned failed: DiceDropError: INT8 Dice 0.70 is 0.20 below FP32" in text
    assert "- a: best.pt at 256 px: failed: size 250 is not a multiple of 16" in text
    assert line["p50_ms"][256]["torch-fp32"] is None


def test_missing_files_give_dashes_not_errors():
    result, records = _fake_bench()
    del records[0]["files"]["pruned-int8"]
    text = format_summary(summary_rows(result, records), [256, 512])
    cells = [c.strip() for c in text.splitlines()[2].strip("|").split("|")]
    assert cells[5] == "-" and cells[11] == "-"


@pytest.mark.slow
def test_default_zoo_holds_every_registered_variant_and_the_earlier_default():
    from edgeunet.models import list_models

    labels = [v.label for v in default_zoo()]
    assert labels[: len(list_models(2))] == list_models(2) and "unet-ds-transpose" in labels
    assert len(set(labels)) == len(labels)


def test_select_unknown_variant_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown variant\(s\) unet-xl: choose from ternausnet, unet, "):
        select(default_zoo(), ["unet-ds", "unet-xl"])


def test_budget_replace_ignores_unset_options():
    budget = FULL.replace(train_epochs=None, sizes=(128,))
    assert budget.train_epochs == FULL.train_epochs and budget.sizes == (128,)


def test_sizes_must_fit_every_model():
    with pytest.raises(ValueError, match="every size must be a multiple of 16"):
        check_sizes([Variant("unet", "unet")], FULL.replace(sizes=(256, 200)), with_monai=False)


def test_cli_rejects_bad_sizes_before_building(tmp_path, capsys):
    assert main(["--quick", "--sizes", "62", "--out", str(tmp_path / "r"), "--workdir", str(tmp_path / "w"),
                 "--no-monai"]) == 2
    assert "every size must be a multiple of 8" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_run_stage_records_the_error_and_returns_none():
    record = {"label": "a", "errors": {}, "time_s": {}}

    def fail():
        raise RuntimeError("calibration images are missing\nsecond line")

    assert run_stage(record, "export", fail) is None
    assert record["errors"] == {"export": "RuntimeError: calibration images are missing"}
    assert "export" in record["time_s"]


def test_failed_int8_export_is_recorded_and_the_fp32_file_still_exported(tmp_path, monkeypatch):
    from benchmarks import build
    from edgeunet.export import DiceDropError

    calls = []

    def export(checkpoint, out, budget, progress, int8=True):
        calls.append(int8)
        if int8:
            raise DiceDropError("INT8 mean Dice 0.50 is 0.40 below FP32 (max 0.01)")
        return {}

    def prune(checkpoint, folder, budget, progress):
        raise RuntimeError("pruning stopped")

    monkeypatch.setattr(build, "_train", lambda *a: {"best_path": "w/best.pt", "best_dice": 0.9, "parameters": 10})
    monkeypatch.setattr(build, "_export", export)
    monkeypatch.setattr(build, "_prune", prune)
    record = build.build_variant(Variant("a", "unet-ds"), tmp_path, QUICK)
    assert calls == [True, False]
    assert record["files"] == {"torch-fp32": "w/best.pt", "onnx-fp32": str(tmp_path / "a" / "export" / "model.onnx")}
    assert record["errors"] == {"export": "DiceDropError: INT8 mean Dice 0.50 is 0.40 below FP32 (max 0.01)",
                                "prune": "RuntimeError: pruning stopped"}


@pytest.mark.slow
def test_quick_suite_writes_results_named_by_machine_and_date(tmp_path):
    from edgeunet.env import machine_name

    outcome = run_suite(tmp_path / "results", tmp_path / "work", quick_zoo()[:1], QUICK, with_monai=False,
                        date="2030-01-02")
    stem = f"{machine_name()}-2030-01-02"
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == sorted(
        f"{stem}{suffix}" for suffix in (".json", ".csv", ".md", ".png", "-summary.md"))
    assert outcome["errors"] == 0
    result = json.loads((tmp_path / "results" / f"{stem}.json").read_text())
    assert [(Path(r["path"]).parent.name, Path(r["path"]).name) for r in result["rows"]] == [
        ("train", "best.pt"), ("export", "model.onnx"), ("export", "model.int8.onnx"),
        ("export-pruned", "model.int8.onnx"), ("export-runtimes", "model.int8.ort"), ("export-runtimes", "model.ort")]
    assert all(r["status"] == "ok" and r["latency_ms"] for r in result["rows"])
    summary = (tmp_path / "results" / f"{stem}-summary.md").read_text()
    assert summary.splitlines()[2].startswith("| unet-ds | ") and "INT8 x@64" in summary
    # the runtimes table: the variant's own ORT files, then each runtime file, with ratios to its ORT FP32
    runtimes = result["suite"]["runtimes"]
    assert [line["file"] for line in runtimes] == ["export/model.onnx", "export/model.int8.onnx",
                                                   "export-runtimes/model.int8.ort", "export-runtimes/model.ort"]
    assert runtimes[0]["vs_ort_fp32"]["64"]["ratio"] == 1.0
    assert all(line["vs_ort_fp32"]["64"]["rounds"] > 0 for line in runtimes)
    assert "| unet-ds | `export-runtimes/model.ort` | onnxruntime | fp32 |" in summary
    assert result["suite"]["monai"] == "skipped" and result["suite"]["budget"]["sizes"] == [64]


@pytest.mark.slow
def test_monai_reference_exports_an_onnx_file_the_bench_scores(tmp_path):
    pytest.importorskip("monai")
    from edgeunet.bench import BenchSettings, run_bench
    from edgeunet.timing import TimingSettings

    budget = QUICK.replace(train_epochs=1)
    record = monai_reference.build_reference(tmp_path, budget)
    assert record["errors"] == {} and record["parameters"] > 0 and record["macs"] > 0
    timing = TimingSettings(warmup=1, min_time=0.05, min_rounds=3)
    settings = BenchSettings(num_images=2, sizes=(64,), device="cpu", timing=timing)
    result = run_bench([record["files"]["onnx-fp32"]], settings, progress=False)
    (row,) = result["rows"]
    assert row["status"] == "ok" and row["mean_dice"] is not None and row["parameters"] is None


@pytest.mark.slow
def test_reference_export_writes_through_the_export_writer_a_file_the_runtime_opens(tmp_path):
    """The MONAI reference's export path (parity through ort_session, save_onnx) on an edgeunet stand-in model."""
    pytest.importorskip("onnxslim")
    from edgeunet.models import create_model
    from edgeunet.models.cost import count_cost
    from edgeunet.runtime import Segmenter

    model = create_model("unet-ds", base_width=8, depth=2)
    path = monai_reference.export_reference(model, tmp_path / "new" / "model.onnx", ["background", "nucleus"])
    segmenter = Segmenter(path, providers=["CPUExecutionProvider"])
    assert segmenter.class_names == ["background", "nucleus"] and segmenter.metadata.model_config == {}
    assert list(tmp_path.glob("new/.*")) == [] and count_cost(model, 64).macs > 0


def test_spinning_script_benches_the_modes_in_turn_and_keeps_the_median_of_the_repeats(tmp_path, monkeypatch):
    from benchmarks import spinning

    order, slow = [], {"off": 1.2, "run": 1.0, "always": 2.0}

    def fake_bench(*args):  # what `edgeunet bench A B --spinning MODE --json F` writes, FP32 8 ms * mode * call
        mode, out = args[args.index("--spinning") + 1], Path(args[args.index("--json") + 1])
        order.append(mode)
        k = slow[mode] * (1 + 0.1 * (len(order) > 3))  # the second repeat is 10% slower for every mode
        rows = [{"model": "model.onnx", "size": 256, "status": "ok", "latency_ms": {"p50": 8 * k}, "ratio": 1.0},
                {"model": "model.int8.onnx", "size": 256, "status": "ok", "latency_ms": {"p50": 4 * k}, "ratio": 2.0}]
        out.write_text(json.dumps({"rows": rows}))

    monkeypatch.setattr(spinning, "edgeunet", fake_bench)
    monkeypatch.setattr(spinning, "_model_name", lambda path: "unet-ds")
    result = spinning.run(Path("model.onnx"), Path("model.int8.onnx"), ["off", "run", "always"], 2, "256", 0.1, 1)
    assert order == ["off", "run", "always"] * 2
    assert result["modes"]["off"]["256"] == {"fp32_p50_ms": 10.08, "int8_p50_ms": 5.04, "ratio": 2.0}
    assert result["modes"]["run"]["256"]["int8_p50_ms"] == 4.2 and len(result["runs"]) == 6
    assert spinning.main(["--fp32", str(tmp_path / "none.onnx")]) == 2  # missing files: the fix, exit 2
    for f in ("a.onnx", "b.onnx"):
        (tmp_path / f).write_bytes(b"")
    files = ["--fp32", str(tmp_path / "a.onnx"), "--int8", str(tmp_path / "b.onnx")]
    assert spinning.main([*files, "--modes", "fast"]) == 2
