"""``edgeunet export CKPT --out DIR``: verified ONNX (FP32, FP16, INT8) and TensorRT engines.

Exit codes: 0 success; 1 a verification check failed (parity, Dice drop) and DIR was left
as it was; 2 bad input or a missing dependency.
"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Exports a checkpoint to ONNX (FP32; FP16 and INT8 on request) and checks every file against
PyTorch on real images: FP32 argmax agreement >= 99.99 %, FP16 >= 99.5 %, INT8 Dice drop <= --max-dice-drop.
A failed check exits with code 1 and leaves an earlier export in DIR untouched."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="export a checkpoint to verified ONNX / INT8 / TensorRT", description=DESCRIPTION)
    p.add_argument("checkpoint", help="best.pt or last.pt of a training or pruning run")
    p.add_argument("--out", required=True, help="output folder (replaced as a whole when every check passes)")
    # Defaults of None tell which flags were given, so they override a --recipe.
    p.add_argument("--recipe", help="deployment recipe: a .toml path or a name in export/ (cpu-int8, jetson-orin-int8, desktop-gpu-fp16)")
    p.add_argument("--int8", action=argparse.BooleanOptionalAction, default=None, help="also write model.int8.onnx (QDQ, static quantization)")
    p.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None, help="also write model.fp16.onnx (float32 in and out)")
    p.add_argument("--calib", help="calibration and verification data: a folder with images/ and masks/, or 'synthetic' (default)")
    p.add_argument("--calib-size", type=int, help="number of calibration (and verification) images (default 32)")
    p.add_argument("--calib-method", choices=("minmax", "entropy", "percentile"), help="INT8 range calibration (default minmax)")
    p.add_argument("--target", choices=("cpu", "tensorrt"), help="INT8 flavour: cpu (uint8 activations) or tensorrt (symmetric int8); default cpu")
    p.add_argument("--reduce-range", action=argparse.BooleanOptionalAction, default=None,
                   help="7-bit INT8 weights for --target cpu (default: on for x86 CPUs without VNNI, where the export runs)")
    p.add_argument("--opset", type=int, help="ONNX opset (default 17)")
    p.add_argument("--img-size", type=int, help="fix H = W to this size (default: dynamic batch, height and width)")
    p.add_argument("--engine", action=argparse.BooleanOptionalAction, default=None, help="also build a TensorRT engine (needs TensorRT and a GPU)")
    p.add_argument("--max-dice-drop", type=float, help="largest allowed FP32 - INT8 mean Dice (default 0.01)")
    p.add_argument("--int8-search", action=argparse.BooleanOptionalAction, default=None,
                   help="choose per layer group what to quantize by timing candidates on ONNX Runtime on this CPU and checking "
                        "their Dice (default: on for --target cpu)")
    p.add_argument("--search-time", type=float, default=None, help="seconds after which the INT8 search starts no more candidates (default 75)")
    p.add_argument("--search-size", type=int, default=None, help="image side (px) the INT8 search times (default: --img-size, else 256)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..export import ExportCheckError, export_model
    from ..export.recipes import check_recipe, load_recipe, merge_options

    recipe = load_recipe(args.recipe) if args.recipe else {}
    given = {k: getattr(args, k) for k in ("int8", "fp16", "calib", "calib_size", "calib_method", "target", "reduce_range",
                                           "opset", "img_size", "engine", "max_dice_drop", "int8_search", "search_time", "search_size")}
    options = check_recipe(merge_options(recipe, given), "options")
    try:
        report = export_model(args.checkpoint, args.out, progress=not args.no_progress, **options)
    except ExportCheckError as exc:
        print(f"edgeunet export: check failed: {exc} ({args.out} left as it was)", file=sys.stderr)
        return 1
    print_summary(report, args.out)
    return 0


def print_summary(report: dict, out: str) -> None:
    """One line per artifact with size and parity, then the INT8 quality figures."""
    print(f"exported to {out}")
    for art in report["artifacts"]:
        line = f"  {art['file']:<22} {art['size_bytes'] / 1e6:8.2f} MB"
        par = art.get("parity")
        if par:
            ref = "fp32 onnx" if art.get("precision") == "int8" else "pytorch"
            line += f"  argmax agreement vs {ref} {par['argmax_agreement']:.4%}, max |diff| {par['max_abs_diff']:.3g}"
        print(line)
    quality = report.get("int8_quality")
    if quality and quality.get("dice_drop") is not None:
        print(f"  INT8 mean Dice {quality['int8']['mean_dice']:.4f} vs FP32 {quality['fp32']['mean_dice']:.4f} "
              f"(drop {quality['dice_drop']:.4f}, limit {quality['max_dice_drop']:g})")
    print_int8_speed(report)
    if report.get("engine"):
        print(f"  trtexec equivalent: {report['engine']['trtexec']}")


def print_int8_speed(report: dict) -> None:
    """The INT8 search's choice and the INT8 vs FP32 speed on this CPU; a loud warning when INT8 is slower."""
    search = report.get("int8_search")
    if search:
        print(f"  INT8 search: {len(search['candidates'])} candidates in {search['seconds']:.0f} s at {search['size']} px, "
              f"chosen {search['chosen']!r} (details in export.json)")
    speed = report.get("int8_speed")
    if not speed:
        return
    print(f"  INT8 {speed['int8_ms']:.1f} ms vs FP32 {speed['fp32_ms']:.1f} ms at {speed['size']} px on this CPU "
          f"({speed['threads']} threads): x{speed['speedup']:.2f}")
    if not report.get("int8_faster_than_fp32", True):
        print(f"WARNING: model.int8.onnx is SLOWER than model.onnx on this CPU (x{speed['speedup']:.2f}); "
              "deploy model.onnx here, or use INT8 only where it measures faster (e.g. a CPU with VNNI)", file=sys.stderr)
