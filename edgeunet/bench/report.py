"""Bench results as a terminal table, JSON, CSV and Markdown; every file is written atomically (``edgeunet.atomic``).

The terminal table shows the columns that decide (``SHORT``: model, precision, backend, shape, p50,
speed, memory, size, Dice, status) in at most ``MAX_WIDTH`` characters; ``format_table(wide=True)``,
the Markdown, CSV and JSON hold every column. The speed column ``x ref`` is each row's ratio to its
reference row, taken round by round (``ratio [q25-q75]``; above 1: faster than the reference); ``?``
marks a row whose timings were too scattered for a verdict. ``process MB`` is the peak RSS of a fresh
process that opens the file with its runtime and runs it at the row's shape (``memory.process_peak_rss_mb``;
``-`` where it is not measured). ``verdict_lines`` says in words what the ratios show, or that the
machine was too busy to tell.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from .. import atomic
from .ratios import ratio_text, row_ratio

_LAT = ("p50", "p90", "p99", "min", "mean", "std")
MAX_WIDTH = 120  # characters of the terminal table's widest line
# The columns the terminal shows (headers of ``_columns``); the last one is cut to fit MAX_WIDTH.
SHORT = ("model", "prec", "backend", "size", "batch", "p50 ms", "x ref", "process MB", "file MB", "Dice", "status")
MEMORY_NOTE = "process MB: peak RSS of a fresh process running the file"


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
        ("x ref", lambda r: "ref" if r.get("verdict") == "reference" else ratio_text(row_ratio(r))),
        ("process MB", lambda r: _num(r["peak_rss_mb"], 1)), ("GPU MB", lambda r: _num(r["gpu_mem_mb"], 1)),
        ("file MB", lambda r: _num(r["file_mb"], 2)),
        ("params M", lambda r: _num(r["parameters"] / 1e6 if r["parameters"] is not None else None, 3)),
        ("GMACs", lambda r: _num(r["macs"] / 1e9 if r["macs"] is not None else None, 3)),
        ("Dice", lambda r: _num(r["mean_dice"], 4)), ("IoU", lambda r: _num(r["mean_iou"], 4)),
        ("status", lambda r: r["status"]),
        ("reason / note", _note),
    ]


def _note(row: dict) -> str:
    return "; ".join(t for t in (row["reason"], row["note"]) if t)


def _speed(row: dict) -> str:
    """The ratio to the reference row without its interval (which the files hold): ``1.62``, ``1.62?`` when noisy."""
    if row.get("verdict") == "reference":
        return "ref"
    ratio = row_ratio(row)
    return "-" if ratio is None else f"{ratio['ratio']:.2f}{'?' if ratio.get('noisy') else ''}"


def _short_columns() -> list[tuple[str, object]]:
    """``SHORT``, with the speed as a bare ratio and the status followed by the reason or note."""
    columns = dict(_columns())
    columns["x ref"] = _speed
    columns["status"] = lambda r: ": ".join(t for t in (r["status"], _note(r)) if t)
    return [(header, columns[header]) for header in SHORT]


def table_cells(result: dict, wide: bool = True) -> tuple[list[str], list[list[str]]]:
    """Headers and text cells of the result table, one line per row: every column, or ``SHORT`` ones."""
    columns = _columns() if wide else _short_columns()
    return [h for h, _ in columns], [[fn(row) for _, fn in columns] for row in result["rows"]]


def environment_line(result: dict, short: bool = False) -> str:
    """One line: edgeunet version and commit, CPU with its ISA flags, cores, threads, GPU and main versions;
    ``short``: without the ISA flags and the libraries not installed, in at most ``MAX_WIDTH`` characters."""
    env = result["environment"]
    versions = env.get("versions", {})
    gpu, cpu = env.get("gpu") or {}, env["cpu"]
    version = env.get("edgeunet") or versions.get("edgeunet", "?")
    commit = env.get("commit") or ""
    commit = f" ({commit[:12]}{'+dirty' if commit.endswith('+dirty') else ''})" if commit else ""
    flags = f", {' '.join(cpu['flags'])}" if cpu.get("flags") and not short else ""
    cores = f"{cpu['usable_cores']} {'cores' if short else 'usable cores'}"
    parts = [f"edgeunet {version}{commit}", f"CPU {cpu['model']} ({cores}{flags})",
             f"threads {env.get('threads')}", f"GPU {gpu.get('name', 'none')}"]
    parts += [f"{name} {versions[name]}" for name in ("torch", "onnxruntime", "tensorrt")
              if name in versions and not (short and versions[name] == "not installed")]
    line = ", ".join(parts)
    return _cut(line, MAX_WIDTH) if short else line


def _cut(text: str, width: int, keep_end: bool = False) -> str:
    """``text`` in at most ``width`` characters, ``...`` marking the cut (at the start with ``keep_end``)."""
    if len(text) <= width:
        return text
    return "..." + text[len(text) - width + 3:] if keep_end else text[:width - 3] + "..."


def _fit(headers: list[str], cells: list[list[str]], limit: int) -> list[list[str]]:
    """Cuts the last column (status and reason), then the model labels (keeping their ends: the precision and
    suffix), so that the lines fit ``limit`` characters."""
    def width() -> int:
        return sum(max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)) + 2 * (len(headers) - 1)

    last = len(headers) - 1
    for column, floor, keep_end in ((last, 16, False), (0, 20, True)):
        over = width() - limit
        longest = max([len(headers[column])] + [len(c[column]) for c in cells])
        if over > 0 and longest > floor:
            room = max(floor, longest - over)
            cells = [[_cut(v, room, keep_end) if i == column else v for i, v in enumerate(c)] for c in cells]
    return cells


def format_table(result: dict, wide: bool = False, saved: str | None = None) -> str:
    """The result as a plain-text table with aligned columns (numbers right-aligned), then the environment.

    Args:
        result: From ``run_bench``.
        wide: Every column; by default the ``SHORT`` ones, in at most ``MAX_WIDTH`` characters.
        saved: Where every column is (a file written, or how to get them): a line under a short table says
            so and what ``process MB`` measures.
    """
    headers, cells = table_cells(result, wide)
    if not wide:
        cells = _fit(headers, cells, MAX_WIDTH)
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    left = {0, 1, 2, 3, len(headers) - 2, len(headers) - 1} if wide else {0, 1, 2, len(headers) - 1}

    def line(values: list[str]) -> str:
        cells = (v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))
        return "  ".join(cells).rstrip()

    from .volumes import volume_lines

    out = [line(headers), line(["-" * w for w in widths])] + [line(c) for c in cells]
    volumes = volume_lines(result["rows"])
    note = [] if saved is None or wide else [f"{MEMORY_NOTE}; all {len(_columns())} columns: {saved}"]
    if note and len(note[0]) > MAX_WIDTH:
        note = [MEMORY_NOTE, f"all {len(_columns())} columns: {saved}"]
    return "\n".join(out + ([""] + volumes if volumes else []) + [""] + note + [environment_line(result, not wide)])


def format_markdown(result: dict) -> str:
    """The result as a Markdown table, preceded by the environment and settings."""
    headers, cells = table_cells(result)
    settings = result["settings"]
    esc = lambda text: text.replace("|", "\\|")  # noqa: E731 - a cell escape, used only here
    images = settings.get("num_images", settings.get("n_images"))
    lines = [f"Environment: {environment_line(result)}", "",
             f"Settings: data {settings['data']} ({images} images), warm-up {settings['warmup']}, "
             f"rows of each size and batch timed round-robin, at least {settings['min_time']} s and "
             f"{settings['min_iters']} rounds per row; x ref = speed relative to the reference row "
             "(median of per-round ratios [quartiles]; ? = too scattered for a verdict); process MB = peak RSS of a "
             "fresh process that opens the file with its runtime and runs it at the row's shape", "",
             "| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def csv_text(result: dict) -> str:
    """One CSV line per row: flat latency columns and one column per class for Dice and IoU."""
    num_classes = max((len(r["dice"]) for r in result["rows"] if r["dice"]), default=0)
    scalar = ["model", "path", "precision", "backend", "device", "size", "batch"]
    tail = ["iterations", "throughput_ips", "reference", "ratio", "ratio_q25", "ratio_q75", "noisy", "verdict",
            "peak_rss_mb", "gpu_mem_mb", "file_mb", "parameters", "macs", "mean_dice", "mean_iou", "status", "reason",
            "note"]
    header = (scalar + [f"{k}_ms" for k in _LAT] + tail + [f"dice_{i}" for i in range(num_classes)]
              + [f"iou_{i}" for i in range(num_classes)])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for r in result["rows"]:
        latency = r["latency_ms"] or {}
        values = [r.get(k) for k in scalar] + [latency.get(k) for k in _LAT] + [r.get(k) for k in tail]
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


def _verdict_line(row: dict) -> str:
    where, ref = f"{row['model']} {row['size']}px batch {row['batch']}", row["reference"]
    low, mid, high = row["ratio_q25"], row["ratio"], row["ratio_q75"]
    if row.get("noisy"):
        return f"{where}: no verdict against {ref}: timings too scattered"
    if row["verdict"] == "faster":
        return f"{where}: {mid:.2f}x faster than {ref} [{low:.2f}-{high:.2f}]"
    if row["verdict"] == "slower":
        return f"{where}: {1 / mid:.2f}x slower than {ref} [{1 / high:.2f}-{1 / low:.2f}]"
    return f"{where}: as fast as {ref} (x{mid:.2f} [{low:.2f}-{high:.2f}])"


def verdict_lines(result: dict) -> list[str]:
    """What the ratios say, one line per timed row that is not a reference, then a line when the machine was busy.

    Example: ``"model.int8.onnx 256px batch 1: 1.62x faster than model.onnx [1.55-1.70]"``.
    """
    rows = [r for r in result["rows"] if r.get("latency_ms") and r.get("ratio") is not None
            and r.get("verdict") not in ("reference", "")]
    lines = [_verdict_line(r) for r in rows]
    noisy = sum(bool(r.get("noisy")) for r in rows)
    if noisy:
        lines.append(f"the machine was too busy for a verdict on {noisy} of {len(rows)} row(s): "
                     "rerun on an idle machine or with a longer --min-time")
    return lines


def check_output_path(path: str | os.PathLike, flag: str) -> Path:
    """Raises UserError when ``path`` could not be written, before any long run: a folder, or a location that is
    not writable (the nearest existing folder above it decides). Nothing is created."""
    from ..errors import UserError

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder: give a file path (in that folder or elsewhere)")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"{flag} {path}: {folder} is a file, not a folder: choose another location")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: {folder} is not writable: choose a writable location")
    return path


def write_json(result: dict, path: str | os.PathLike) -> Path:
    """Writes the full result (environment, settings, rows) as strict JSON."""
    return atomic.write_text(path, json_text(result))


def write_csv(result: dict, path: str | os.PathLike) -> Path:
    return atomic.write_text(path, csv_text(result))


def write_markdown(result: dict, path: str | os.PathLike) -> Path:
    return atomic.write_text(path, format_markdown(result))
