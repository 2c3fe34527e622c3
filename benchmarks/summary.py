"""The suite's summary: one line per variant with size, accuracy, latency and INT8 speed-ups.

The bench result has one row per (file, size); ``summary_rows`` folds them back into variants
through the file paths of the build records, and ``format_summary`` writes the Markdown table
that README.md shows.
"""

from __future__ import annotations

import math
from pathlib import Path

KIND_TITLES = {"torch-fp32": "torch", "onnx-fp32": "ORT FP32", "onnx-int8": "ORT INT8", "pruned-int8": "pruned INT8"}


def _kind_of_path(records: list[dict]) -> dict[str, tuple[str, str]]:
    """Bench row path -> (variant label, kind)."""
    return {str(Path(path)): (record["label"], kind) for record in records for kind, path in record["files"].items()}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _problems(record: dict, rows: list[dict]) -> list[str]:
    """Stage errors of the build, then bench rows whose status is not ok."""
    out = [f"{stage} failed: {reason}" for stage, reason in record["errors"].items()]
    for r in rows:
        if r["status"] != "ok":
            out.append(f"{r['model']} at {r['size']} px: {r['status']}: {r['reason']}")
    return out


def summary_rows(result: dict, records: list[dict]) -> list[dict]:
    """One summary line per build record, in record order.

    Args:
        result: ``run_bench`` result over the records' files (batch 1).
        records: ``build.build_variant`` / ``monai_reference.build_reference`` records.

    Returns:
        Dicts with ``variant``, ``parameters``, ``macs`` (one forward at ``macs_size`` px),
        ``macs_size``, ``dice`` ({kind: mean Dice}), ``p50_ms`` ({size: {kind: p50 ms}}),
        ``int8_speedup`` and ``pruned_int8_speedup`` ({size: ORT FP32 p50 / INT8 p50}) and
        ``problems`` (stage errors and bench rows that are not ok).
    """
    where = _kind_of_path(records)
    sizes = sorted(result["settings"]["sizes"])
    lines = []
    for record in records:
        rows = [r for r in result["rows"] if where.get(str(Path(r["path"])), ("", ""))[0] == record["label"] and r["batch"] == 1]
        by_kind = {kind: [r for r in rows if where[str(Path(r["path"]))][1] == kind] for kind in KIND_TITLES}
        fp32 = by_kind["onnx-fp32"] or by_kind["torch-fp32"]
        costed = next((r for r in fp32 if r["size"] == sizes[0] and r["parameters"] is not None), None)
        p50 = {s: {kind: next((r["latency_ms"]["p50"] for r in by_kind[kind] if r["size"] == s and r["latency_ms"]), None)
                   for kind in KIND_TITLES} for s in sizes}
        lines.append({
            "variant": record["label"],
            "parameters": costed["parameters"] if costed else record.get("parameters"),
            "macs": costed["macs"] if costed else record.get("macs"),
            "macs_size": sizes[0],
            "dice": {kind: next((r["mean_dice"] for r in by_kind[kind] if r["mean_dice"] is not None), None) for kind in KIND_TITLES},
            "p50_ms": p50,
            "int8_speedup": {s: _ratio(p50[s]["onnx-fp32"], p50[s]["onnx-int8"]) for s in sizes},
            "pruned_int8_speedup": {s: _ratio(p50[s]["onnx-fp32"], p50[s]["pruned-int8"]) for s in sizes},
            "problems": _problems(record, rows),
        })
    return lines


def _first(*values):
    return next((v for v in values if v is not None), None)


def _cell(value: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, fmt)


def summary_headers(sizes: list[int], macs_size: int) -> list[str]:
    """Column titles of the summary table."""
    head = ["variant", "params M", f"GMACs@{macs_size}", "Dice FP32", "Dice INT8", "Dice pruned INT8"]
    for s in sizes:
        head += [f"{title} ms@{s}" for title in KIND_TITLES.values()] + [f"INT8 x@{s}", f"pruned INT8 x@{s}"]
    return head


def format_summary(lines: list[dict], sizes: list[int], notes: dict[str, str] | None = None) -> str:
    """The summary as Markdown: the table (p50 latency at batch 1), then notes and problems.

    Args:
        lines: ``summary_rows`` output.
        sizes: Timed sizes (px), ascending.
        notes: Variant label -> what the row stands for, listed under the table.
    """
    sizes = sorted(sizes)
    headers = summary_headers(sizes, sizes[0])
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for line in lines:
        cells = [line["variant"], _cell(line["parameters"] / 1e6 if line["parameters"] is not None else None, ".3f"),
                 _cell(line["macs"] / 1e9 if line["macs"] is not None else None, ".2f"),
                 _cell(_first(line["dice"]["onnx-fp32"], line["dice"]["torch-fp32"]), ".4f"),
                 _cell(line["dice"]["onnx-int8"], ".4f"), _cell(line["dice"]["pruned-int8"], ".4f")]
        for s in sizes:
            cells += [_cell(line["p50_ms"][s][kind], ".1f") for kind in KIND_TITLES]
            cells += [_cell(line["int8_speedup"][s], ".2f"), _cell(line["pruned_int8_speedup"][s], ".2f")]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out += ["", "p50 latency (ms) of one image (batch 1); INT8 x = ORT FP32 p50 / INT8 p50 (above 1: INT8 is faster). "
            "Dice FP32 is ONNX Runtime's (PyTorch's where there is no ONNX file)."]
    for label, note in (notes or {}).items():
        out.append(f"- {label}: {note}")
    problems = [f"- {line['variant']}: {p}" for line in lines for p in line["problems"]]
    if problems:
        out += ["", "Problems:", *problems]
    return "\n".join(out) + "\n"
