"""What ``up_act`` (BN + ReLU on the up-sampling conv) and nearest up-sampling do to the default edge model's INT8.

    make demo && python benchmarks/up_act.py      # writes benchmarks/results/<machine>-up-act.json

Trains ``unet-ds`` three ways with the demo's settings on the demo's training images (same seed and
budget), each in a fresh process as a user would: as edgeunet 0.2 built it (``--no-up-act``: bilinear
after a plain 1x1 conv), as it is built now (``up_act``), and with nearest up-sampling (``--upsample
nearest``, ``up_act``). Then ``edgeunet export --int8`` of each (calibrated on the training images,
verified on the demo's held-out images) and ONE ``edgeunet bench`` of the six files at ``--img-size``
(interleaved rounds). Per variant the result has the validation Dice of training, the held-out Dice of
FP32 and INT8, and per size the p50 of both and the INT8 speed-up over its own FP32 (median of the
per-round ratios, ``vs_fp32``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.runtimes import DEMO, HERE, demo_files_missing, edgeunet  # noqa: E402

VARIANTS = {  # label: edgeunet train options on top of --model unet-ds
    "bilinear (0.2 layout)": ["--no-up-act"],
    "bilinear + up_act (default)": [],
    "nearest + up_act": ["--upsample", "nearest"],
}
TRAIN = ["--epochs", "6", "--img-size", "128", "--samples-per-epoch", "256", "--lr", "0.003", "--seed", "0"]


def run(data: Path, heldout: Path, sizes: str, min_time: float) -> dict:
    """Trains, exports and benches the variants; returns the result record (not yet written)."""
    from edgeunet.env import machine_name

    variants = {}
    with tempfile.TemporaryDirectory(prefix="edgeunet-up-act-") as tmp:
        files = []
        for i, (label, options) in enumerate(VARIANTS.items()):
            train, export = Path(tmp) / f"v{i}" / "train", Path(tmp) / f"v{i}" / "export"
            edgeunet("train", "--data", str(data), "--model", "unet-ds", *options, *TRAIN, "--out", str(train),
                     "--no-progress")
            edgeunet("export", str(train / "best.pt"), "--int8", "--calib", str(data), "--val", str(heldout),
                     "--no-progress", "--out", str(export))
            config = json.loads((train / "config.json").read_text())
            metrics = [json.loads(line) for line in (train / "metrics.jsonl").read_text().splitlines() if line]
            dice = [m["val_mean_dice"] for m in metrics if m.get("val_mean_dice") is not None]
            variants[label] = {"options": options, "model_config": config["model_config"], "val_dice": max(dice)}
            files += [export / "model.onnx", export / "model.int8.onnx"]
        out = Path(tmp) / "bench.json"
        edgeunet("bench", *map(str, files), "--img-size", sizes, "--data", str(heldout), "--num-images", "8",
                 "--min-time", str(min_time), "--no-progress", "--json", str(out))
        bench = json.loads(out.read_text())
    for i, record in enumerate(variants.values()):
        rows = [r for r in bench["rows"] if f"/v{i}/export/" in r["path"]]
        fp32 = {r["size"]: r for r in rows if r["precision"] == "fp32"}
        int8 = {r["size"]: r for r in rows if r["precision"] == "int8"}
        record["dice"] = {"fp32": fp32[min(fp32)]["mean_dice"], "int8": int8[min(int8)]["mean_dice"]}
        record["sizes"] = {str(s): {"fp32_p50_ms": fp32[s]["latency_ms"]["p50"],
                                    "int8_p50_ms": int8[s]["latency_ms"]["p50"],
                                    "int8_speedup": int8[s]["vs_fp32"]["ratio"],
                                    "int8_speedup_q25_q75": [int8[s]["vs_fp32"]["ratio_q25"],
                                                             int8[s]["vs_fp32"]["ratio_q75"]]}
                           for s in sorted(int8)}
    return {"kind": "up-act", "date": datetime.date.today().isoformat(), "machine": machine_name(),
            "command": "edgeunet train --model unet-ds OPTIONS; edgeunet export best.pt --int8; "
                       f"edgeunet bench <the six files> --img-size {sizes}",
            "train": TRAIN, "variants": variants, "settings": bench["settings"], "provenance": bench["environment"]}


NO_UP_ACT = "`python benchmarks/up_act.py` measures what `up_act` does to the INT8 speed-up of `unet-ds`."


def block(path: Path, data: dict) -> str:
    """docs/models.md: the up-sampling variants' Dice and INT8 speed-up over their own FP32."""
    from benchmarks.prose import machine_short

    sizes = sorted({int(s) for v in data["variants"].values() for s in v["sizes"]})
    head = "| `unet-ds` up-sampling | Dice FP32 / INT8 | " + " | ".join(
        f"{s} px: INT8 x vs its FP32 [quartiles]" for s in sizes) + " |"
    lines = [head, "|---|---|" + "---|" * len(sizes)]
    for label, v in data["variants"].items():
        cells = []
        for s in sizes:
            f = v["sizes"][str(s)]
            cells.append(f"{f['int8_speedup']:.2f} [{f['int8_speedup_q25_q75'][0]:.2f}-"
                         f"{f['int8_speedup_q25_q75'][1]:.2f}]")
        lines.append(f"| {label} | {v['dice']['fp32']:.4f} / {v['dice']['int8']:.4f} | " + " | ".join(cells) + " |")
    return ("\n".join(lines) + f"\n\nEach trained the demo's way (same images, seed and budget), exported with "
            f"`edgeunet export --int8` and timed in one `edgeunet bench` run (interleaved rounds, 2 threads) on "
            f"{machine_short(data)}, {data['date']}; Dice on the demo's held-out images. File: "
            f"`benchmarks/results/{path.name}` (`benchmarks/up_act.py`).\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/up_act.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEMO / "data", help="training and calibration images (the demo's)")
    p.add_argument("--heldout", type=Path, default=DEMO / "heldout", help="verification and bench images")
    p.add_argument("--img-size", default="256,512", help="sizes the bench times (default 256,512)")
    p.add_argument("--min-time", type=float, default=3.0, help="seconds per row and size (default 3)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder of the result file")
    args = p.parse_args(argv)
    if demo_files_missing([args.data, args.heldout], "--data and --heldout"):
        return 2
    from edgeunet.atomic import write_json
    from edgeunet.env import machine_name

    result = run(args.data, args.heldout, args.img_size, args.min_time)
    path = write_json(args.out / f"{machine_name()}-up-act.json", result)
    for label, v in result["variants"].items():
        speed = ", ".join(f"{s} px x{f['int8_speedup']:.2f}" for s, f in v["sizes"].items())
        print(f"{label}: Dice FP32 {v['dice']['fp32']:.4f} INT8 {v['dice']['int8']:.4f}; INT8 vs FP32 {speed}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
