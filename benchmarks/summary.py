"""The suite's summary: one line per variant with size, accuracy, latency and INT8 speed-ups.

The bench result has one row per (file, size); ``summary_rows`` folds them back into variants
through the file paths of the build records, and ``format_summary`` writes the Markdown table
that docs/benchmarks.md and benchmarks/README.md show (``benchmarks/tables.py`` puts it there). Speed-ups
are taken round by round from the interleaved timing (``edgeunet.bench.ratios.pair_ratio``: median of per-round
FP32 / INT8 time with its quartiles), so a busy machine widens the interval instead of moving
the figure; a ratio too scattered for a verdict is marked ``?``.
"""

from __future__ import annotations

import math
from pathlib import Path

from edgeunet.bench.ratios import pair_ratio, ratio_text

KIND_TITLES = {"torch-fp32": "torch", "onnx-fp32": "ORT FP32", "onnx-int8": "ORT INT8", "pruned-int8": "pruned INT8"}


def _kind_of_path(records: list[dict]) -> dict[str, tuple[str, str]]:
    """Bench row path -> (variant label, kind)."""
    return {str(Path(path)): (record["label"], kind) for record in records for kind, path in record["files"].items()}


def _speedup(rows_by_kind: dict[str, list[dict]], size: int, kind: str) -> dict | None:
    """ORT FP32 time / ``kind`` time at ``size`` (per round when both were interleaved), or None."""
    def at(k):
        return next((r for r in rows_by_kind[k] if r["size"] == size and r.get("latency_ms")), None)

    fp32, other = at("onnx-fp32"), at(kind)
    return pair_ratio(fp32, other) if fp32 and other else None


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
        ``int8_speedup`` and ``pruned_int8_speedup`` ({size: ORT FP32 / INT8 speed ratio}),
        ``speedups`` ({size: {"onnx-int8" | "pruned-int8": ``pair_ratio`` dict}}: interval, noisy) and
        ``problems`` (stage errors and bench rows that are not ok).
    """
    where = _kind_of_path(records)
    sizes = sorted(result["settings"]["sizes"])
    lines = []
    for record in records:
        rows = [r for r in result["rows"]
                if where.get(str(Path(r["path"])), ("", ""))[0] == record["label"] and r["batch"] == 1]
        by_kind = {kind: [r for r in rows if where[str(Path(r["path"]))][1] == kind] for kind in KIND_TITLES}
        fp32 = by_kind["onnx-fp32"] or by_kind["torch-fp32"]
        costed = next((r for r in fp32 if r["size"] == sizes[0] and r["parameters"] is not None), None)
        p50 = {s: {kind: next((r["latency_ms"]["p50"] for r in by_kind[kind] if r["size"] == s and r["latency_ms"]),
                              None)
                   for kind in KIND_TITLES} for s in sizes}
        speedups = {s: {kind: _speedup(by_kind, s, kind) for kind in ("onnx-int8", "pruned-int8")} for s in sizes}
        lines.append({
            "variant": record["label"],
            "parameters": costed["parameters"] if costed else record.get("parameters"),
            "macs": costed["macs"] if costed else record.get("macs"),
            "macs_size": sizes[0],
            "dice": {kind: next((r["mean_dice"] for r in by_kind[kind] if r["mean_dice"] is not None),
                                None) for kind in KIND_TITLES},
            "p50_ms": p50,
            "int8_speedup": {s: (speedups[s]["onnx-int8"] or {}).get("ratio") for s in sizes},
            "pruned_int8_speedup": {s: (speedups[s]["pruned-int8"] or {}).get("ratio") for s in sizes},
            "speedups": speedups,
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
            detail = line.get("speedups", {}).get(s) or {}
            cells += [ratio_text(detail.get("onnx-int8")), ratio_text(detail.get("pruned-int8"))]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    interleaved = any((ratio or {}).get("rounds") for line in lines for by_kind in line.get("speedups", {}).values()
                      for ratio in by_kind.values())
    how = ("ORT FP32 time / INT8 time, median over interleaved rounds [quartiles] (above 1: INT8 is faster; "
           "? = too scattered for a verdict)" if interleaved else "ORT FP32 p50 / INT8 p50 (above 1: INT8 is faster)")
    out += ["", f"p50 latency (ms) of one image (batch 1); INT8 x = {how}. "
            "Dice FP32 is ONNX Runtime's (PyTorch's where there is no ONNX file)."]
    for label, note in (notes or {}).items():
        out.append(f"- {label}: {note}")
    problems = [f"- {line['variant']}: {p}" for line in lines for p in line["problems"]]
    if problems:
        out += ["", "Problems:", *problems]
    return "\n".join(out) + "\n"


def runtime_rows(result: dict, records: list[dict]) -> list[dict]:
    """One line per runtime file of the variants built with ``runtimes`` (plus their ORT FP32 and INT8 files).

    Returns:
        Dicts with ``variant``, ``file``, ``backend``, ``precision``, ``dice``, ``p50_ms`` ({size: ms}) and
        ``vs_ort_fp32`` ({size: ``pair_ratio`` of the variant's own ORT FP32 row over this one}).
    """
    sizes = sorted(result["settings"]["sizes"])
    by_path: dict[str, list[dict]] = {}
    for r in result["rows"]:
        if r["batch"] == 1:
            by_path.setdefault(str(Path(r["path"])), []).append(r)
    lines = []
    for record in records:
        if not record.get("runtime_files") or "onnx-fp32" not in record["files"]:
            continue
        ort = by_path.get(str(Path(record["files"]["onnx-fp32"])), [])
        own = [record["files"][k] for k in ("onnx-fp32", "onnx-int8") if k in record["files"]]
        for path in own + record["runtime_files"]:
            rows = by_path.get(str(Path(path)), [])
            if not rows:
                continue
            at = {r["size"]: r for r in rows if r.get("latency_ms")}
            ref = {r["size"]: r for r in ort if r.get("latency_ms")}
            lines.append({"variant": record["label"], "file": Path(path).parent.name + "/" + Path(path).name,
                          "backend": rows[0]["backend"], "precision": rows[0]["precision"],
                          "dice": rows[0]["mean_dice"],
                          "p50_ms": {s: at[s]["latency_ms"]["p50"] if s in at else None for s in sizes},
                          "vs_ort_fp32": {s: pair_ratio(ref[s], at[s]) if s in at and s in ref else None
                                          for s in sizes}})
    return lines


def format_runtimes(lines: list[dict], sizes: list[int]) -> str:
    """The runtimes table of the summary ("" without runtime rows): p50 and the speed-up over the same
    variant's ORT FP32 file, per size."""
    if not lines:
        return ""
    sizes = sorted(sizes)
    head = ["variant", "file", "runtime", "precision", "Dice"]
    head += [c for s in sizes for c in (f"ms@{s}", f"x ORT FP32@{s}")]
    out = ["", "Runtimes (the same trained model through each runtime):", "",
           "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for line in lines:
        cells = [line["variant"], f"`{line['file']}`", line["backend"], line["precision"], _cell(line["dice"], ".4f")]
        for s in sizes:
            cells += [_cell(line["p50_ms"][s], ".1f"), ratio_text(line["vs_ort_fp32"][s])]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "x ORT FP32 = the variant's ONNX Runtime FP32 time / this file's time, median over interleaved "
            "rounds [quartiles]; `-`: not timed at that size (LiteRT files take one fixed size)."]
    return "\n".join(out) + "\n"
