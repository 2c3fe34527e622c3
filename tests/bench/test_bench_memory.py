"""The bench's memory column is the peak RSS of a fresh process running the file, and its console table fits a
terminal while the files keep every column."""

from __future__ import annotations

import copy
import csv
import io
import subprocess
import sys

import pytest
from tiny_onnx import tiny_onnx

from edgeunet.bench import BenchSettings, format_table, run_bench
from edgeunet.bench.memory import process_peak_rss_mb
from edgeunet.bench.report import MAX_WIDTH, csv_text, table_cells
from edgeunet.timing import TimingSettings

FAST = BenchSettings(num_images=2, sizes=(32,), threads=1, device="cpu",
                     timing=TimingSettings(warmup=1, min_time=0.05, min_rounds=3))


def _bare_interpreter_mb() -> float:
    """Peak RSS (MB) of a Python process that does nothing: the floor of any process measurement."""
    code = "print(int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("memory") / "model.onnx")


@pytest.fixture(scope="module")
def result(onnx_file):
    return run_bench([onnx_file], FAST, progress=False)


def _floor() -> float:
    try:
        return _bare_interpreter_mb()
    except (OSError, IndexError, subprocess.CalledProcessError):
        pytest.skip("no /proc/self/status here")


@pytest.mark.slow
def test_a_fresh_process_running_the_file_costs_more_than_the_bare_interpreter(onnx_file):
    floor = _floor()
    peak = process_peak_rss_mb(onnx_file, "onnxruntime", 32, 1, threads=1, spinning="run")
    assert peak is not None and peak > 20 and peak > floor + 5  # numpy, ONNX Runtime and the session on top


def test_the_bench_row_and_table_show_the_process_peak_not_zero(result):
    floor = _floor()
    row = result["rows"][0]
    assert row["status"] == "ok" and row["peak_rss_mb"] > max(20.0, floor)
    headers, cells = table_cells(result, wide=False)
    shown = cells[0][headers.index("process MB")]
    assert float(shown) == pytest.approx(row["peak_rss_mb"], abs=0.05) and shown != "0.0"
    table = format_table(result, saved="bench.json")
    assert "process MB: peak RSS of a fresh process running the file; all" in table


def test_no_memory_leaves_the_column_empty(onnx_file):
    import dataclasses

    result = run_bench([onnx_file], dataclasses.replace(FAST, memory=False), progress=False)
    headers, cells = table_cells(result, wide=False)
    assert result["rows"][0]["peak_rss_mb"] is None and cells[0][headers.index("process MB")] == "-"


def test_a_process_that_fails_gives_none(tmp_path, caplog):
    assert process_peak_rss_mb(tmp_path / "missing.onnx", "onnxruntime", 32, 1, threads=1, spinning="run") is None
    assert "not measured" in caplog.text


def _quickstart_like(result: dict) -> dict:
    """The quickstart's nine rows (checkpoint, ONNX, ORT-format and OpenVINO files, bf16 rows), with long names,
    a long note and a failed row's long reason."""
    base = result["rows"][0]
    names = [("best.pt", "fp32", "torch"), ("model.onnx", "fp32", "onnxruntime"),
             ("model.int8.onnx", "int8", "onnxruntime"), ("model.ort", "fp32", "onnxruntime"),
             ("model.int8.ort", "int8", "onnxruntime"), ("model.xml", "fp32", "openvino"),
             ("model.xml@bf16", "bf16", "openvino"), ("cells-2024-run3-model.int8.xml", "int8", "openvino"),
             ("cells-2024-run3-model.int8.xml@bf16", "int8", "openvino")]
    rows = []
    for model, precision, backend in names:
        row = copy.deepcopy(base)
        row.update(model=model, precision=precision, backend=backend, size=256, peak_rss_mb=412.3, file_mb=12.34,
                   latency_ms={k: 123.456 for k in base["latency_ms"]}, throughput_ips=8.1, ratio=1.234,
                   ratio_q25=1.111, ratio_q75=1.333, rounds=40, noisy=False, verdict="faster", reference="model.onnx")
        rows.append(row)
    rows[2]["note"] = "int8 vs fp32: no verdict, timings too scattered (machine busy)"
    rows[8].update(status="failed", reason="could not be loaded by OpenVINO: " + "x" * 200)
    return {**result, "rows": rows}


def test_console_table_fits_a_terminal_and_the_files_keep_every_column(result):
    wide = _quickstart_like(result)
    table = format_table(wide, saved="runs/quickstart/bench.json")
    assert max(len(line) for line in table.splitlines()) <= MAX_WIDTH
    lines = table.splitlines()
    assert len([line for line in lines if line.startswith(("best.pt", "model.", "...", "cells"))]) == 9
    assert "all 24 columns: runs/quickstart/bench.json" in table and "p90 ms" not in lines[0]
    full = format_table(wide, wide=True)
    assert all(h in full.splitlines()[0] for h in ("p90 ms", "p99 ms", "iters", "img/s", "GMACs", "IoU"))
    header = next(csv.reader(io.StringIO(csv_text(wide))))
    for column in ("p50_ms", "p90_ms", "p99_ms", "min_ms", "mean_ms", "std_ms", "iterations", "throughput_ips",
                   "ratio_q25", "ratio_q75", "peak_rss_mb", "gpu_mem_mb", "file_mb", "parameters", "macs",
                   "mean_dice", "mean_iou", "status", "reason", "note"):
        assert column in header, column


@pytest.mark.slow
def test_cli_prints_the_short_table_and_says_where_every_column_is(onnx_file, tmp_path, cli):
    argv = ["bench", str(onnx_file), "--img-size", "32", "--num-images", "2", "--threads", "1", "--warmup", "1",
            "--min-time", "0.05", "--min-iters", "3", "--device", "cpu", "--no-progress"]
    saved = tmp_path / "bench.csv"
    result = cli(*argv, "--csv", str(saved))
    assert result.returncode == 0, result.stderr
    assert f"all 24 columns: {saved}" in result.stdout and "p90 ms" not in result.stdout
    assert "p90_ms" in saved.read_text().splitlines()[0]
    result = cli(*argv, "--wide", "--no-memory")
    assert result.returncode == 0, result.stderr
    assert "p90 ms" in result.stdout and "all 24 columns" not in result.stdout
    result = cli(*argv)
    assert "all 24 columns: --wide prints them, --csv/--json/--md F saves them" in result.stdout
