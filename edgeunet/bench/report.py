"""Bench results as a terminal table, JSON, CSV and Markdown; every file is written atomically."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

_LAT = ("p50", "p90", "p99", "mean", "std")


def _num(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _padded(values: list | None, length: int) -> list:
    values = list(values or [])
    return values + [None] * (length - len(values))


def _columns() -> list[tuple[str, object]]:
    """(header, function of a row -> cell text) for the table and Markdown."""
    lat = [(f"{k} ms", lambda r, k=k: _num((r["latency_ms"] or {}).get(k), 3)) for k in _LAT]
    return [
        ("model", lambda r: r["model"]), ("prec", lambda r: r["precision"]), ("backend", lambda r: r["backend"]),
        ("dev", lambda r: r["device"]), ("size", lambda r: str(r["size"])), ("batch", lambda r: str(r["batch"])), *lat,
        ("iters", lambda r: str(r["iterations"])), ("img/s", lambda r: _num(r["throughput_ips"], 1)),
        ("RSS MB", lambda r: _num(r["peak_rss_mb"], 1)), ("GPU MB", lambda r: _num(r["gpu_mem_mb"], 1)),
        ("file MB", lambda r: _num(r["file_mb"], 2)),
        ("params M", lambda r: _num(r["parameters"] / 1e6 if r["parameters"] is not None else None, 3)),
        ("GMACs", lambda r: _num(r["macs"] / 1e9 if r["macs"] is not None else None, 3)),
        ("Dice", lambda r: _num(r["mean_dice"], 4)), ("IoU", lambda r: _num(r["mean_iou"], 4)),
        ("status", lambda r: r["status"]), ("reason / note", lambda r: "; ".join(t for t in (r["reason"], r["note"]) if t)),
    ]


def table_cells(result: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and text cells of the result table, one line per row."""
    columns = _columns()
    return [h for h, _ in columns], [[fn(row) for _, fn in columns] for row in result["rows"]]


def environment_line(result: dict) -> str:
    """One line: CPU, cores, threads, GPU and main versions."""
    env, versions = result["environment"], result["environment"].get("versions", {})
    gpu = env.get("gpu") or {}
    parts = [f"CPU {env['cpu']['model']} ({env['cpu']['usable_cores']} usable cores)", f"threads {env.get('threads')}",
             f"GPU {gpu.get('name', 'none')}"]
    parts += [f"{name} {versions[name]}" for name in ("torch", "onnxruntime", "tensorrt") if name in versions]
    return ", ".join(parts)


def format_table(result: dict) -> str:
    """The result as a plain-text table with aligned columns (numbers right-aligned)."""
    headers, cells = table_cells(result)
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    left = {0, 1, 2, 3, len(headers) - 2, len(headers) - 1}

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    out = [line(headers), line(["-" * w for w in widths])] + [line(c) for c in cells]
    return "\n".join(out + ["", environment_line(result)])


def format_markdown(result: dict) -> str:
    """The result as a Markdown table, preceded by the environment and settings."""
    headers, cells = table_cells(result)
    settings = result["settings"]
    esc = lambda text: text.replace("|", "\\|")  # noqa: E731 - a cell escape, used only here
    lines = [f"Environment: {environment_line(result)}", "",
             f"Settings: data {settings['data']} ({settings['n_images']} images), warm-up {settings['warmup']}, "
             f"at least {settings['min_time']} s and {settings['min_iters']} iterations per row", "",
             "| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def csv_text(result: dict) -> str:
    """One CSV line per row: flat latency columns and one column per class for Dice and IoU."""
    num_classes = max((len(r["dice"]) for r in result["rows"] if r["dice"]), default=0)
    scalar = ["model", "path", "precision", "backend", "device", "size", "batch"]
    tail = ["iterations", "throughput_ips", "peak_rss_mb", "gpu_mem_mb", "file_mb", "parameters", "macs", "mean_dice", "mean_iou",
            "status", "reason", "note"]
    header = scalar + [f"{k}_ms" for k in _LAT] + tail + [f"dice_{i}" for i in range(num_classes)] + [f"iou_{i}" for i in range(num_classes)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for r in result["rows"]:
        latency = r["latency_ms"] or {}
        values = [r[k] for k in scalar] + [latency.get(k) for k in _LAT] + [r[k] for k in tail]
        values += _padded(r["dice"], num_classes) + _padded(r["iou"], num_classes)
        writer.writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def _clean(value):
    """NaN and infinities become None so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def json_text(result: dict) -> str:
    return json.dumps(_clean(result), indent=2, default=str) + "\n"


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Writes ``data`` to a temporary file next to ``path``, then renames it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(result: dict, path: str | os.PathLike) -> Path:
    """Writes the full result (environment, settings, rows) as strict JSON."""
    return write_atomic(path, json_text(result))


def write_csv(result: dict, path: str | os.PathLike) -> Path:
    return write_atomic(path, csv_text(result))


def write_markdown(result: dict, path: str | os.PathLike) -> Path:
    return write_atomic(path, format_markdown(result))
