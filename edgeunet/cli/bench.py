"""``edgeunet bench``: a thin shell over ``edgeunet.bench.run_bench`` and its writers and gate."""

from __future__ import annotations

import argparse


def int_list(text: str) -> list[int]:
    """``"256,512"`` -> [256, 512]; argparse reports anything else in one line."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive integers, e.g. 256,512")
    return [int(p) for p in parts]


def name_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="latency, throughput, memory and Dice of checkpoints, ONNX files and engines",
                       description="Benchmark models on this machine: .pt with PyTorch, .onnx with ONNX Runtime, .engine with "
                                   "TensorRT. Prints a table; writes JSON, CSV, Markdown and a Pareto plot when asked. "
                                   "Exit code 1 when a row failed, failed the accuracy gate, or regressed against --baseline.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="best.pt, model.onnx, model.int8.onnx, model.engine, ...")
    p.add_argument("--data", default="synthetic", help="DIR with images/ and masks/ (val/ when split), or 'synthetic' (default)")
    p.add_argument("--n-images", type=int, default=16, help="images for Dice/IoU, the same for every model (default 16)")
    p.add_argument("--sizes", type=int_list, default=[256], help="square input sides to time, e.g. 256,512 (default 256)")
    p.add_argument("--batch", type=int_list, default=[1], help="batch sizes to time, e.g. 1,8 (default 1)")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch and ONNX Runtime (default: all usable cores)")
    p.add_argument("--backends", type=name_list, help="only these backends: torch,onnxruntime,tensorrt (default all)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="PyTorch / ONNX Runtime device (default auto)")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations per row (default 5)")
    p.add_argument("--min-time", type=float, default=1.0, help="time each row for at least S seconds (default 1.0)")
    p.add_argument("--min-iters", type=int, default=10, help="and at least N iterations (default 10)")
    p.add_argument("--json", metavar="F", help="write the full result as JSON (the --baseline of a later run)")
    p.add_argument("--csv", metavar="F", help="write the rows as CSV")
    p.add_argument("--md", metavar="F", help="write a Markdown table")
    p.add_argument("--plot", metavar="F.png", help="write a Pareto plot (latency vs Dice)")
    p.add_argument("--baseline", metavar="F.json", help="compare with an earlier --json result; exit 1 on regressions")
    p.add_argument("--max-slowdown", type=float, default=1.10, help="largest allowed p50 ratio to the baseline (default 1.10)")
    p.add_argument("--max-dice-drop", type=float, default=0.01,
                   help="largest allowed mean Dice loss vs the baseline and vs the FP32 sibling (default 0.01)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench import (check_gate_settings, compare_to_baseline, format_table, load_baseline, run_bench, save_pareto_plot, unmatched_rows, write_csv,
                         write_json, write_markdown)

    check_gate_settings(args.max_slowdown, args.max_dice_drop)
    baseline = load_baseline(args.baseline) if args.baseline else None  # a bad baseline fails before the long run
    result = run_bench(args.models, data=args.data, n_images=args.n_images, sizes=args.sizes, batches=args.batch,
                       threads=args.threads, backends=args.backends, warmup=args.warmup, min_time=args.min_time,
                       min_iters=args.min_iters, max_dice_drop=args.max_dice_drop, device=args.device, progress=args.progress)
    print(format_table(result))
    for path, writer in ((args.json, write_json), (args.csv, write_csv), (args.md, write_markdown), (args.plot, save_pareto_plot)):
        if path:
            print(f"wrote {writer(result, path)}")
    problems = [f"{r['status']}: {r['model']} {r['precision']} {r['backend']} {r['size']}px batch {r['batch']}: {r['reason']}"
                for r in result["rows"] if r["status"] in ("failed", "accuracy-gate")]
    if baseline is not None:
        for line in unmatched_rows(result, baseline):
            print(f"baseline: {line}")
        problems += [f"regression: {line}" for line in compare_to_baseline(result, baseline, args.max_slowdown, args.max_dice_drop)]
    for line in problems:
        print(line)
    ok = sum(r["status"] == "ok" for r in result["rows"])
    print(f"{ok} of {len(result['rows'])} rows ok; {len(problems)} problem(s)")
    return 1 if problems else 0
