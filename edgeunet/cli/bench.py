"""``edgeunet bench``: a thin shell over ``edgeunet.bench.run_bench`` and its writers and gate.

Defaults come from ``BenchSettings`` and ``TimingSettings``; old spellings (``--sizes``,
``--batch``, ``--n-images``) stay as hidden aliases for a release.
"""

from __future__ import annotations

import argparse

from ..bench.settings import BenchSettings
from ..runtime.session import SPINNING
from ..timing import TimingSettings
from .options import (
    deprecated_alias,
    field_default,
    finite_float,
    int_list,
    name_list,
    nonnegative_float,
    nonnegative_int,
    positive_int,
)

__all__ = ["add_parser", "int_list", "run"]

OUTPUTS = (("json", "--json"), ("csv", "--csv"), ("md", "--md"), ("plot", "--plot"))


def _sizes_text(values) -> str:
    return ",".join(map(str, values))


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="latency, throughput, memory and Dice of checkpoints, ONNX files and engines",
                       description="Benchmark models on this machine with the backends that ship them: .pt with "
                                   "PyTorch, .onnx with ONNX Runtime, .engine with TensorRT. The rows of each size and "
                                   "batch are timed round-robin, with speed ratios to a reference row. Prints a table; "
                                   "writes JSON, CSV, Markdown and a Pareto plot when asked. Exit code 1 when a row "
                                   "failed, failed the accuracy gate, or regressed against --baseline.")
    settings = lambda name: field_default(BenchSettings, name)  # noqa: E731 - a default lookup, used only here
    timing = lambda name: field_default(TimingSettings, name)  # noqa: E731
    p.add_argument("models", nargs="+", metavar="MODEL", help="best.pt, model.onnx, model.int8.onnx, model.engine, ...")
    p.add_argument("--data", default=settings("data"),
                   help="DIR with images/ and masks/ (val/ when split), or 'synthetic' (default)")
    p.add_argument("--num-images", dest="num_images", type=positive_int, default=settings("num_images"),
                   help=f"images for Dice/IoU, the same for every model (default {settings('num_images')})")
    p.add_argument("--img-size", dest="sizes", type=int_list, default=list(settings("sizes")),
                   help=f"square input sides to time, e.g. 256,512 (default {_sizes_text(settings('sizes'))})")
    p.add_argument("--batch-size", dest="batches", type=int_list, default=list(settings("batches")),
                   help=f"batch sizes to time, e.g. 1,8 (default {_sizes_text(settings('batches'))})")
    p.add_argument("--threads", type=positive_int, default=settings("threads"),
                   help="CPU threads for PyTorch and ONNX Runtime (default: all usable cores)")
    p.add_argument("--backends", type=name_list, help="only these backends, e.g. torch,onnxruntime (default all)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=settings("device"),
                   help="PyTorch / ONNX Runtime device; cuda without a GPU is an error (default auto)")
    p.add_argument("--reference", metavar="MODEL", default=settings("reference"),
                   help="label or path of the model the speed ratios are taken against (default: the first FP32 "
                        "ONNX model)")
    p.add_argument("--warmup", type=nonnegative_int, default=timing("warmup"),
                   help=f"untimed calls per model and shape (default {timing('warmup')})")
    p.add_argument("--min-time", type=nonnegative_float, default=timing("min_time"),
                   help=f"time each row for at least S seconds (default {timing('min_time')})")
    p.add_argument("--min-iters", type=positive_int, default=timing("min_rounds"),
                   help=f"and at least N rounds (default {timing('min_rounds')})")
    p.add_argument("--max-time", type=nonnegative_float, default=timing("max_time"),
                   help="stop starting rounds of one size and batch after S seconds (default: about --min-time "
                        "per row)")
    p.add_argument("--spinning", nargs="?", const="always", choices=SPINNING, default=settings("spinning"),
                   help="when ONNX Runtime's intra-op threads busy-wait: run (default, as the runtime ships: within a "
                        "call, stopping when it returns), always (ONNX Runtime's default, also between calls: idle "
                        "threads steal the next row's cores; a bare --spinning means this) or off")
    p.add_argument("--openvino-precision", dest="openvino_precisions", type=name_list,
                   default=settings("openvino_precisions"),
                   help="time each OpenVINO file in these inference precisions, a row each: f32, bf16, f16 "
                        "(default f32: computes as verified; bf16 is OpenVINO's own choice on CPUs that have it)")
    p.add_argument("--json", metavar="F", help="write the full result as JSON (the --baseline of a later run)")
    p.add_argument("--csv", metavar="F", help="write the rows as CSV")
    p.add_argument("--md", metavar="F", help="write a Markdown table")
    p.add_argument("--plot", metavar="F.png", help="write a Pareto plot (latency vs Dice)")
    p.add_argument("--baseline", metavar="F.json", help="compare with an earlier --json result; exit 1 on regressions")
    p.add_argument("--max-slowdown", type=finite_float, default=1.10,
                   help="largest allowed p50 ratio to the baseline (default 1.10)")
    p.add_argument("--max-dice-drop", type=finite_float, default=settings("max_dice_drop"),
                   help="largest allowed mean Dice loss vs the baseline and vs the FP32 sibling "
                        f"(default {settings('max_dice_drop')})")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    deprecated_alias(p, "--sizes", "--img-size", dest="sizes", type=int_list)
    deprecated_alias(p, "--batch", "--batch-size", dest="batches", type=int_list)
    deprecated_alias(p, "--n-images", "--num-images", dest="num_images", type=positive_int)
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> BenchSettings:
    """The one ``BenchSettings`` of a command line (validated here, before anything runs)."""
    timing = TimingSettings(warmup=args.warmup, min_time=args.min_time, min_rounds=args.min_iters,
                            max_time=args.max_time or None)
    return BenchSettings(data=args.data, num_images=args.num_images, sizes=tuple(args.sizes),
                         batches=tuple(args.batches), threads=args.threads, device=args.device,
                         backends=tuple(args.backends) if args.backends else None, reference=args.reference,
                         timing=timing, max_dice_drop=args.max_dice_drop, spinning=args.spinning,
                         openvino_precisions=tuple(args.openvino_precisions))


