"""``edgeunet bench``: a thin shell over ``edgeunet.bench.run_bench`` and its writers and gate.

The flags are made from the fields of ``BenchSettings`` and ``TimingSettings`` (``options.add_fields``);
old spellings (``--sizes``, ``--batch``, ``--n-images``) stay as hidden aliases for a release. The
output files and the baseline gate are no settings: their flags are written here.
"""

from __future__ import annotations

import argparse

from ..bench.settings import BenchSettings
from ..timing import TimingSettings
from .options import add_fields, field_values, finite_float, int_list

__all__ = ["add_parser", "int_list", "run"]

OUTPUTS = (("json", "--json"), ("csv", "--csv"), ("md", "--md"), ("plot", "--plot"))
MAX_SLOWDOWN = 1.10  # the gate's default: largest p50 ratio to the baseline


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="latency, throughput, memory and Dice of checkpoints, ONNX files and engines",
                       description="Benchmark models on this machine with the backends that ship them: .pt with "
                                   "PyTorch, .onnx with ONNX Runtime, engines with TensorRT. The rows of each size and "
                                   "batch are timed round-robin, with speed ratios to a reference row; each row's "
                                   "memory is the peak RSS of a fresh process running the file. Prints the deciding "
                                   "columns; writes every column to JSON, CSV and Markdown and a Pareto plot when "
                                   "asked. Exit code 1 when a row failed, failed the accuracy gate, or regressed "
                                   "against --baseline.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="best.pt, model.onnx, model.int8.onnx, an engine, ...")
    add_fields(p, BenchSettings)
    add_fields(p, TimingSettings)
    p.add_argument("--json", metavar="F", help="write the full result as JSON (the --baseline of a later run)")
    p.add_argument("--csv", metavar="F", help="write the rows as CSV")
    p.add_argument("--md", metavar="F", help="write a Markdown table")
    p.add_argument("--plot", metavar="F.png", help="write a Pareto plot (latency vs Dice)")
    p.add_argument("--wide", action="store_true", help="print every column (default: the columns that decide; "
                                                       "--json, --csv and --md files hold them all)")
    p.add_argument("--baseline", metavar="F.json", help="compare with an earlier --json result; exit 1 on regressions")
    p.add_argument("--max-slowdown", type=finite_float, default=MAX_SLOWDOWN, metavar="X",
                   help=f"largest allowed p50 ratio to the baseline (default {MAX_SLOWDOWN:.2f})")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> BenchSettings:
    """The one ``BenchSettings`` of a command line (validated here, before anything runs)."""
    timing = field_values(args, TimingSettings)
    timing["max_time"] = timing["max_time"] or None  # 0: no cap of its own, the bench's budget
    return BenchSettings(**field_values(args, BenchSettings), timing=TimingSettings(**timing))


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
    saved = next((getattr(args, name) for name in ("csv", "json", "md") if getattr(args, name)), None)
    print(format_table(result, wide=args.wide, saved=saved or "--wide prints them, --csv/--json/--md F saves them"))
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
