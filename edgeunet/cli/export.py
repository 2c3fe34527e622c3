"""``edgeunet export CKPT --out DIR``: verified ONNX (FP32, FP16, INT8) and TensorRT engines.

The option flags are made from the fields of ``ExportOptions`` (one place for each option and its
default). Exit codes: 0 success; 2 bad input, a missing dependency, or a failed check (parity,
Dice drop: DIR is left as it was); 1 a bug.
"""

from __future__ import annotations

import argparse
import sys

from .options import add_fields, deprecated_alias, field_values, positive_int

DESCRIPTION = """Exports a checkpoint to ONNX (FP32; FP16 and INT8 on request) and checks every file against
PyTorch on verification images that neither calibration nor the INT8 search saw: FP32 argmax agreement
>= 99.99 %, FP16 >= 99.5 %, INT8 Dice drop <= --max-dice-drop. A failed check exits with code 2 and leaves
an earlier export in DIR untouched. --formats adds OpenVINO, ExecuTorch, LiteRT and ORT-format files, checked the
same way through their runtimes; --formats auto times the runtimes installed here and ships the fastest."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..export.options import ExportOptions

    p = subparsers.add_parser("export", help="export a checkpoint to verified ONNX / INT8 / TensorRT",
                              description=DESCRIPTION)
    p.add_argument("checkpoint", help="best.pt or last.pt of a training or pruning run")
    p.add_argument("--out", required=True, help="output folder (replaced as a whole when every check passes)")
    p.add_argument("--recipe", help="deployment recipe: a .toml path or a shipped name "
                                    "(cpu-int8, phone-int8, jetson-orin-int8, desktop-gpu-fp16)")
    add_fields(p, ExportOptions, defaults_none=True)  # None: not given, so a --recipe value stands
    deprecated_alias(p, "--calib-size", "--calib-images", dest="calib_images", type=positive_int)
    deprecated_alias(p, "--search-size", "--search-img-size", dest="search_img_size", type=positive_int)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..export import ExportCheckError, export_model
    from ..export.options import ExportOptions
    from ..export.recipes import recipe_options

    options = recipe_options(args.recipe, field_values(args, ExportOptions))
    try:
        report = export_model(args.checkpoint, args.out, options, progress=not args.no_progress)
    except ExportCheckError as exc:
        print(f"edgeunet export: check failed: {exc} ({args.out} left as it was)", file=sys.stderr)
        return 2
    print_summary(report, args.out)
    return 0


def print_summary(report: dict, out: str) -> None:
    """Where the images came from, one line per artifact with size and parity, then the INT8 figures."""
    print(f"exported to {out}")
    print(f"  data: {report['data']['summary']}")
    for art in report["artifacts"]:
        line = f"  {art['file']:<22} {art['size_bytes'] / 1e6:8.2f} MB"
        par = art.get("parity")
        if par:
            ref = "fp32 onnx" if art.get("precision") == "int8" and art.get("format", "onnx") == "onnx" else "pytorch"
            line += f"  argmax agreement vs {ref} {par['argmax_agreement']:.4%}, max |diff| {par['max_abs_diff']:.3g}"
        print(line)
    quality = report.get("int8_quality")
    if quality and quality.get("dice_check") in ("passed", "failed"):
        print(f"  INT8 mean Dice {quality['int8']['mean_dice']:.4f} vs FP32 {quality['fp32']['mean_dice']:.4f} "
              f"(drop {quality['dice_drop']:.4f}, limit {quality['max_dice_drop']:g}) on {quality['count']} "
              "verification images that neither calibration nor the search saw")
    elif quality:
        print(f"WARNING: INT8 Dice check {quality['dice_check']}: give verification images with labelled objects "
              "(--val DIR)", file=sys.stderr)
    print_int8_speed(report)
    print_auto(report)
    print(f"  {report['where']}")
    if report.get("engine"):
        print(f"  trtexec equivalent: {report['engine']['trtexec']}")


def print_auto(report: dict) -> None:
    """The ``--formats auto`` comparison: one line per candidate, then what shipped and why."""
    auto = report.get("auto")
    if not auto:
        return
    print(f"  runtimes at {auto['size']} px, {auto['threads']} threads, interleaved (ratio > 1: faster than "
          "onnxruntime fp32):")
    for row in auto["candidates"]:
        if "ratio" in row:
            dice = "n/a" if row["dice"] is None else f"{row['dice']:.4f}"
            dice += "" if row["dice_drop"] is None else f" (drop {row['dice_drop']:+.4f})"
            print(f"    {row['candidate']:<18} {row['latency_ms']['p50']:8.2f} ms  x{row['ratio']:.2f} "
                  f"(x{row['ratio_q25']:.2f}-x{row['ratio_q75']:.2f})  Dice {dice}  {row['verdict_auto']}")
        else:
            print(f"    {row['candidate']:<18} {row['status']}: {row['reason']}")
    print(f"  shipped: {report['shipped']}" + (f" (open with precision {auto['hint']!r})" if auto["hint"] == "bf16"
                                               else "") + f": {auto['reason']}")


def print_int8_speed(report: dict) -> None:
    """The INT8 search's choice and the INT8 vs FP32 speed on this CPU; a loud warning unless INT8 is faster."""
    from ..export.speed import interval, speed_warning

    search = report.get("int8_search")
    if search:
        print(f"  INT8 search: {len(search['candidates'])} candidates in {search['seconds']:.0f} s at "
              f"{search['size']} px on {search['count']} search images, chosen {search['chosen']!r} "
              "(details in export.json)")
    speed = report.get("int8_speed")
    if not speed:
        return
    print(f"  INT8 {speed['int8_ms']:.1f} ms vs FP32 {speed['fp32_ms']:.1f} ms at {speed['size']} px on this CPU "
          f"({speed['threads']} threads): {interval(speed)}, {speed['verdict']}")
    if warning := speed_warning(speed):
        print(f"WARNING: {warning}", file=sys.stderr)
