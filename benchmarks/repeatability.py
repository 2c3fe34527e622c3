"""Do back-to-back ``edgeunet bench`` runs of the same two files agree? The INT8/FP32 ratio, N times.

    python benchmarks/repeatability.py                      # the files of `make demo`
    python benchmarks/repeatability.py --fp32 A.onnx --int8 B.onnx --runs 5 --img-size 256,512

Runs ``edgeunet bench FP32 INT8 --img-size ... --json`` ``--runs`` times, each in a fresh process,
one after the other, and records per run and size the INT8 row's ratio to the FP32 row (the
median of per-round ratios, with quartiles) and how far the runs spread: (max - min) / median of
the ratios. Writes ``benchmarks/results/<machine>-repeatability.json`` (kind ``repeatability``);
``tables.py`` draws its block of docs/benchmarks.md. The bench runs exactly as a user runs it, so the spread is
what a user sees on this machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.runtimes import demo_files_missing, edgeunet  # noqa: E402

HERE = Path(__file__).resolve().parent
DEMO_EXPORT = HERE.parent / "runs" / "quickstart" / "export"
TOLERANCE = 0.10  # the runs agree when their ratios spread by at most this fraction of their median


def int8_ratios(result: dict, int8_label: str) -> dict[int, dict]:
    """{size: {ratio, q25, q75, p50_ms}} of the INT8 row of a bench result (its ratio to the FP32 reference)."""
    found = {}
    for row in result["rows"]:
        if row["model"] == int8_label and row["status"] == "ok" and row.get("ratio") is not None:
            found[row["size"]] = {"ratio": row["ratio"], "q25": row.get("ratio_q25"), "q75": row.get("ratio_q75"),
                                  "p50_ms": row["latency_ms"]["p50"], "noisy": bool(row.get("noisy"))}
    return found


def spread(values: list[float]) -> float:
    """(max - min) / median: 0 when every run gave the same ratio."""
    return (max(values) - min(values)) / statistics.median(values)


def run(fp32: Path, int8: Path, runs: int, sizes: str, min_time: float, num_images: int) -> dict:
    """Runs the bench ``runs`` times and returns the result record (not yet written)."""
    from edgeunet.env import machine_name, provenance

    per_run = []
    with tempfile.TemporaryDirectory(prefix="edgeunet-repeat-") as tmp:
        for i in range(runs):
            out = Path(tmp) / f"run{i}.json"
            edgeunet("bench", str(fp32), str(int8), "--img-size", sizes, "--num-images", str(num_images),
                     "--min-time", str(min_time), "--no-progress", "--json", str(out))
            result = json.loads(out.read_text())
            spinning = result["settings"]["spinning"]
            ratios = int8_ratios(result, int8.name)
            per_run.append(ratios)
            print(f"run {i + 1}: " + ", ".join(f"{s} px x{r['ratio']:.2f}" for s, r in sorted(ratios.items())))
    by_size = {}
    for size in sorted(per_run[0]):
        values = [r[size]["ratio"] for r in per_run]
        by_size[str(size)] = {"ratios": [round(v, 4) for v in values], "median": round(statistics.median(values), 4),
                              "spread": round(spread(values), 4), "agree": spread(values) <= TOLERANCE}
    return {"kind": "repeatability", "date": datetime.date.today().isoformat(), "machine": machine_name(),
            "command": f"edgeunet bench {fp32.name} {int8.name} --img-size {sizes} --num-images {num_images} "
                       f"--min-time {min_time}, {runs} times back to back",
            "fp32": fp32.name, "int8": int8.name, "spinning": spinning, "tolerance": TOLERANCE, "sizes": by_size,
            "runs": [{str(s): r for s, r in sorted(run_.items())} for run_ in per_run],
            "agree": all(s["agree"] for s in by_size.values()), "provenance": provenance(None)}


def add_pair_arguments(p: argparse.ArgumentParser, export: Path, whose: str) -> None:
    """The options of a script that benches an FP32 file and its INT8 file (default: ``export``'s)."""
    p.add_argument("--fp32", type=Path, default=export / "model.onnx", help=f"FP32 ONNX (default: {whose})")
    p.add_argument("--int8", type=Path, default=export / "model.int8.onnx", help="its INT8 file")
    p.add_argument("--img-size", default="256,512", help="sizes to time (default 256,512)")
    p.add_argument("--min-time", type=float, default=4.0, help="seconds each row is timed per size (default 4)")
    p.add_argument("--num-images", type=int, default=4, help="images the bench scores Dice on (default 4)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder of the result file")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/repeatability.py", description=__doc__.split("\n\n")[0])
    add_pair_arguments(p, DEMO_EXPORT, "make demo's")
    p.add_argument("--runs", type=int, default=5, help="bench runs, back to back (default 5)")
    args = p.parse_args(argv)
    if demo_files_missing([args.fp32, args.int8], "--fp32 and --int8"):
        return 2
    if args.runs < 2:
        print(f"--runs {args.runs}: agreement needs at least 2 runs", file=sys.stderr)
        return 2
    from edgeunet.atomic import write_json
    from edgeunet.env import machine_name

    result = run(args.fp32, args.int8, args.runs, args.img_size, args.min_time, args.num_images)
    path = write_json(args.out / f"{machine_name()}-repeatability.json", result)
    for size, s in result["sizes"].items():
        print(f"{size} px: INT8/FP32 x{s['median']:.2f}, runs spread {s['spread']:.1%} "
              f"({'within' if s['agree'] else 'beyond'} {TOLERANCE:.0%})")
    print(f"wrote {path}")
    return 0 if result["agree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