def _problems(result: dict) -> list[str]:
    return [f"{r['status']}: {r['model']} {r['precision']} {r['backend']} {r['size']}px batch {r['batch']}: "
            f"{r['reason']}" for r in result["rows"] if r["status"] in ("failed", "accuracy-gate")]


def run(args: argparse.Namespace) -> int:
    from ..bench import format_table, run_bench, verdict_lines
    from ..bench.gate import check_gate_settings, compare_to_baseline, load_baseline, unmatched_rows
    from ..bench.plot import save_pareto_plot
    from ..bench.report import check_output_path, write_csv, write_json, write_markdown

    settings = settings_from_args(args)
    check_gate_settings(args.max_slowdown, args.max_dice_drop)
    for name, flag in OUTPUTS:  # an output that cannot be written fails before the long run, not after it
        if getattr(args, name):
            check_output_path(getattr(args, name), flag)
    baseline = load_baseline(args.baseline) if args.baseline else None
    result = run_bench(args.models, settings, progress=args.progress)
    print(format_table(result))
    for line in verdict_lines(result):
        print(line)
    writers = {"json": write_json, "csv": write_csv, "md": write_markdown, "plot": save_pareto_plot}
    for name, _ in OUTPUTS:
        if getattr(args, name):
            print(f"wrote {writers[name](result, getattr(args, name))}")
    problems = _problems(result)
    if baseline is not None:
        for line in unmatched_rows(result, baseline):
            print(f"baseline: {line}")
        problems += [f"regression: {line}" for line in
                     compare_to_baseline(result, baseline, args.max_slowdown, args.max_dice_drop)]
    for line in problems:
        print(line)
    ok = sum(r["status"] == "ok" for r in result["rows"])
    print(f"{ok} of {len(result['rows'])} rows ok; {len(problems)} problem(s)")
    return 1 if problems else 0
