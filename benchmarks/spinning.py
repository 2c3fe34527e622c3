"""What ONNX Runtime's thread spinning does to an FP32 file and its INT8 file: ``edgeunet bench --spinning``.

    python benchmarks/spinning.py            # the suite's unet-ds files (runs/benchmarks/unet-ds/export)
    python benchmarks/spinning.py --fp32 A.onnx --int8 B.onnx --modes off,run,always --repeats 2

Runs ``edgeunet bench FP32 INT8 --spinning MODE --json`` once per mode and repeat, each in a fresh
process, the modes in turn (off, run, always, off, run, ...) so drift of a busy machine reaches each
alike. Within a run the two files are timed interleaved as always; across runs only p50s compare, so
the record keeps per mode and size the median over repeats of each file's p50 and of the INT8 row's
ratio to FP32 (median of per-round ratios). Writes ``benchmarks/results/<machine>-spinning.json`` (kind
``spinning``); ``tables.py`` draws its block of docs/benchmarks.md.
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

from benchmarks.repeatability import add_pair_arguments, int8_ratios  # noqa: E402
from benchmarks.runtimes import demo_files_missing, edgeunet  # noqa: E402

HERE = Path(__file__).resolve().parent
SUITE_EXPORT = HERE.parent / "runs" / "benchmarks" / "unet-ds" / "export"
NO_SPINNING = ("`python benchmarks/spinning.py` times the edge model's FP32 and INT8 files with each "
               "`edgeunet bench --spinning` mode.")


def p50s(result: dict, label: str) -> dict[int, float]:
    """{size: p50 ms} of one model's rows in a bench result."""
    return {row["size"]: row["latency_ms"]["p50"] for row in result["rows"]
            if row["model"] == label and row["status"] == "ok"}


def run(fp32: Path, int8: Path, modes: list[str], repeats: int, sizes: str, min_time: float,
        num_images: int) -> dict:
    """Benches every mode ``repeats`` times and returns the result record (not yet written)."""
    from edgeunet.env import machine_name, provenance

    runs = []
    with tempfile.TemporaryDirectory(prefix="edgeunet-spinning-") as tmp:
        for rep in range(repeats):
            for mode in modes:
                out = Path(tmp) / f"{mode}{rep}.json"
                edgeunet("bench", str(fp32), str(int8), "--img-size", sizes, "--num-images", str(num_images),
                         "--min-time", str(min_time), "--spinning", mode, "--no-progress", "--json", str(out))
                result = json.loads(out.read_text())
                ratios = int8_ratios(result, int8.name)
                fp32_ms, int8_ms = p50s(result, fp32.name), p50s(result, int8.name)
                runs.append({"mode": mode, "sizes": {str(s): {"ratio": ratios[s]["ratio"], "fp32_p50_ms": fp32_ms[s],
                                                            "int8_p50_ms": int8_ms[s]} for s in sorted(ratios)}})
                print(f"{mode} #{rep + 1}: " + ", ".join(f"{s} px FP32 {fp32_ms[s]:.2f} ms, INT8 {int8_ms[s]:.2f} ms, "
                                                       f"x{ratios[s]['ratio']:.2f}" for s in sorted(ratios)))
    summary = {}
    for mode in modes:
        mine = [r["sizes"] for r in runs if r["mode"] == mode]
        summary[mode] = {size: {key: round(statistics.median(r[size][key] for r in mine), 4)
                                for key in ("fp32_p50_ms", "int8_p50_ms", "ratio")} for size in mine[0]}
    return {"kind": "spinning", "date": datetime.date.today().isoformat(), "machine": machine_name(),
            "command": f"edgeunet bench {fp32.name} {int8.name} --img-size {sizes} --num-images {num_images} "
                       f"--min-time {min_time} --spinning MODE, modes {','.join(modes)} in turn, {repeats} times",
            "model": _model_name(fp32), "fp32": fp32.name, "int8": int8.name, "modes": summary, "runs": runs,
            "provenance": provenance(None)}


def _model_name(path: Path) -> str:
    from edgeunet.export.onnx import read_metadata

    return read_metadata(path).model_config.get("name", path.stem)


def block(path: Path, data: dict) -> str:
    """docs/benchmarks.md: each mode's p50s and INT8 ratio, and the p50s against spinning off."""
    from benchmarks.prose import machine_short

    modes, sizes = data["modes"], list(next(iter(data["modes"].values())))
    head = "| `--spinning` | " + " | ".join(f"{s} px: FP32 / INT8 p50 ms | INT8 x" for s in sizes) + " |"
    lines = [head, "|---|" + "---|---|" * len(sizes)]
    for mode, by_size in modes.items():
        cells = [f"{by_size[s]['fp32_p50_ms']:.2f} / {by_size[s]['int8_p50_ms']:.2f} | {by_size[s]['ratio']:.2f}"
                 for s in sizes]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n\n"
    if "run" in modes and "off" in modes:
        gains = ", ".join(f"{modes['off'][s]['int8_p50_ms'] / modes['run'][s]['int8_p50_ms']:.2f}x (INT8) and "
                          f"{modes['off'][s]['fp32_p50_ms'] / modes['run'][s]['fp32_p50_ms']:.2f}x (FP32) at {s} px"
                          for s in sizes)
        text += (f"Spinning within a call (`run`, the default of the bench and the runtime) against never spinning "
                 f"(`off`): p50 {gains}. ")
    return text + (f"`{data['model']}`, `{data['command']}`, on {machine_short(data)}, {data['date']}; each cell is "
                   f"the median over the repeats. File: `benchmarks/results/{path.name}` (`benchmarks/spinning.py`).\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/spinning.py", description=__doc__.split("\n\n")[0])
    add_pair_arguments(p, SUITE_EXPORT, "the suite's unet-ds")
    p.add_argument("--modes", default="off,run,always", help="--spinning modes, benched in turn (default all)")
    p.add_argument("--repeats", type=int, default=2, help="bench runs per mode (default 2)")
    args = p.parse_args(argv)
    if demo_files_missing([args.fp32, args.int8], "--fp32 and --int8", maker="make bench"):
        return 2
    from edgeunet.runtime.session import SPINNING

    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(SPINNING) or args.repeats < 1:
        print(f"--modes {args.modes} --repeats {args.repeats}: use some of {','.join(SPINNING)} and 1 or more "
              "repeats", file=sys.stderr)
        return 2
    from edgeunet.atomic import write_json
    from edgeunet.env import machine_name

    result = run(args.fp32, args.int8, modes, args.repeats, args.img_size, args.min_time, args.num_images)
    print(f"wrote {write_json(args.out / f'{machine_name()}-spinning.json', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
