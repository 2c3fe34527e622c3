"""Every runtime for one trained model, side by side: an export with every format, and what `--formats auto` ships.

    make demo && python benchmarks/runtimes.py      # writes benchmarks/results/<machine>-runtimes.json

Takes the default edge model the demo trained (``runs/quickstart/train/best.pt``, unpruned ``unet-ds``;
``--checkpoint`` for another), then, each in a fresh process, as a user would:

1. ``edgeunet export CKPT --formats onnx,openvino,executorch,litert,ort --int8`` (FP32 and INT8 of each),
   calibrated on the demo's training images and verified on its held-out images;
2. ``edgeunet export CKPT --formats auto --int8``, which times the candidates that run here and ships one;
3. one ``edgeunet bench`` over every file of both exports at ``--img-size`` (interleaved rounds, ratios to
   ORT FP32, Dice on the held-out images); OpenVINO files run in f32 and, on CPUs with bfloat16, also in
   bf16 (``--openvino-precision f32,bf16``: rows ``model.xml@bf16``).

The result is the bench JSON plus ``kind: "runtimes"``, the commands, the file ``auto`` shipped and
whether its p50 is within ``--tolerance`` of the fastest row at every size (``auto_is_fastest``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "runs" / "quickstart"
EVERY_FORMAT = "onnx,openvino,executorch,litert,ort"


def edgeunet(*args: str) -> None:
    """Runs `python -m edgeunet ARGS` in a fresh process; raises RuntimeError with its output tail when it fails."""
    done = subprocess.run([sys.executable, "-m", "edgeunet", *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"edgeunet {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}"
                           f"{done.stderr[-3000:]}")


def demo_files_missing(files: list[Path], options: str, maker: str = "make demo") -> bool:
    """Says on stderr which of ``files`` (``maker``'s, by default) are missing, with the fix; True when any is."""
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        print(f"not found: {', '.join(missing)}: run `{maker}` first, or give {options}", file=sys.stderr)
    return bool(missing)


def model_files(folder: Path) -> list[Path]:
    """The model files of an export folder (ONNX, ORT, OpenVINO .xml, ExecuTorch .pte, LiteRT .tflite)."""
    suffixes = (".onnx", ".ort", ".xml", ".pte", ".tflite")
    return sorted(p for p in folder.iterdir() if p.suffix in suffixes)


def fastest_check(result: dict, shipped: str, tolerance: float) -> dict:
    """Per size: the fastest row (p50), the shipped file's p50, and whether it is within ``tolerance`` of it."""
    checks = {}
    for size in sorted({r["size"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["size"] == size and r["status"] == "ok"]
        best = min(rows, key=lambda r: r["latency_ms"]["p50"])
        mine = next((r for r in rows if r["model"] == shipped), None)
        p50 = mine["latency_ms"]["p50"] if mine else None
        # None: the shipped file does not take this size (a fixed-size LiteRT file; Segmenter tiles at its size)
        checks[str(size)] = {"fastest": best["model"], "fastest_p50_ms": best["latency_ms"]["p50"],
                             "shipped_p50_ms": p50,
                             "within": None if p50 is None else p50 <= best["latency_ms"]["p50"] * (1 + tolerance)}
    return checks


def run(ckpt: Path, data: Path, heldout: Path, sizes: str, min_time: float, tolerance: float) -> dict:
    """Runs both exports and the bench; returns the result record (not yet written)."""
    from edgeunet.env import has_bf16, machine_name

    with tempfile.TemporaryDirectory(prefix="edgeunet-runtimes-") as tmp:
        every, auto = Path(tmp) / "every", Path(tmp) / "auto"
        common = ["--int8", "--calib", str(data), "--val", str(heldout), "--no-progress"]
        edgeunet("export", str(ckpt), "--formats", EVERY_FORMAT, *common, "--out", str(every))
        edgeunet("export", str(ckpt), "--formats", "auto", *common, "--out", str(auto))
        chosen = json.loads((auto / "export.json").read_text())
        shipped = auto / chosen["shipped"]
        # the auto folder's copy of the shipped file is benchmarked under its own label: auto/<file>
        files = model_files(every) + [shipped]
        out = Path(tmp) / "bench.json"
        # OpenVINO files also in bfloat16 on CPUs that have it (OpenVINO's own default there)
        hints = "f32,bf16" if has_bf16() else "f32"
        edgeunet("bench", *map(str, files), "--img-size", sizes, "--data", str(heldout), "--num-images", "8",
                 "--min-time", str(min_time), "--openvino-precision", hints, "--no-progress", "--json", str(out))
        result = json.loads(out.read_text())
    label = next(r["model"] for r in result["rows"] if r["path"].endswith(str(Path("auto") / shipped.name)))
    checks = fastest_check(result, label, tolerance)
    return {"kind": "runtimes", "date": datetime.date.today().isoformat(), "machine": machine_name(),
            "command": f"edgeunet export best.pt --formats {EVERY_FORMAT} --int8; edgeunet export best.pt --formats "
                       f"auto --int8; edgeunet bench <every file of both> --img-size {sizes}",
            "checkpoint": str(ckpt.relative_to(HERE.parent)) if ckpt.is_relative_to(HERE.parent) else ckpt.name,
            "auto": {"shipped": label, "chosen": chosen.get("auto", {}).get("chosen"),
                     "candidates": chosen.get("auto", {}).get("candidates"), "tolerance": tolerance,
                     "by_size": checks,
                     "auto_is_fastest": all(c["within"] for c in checks.values() if c["within"] is not None)},
            **result}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/runtimes.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=DEMO / "train" / "best.pt",
                   help="checkpoint to export (default: the unpruned model `make demo` trained)")
    p.add_argument("--data", type=Path, default=DEMO / "data", help="calibration images (default: the demo's)")
    p.add_argument("--heldout", type=Path, default=DEMO / "heldout",
                   help="search, verification and bench images (default: the demo's held-out folder)")
    p.add_argument("--img-size", default="256,512", help="sizes the bench times (default 256,512)")
    p.add_argument("--min-time", type=float, default=3.0, help="seconds per row and size (default 3)")
    p.add_argument("--tolerance", type=float, default=0.05,
                   help="how much slower than the fastest row the shipped file may be (default 0.05)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder of the result file")
    args = p.parse_args(argv)
    if demo_files_missing([args.checkpoint, args.data, args.heldout], "--checkpoint, --data and --heldout"):
        return 2
    from edgeunet.atomic import write_json
    from edgeunet.env import machine_name

    result = run(args.checkpoint, args.data, args.heldout, args.img_size, args.min_time, args.tolerance)
    path = write_json(args.out / f"{machine_name()}-runtimes.json", result)
    for size, check in result["auto"]["by_size"].items():
        shipped = "-" if check["shipped_p50_ms"] is None else f"{check['shipped_p50_ms']:.2f} ms"
        print(f"{size} px: fastest {check['fastest']} {check['fastest_p50_ms']:.2f} ms; auto shipped "
              f"{result['auto']['shipped']} {shipped}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
