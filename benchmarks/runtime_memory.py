"""Peak memory of the torch-free runtime: ``edgeunet predict`` on one image, INT8 and FP32 files of the default model.

    python benchmarks/runtime_memory.py            # writes benchmarks/results/<machine>-runtime-memory.json

Each measurement is a fresh process running ``edgeunet predict MODEL IMAGE --out DIR`` (512 px
tiles, ONNX Runtime's default threads), the way a device runs it; its peak resident memory is
the ``VmHWM`` of its own address space (``/proc/self/status``, read by the process as it ends;
``ru_maxrss`` would count the parent's memory copied at fork). The process also reports whether
torch was imported (it must not be: the runtime is torch-free). The models are the
default ``unet-ds`` exported by ``edgeunet export`` (FP32 and INT8, no INT8 search) from
randomly initialised weights, which do not change memory; ``--fp32``/``--int8`` measure other
files. Images are synthetic microscopy, 2048x2048 and 512x512 (uint16 PNG).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
SIZES = (2048, 512)
TILE = 512
MODEL = "unet-ds"
# The child: runs the CLI in this process, then reports its peak RSS (kB) and whether torch was imported.
CHILD = ("import json, re, sys\n"
         "from edgeunet.cli import main\n"
         "rc = main(sys.argv[2:])\n"
         "hwm = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
         "facts = {'rc': rc, 'hwm_kb': hwm, 'torch_imported': 'torch' in sys.modules}\n"
         "open(sys.argv[1], 'w').write(json.dumps(facts))\n"
         "sys.exit(rc)\n")


def build_models(workdir: Path) -> dict[str, Path]:
    """FP32 and INT8 ONNX files of the default model (random weights, seed 0), exported by ``edgeunet export``."""
    import torch

    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.export import export_model
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    torch.manual_seed(0)
    checkpoint = save_checkpoint(make_checkpoint(create_model(MODEL).eval(), DEFAULT_PREPROCESSING,
                                                 ["background", "nucleus"]), workdir / "best.pt")
    # random weights: the INT8 Dice check means nothing here, so it may not stop the export
    export_model(checkpoint, workdir / "export", int8=True, calib_size=8, int8_search=False, max_dice_drop=1.0,
                 progress=False)
    return {"int8": workdir / "export" / "model.int8.onnx", "fp32": workdir / "export" / "model.onnx"}


def write_images(workdir: Path) -> dict[int, Path]:
    """One synthetic microscopy image per size, as the uint16 PNG a microscope would give."""
    from edgeunet.data.io import write_image
    from edgeunet.data.synthetic import synthetic_sample

    return {size: write_image(workdir / f"image-{size}.png", synthetic_sample(0, size, seed=7)[0]) for size in SIZES}


def measure(model: Path, image: Path, workdir: Path) -> dict:
    """Peak RSS (MB) and wall time (s) of one ``edgeunet predict`` process, and whether it imported torch."""
    report = workdir / "child.json"
    out = Path(tempfile.mkdtemp(dir=workdir, prefix="predict-"))
    command = [sys.executable, "-c", CHILD, str(report), "predict", str(model), str(image), "--out", str(out),
               "--tile", str(TILE)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"edgeunet predict {model.name} {image.name} failed ({done.returncode}): "
                           f"{done.stderr[-2000:]}")
    facts = json.loads(report.read_text())
    return {"peak_rss_mb": round(facts["hwm_kb"] / 1024, 1), "seconds": round(seconds, 2),
            "torch_imported": facts["torch_imported"]}


def run(out: Path, fp32: Path | None = None, int8: Path | None = None) -> Path:
    """Measures every (precision, image size) and writes ``<machine>-runtime-memory.json`` into ``out``."""
    from edgeunet.atomic import write_json
    from edgeunet.env import machine_name, provenance

    with tempfile.TemporaryDirectory(prefix="edgeunet-memory-") as tmp:
        work = Path(tmp)
        models = {"int8": int8, "fp32": fp32} if fp32 and int8 else build_models(work)
        images = write_images(work)
        rows = [{"precision": precision, "model": str(model) if fp32 and int8 else f"{MODEL} {precision}",
                 "image": f"{size}x{size}", "tile": TILE, **measure(Path(model), images[size], work)}
                for precision, model in models.items() for size in SIZES]
    if any(row["torch_imported"] for row in rows):
        raise RuntimeError("edgeunet predict imported torch: the runtime must stay torch-free")
    result = {"kind": "runtime-memory", "date": datetime.date.today().isoformat(), "machine": machine_name(),
              "command": f"edgeunet predict MODEL IMAGE --out DIR --tile {TILE}", "model": MODEL, "rows": rows,
              "provenance": provenance(None)}
    return write_json(out / f"{machine_name()}-runtime-memory.json", result)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/runtime_memory.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE / "results"),
                   help="folder of the result file (default: benchmarks/results)")
    p.add_argument("--fp32", type=Path, help="FP32 .onnx to measure instead of the default model")
    p.add_argument("--int8", type=Path, help="INT8 .onnx to measure instead of the default model")
    args = p.parse_args(argv)
    if bool(args.fp32) != bool(args.int8):
        p.error("give both --fp32 and --int8, or neither")
    path = run(Path(args.out), args.fp32, args.int8)
    for row in json.loads(path.read_text())["rows"]:
        print(f"{row['model']:14s} {row['image']:>9s}: peak RSS {row['peak_rss_mb']:.1f} MB, {row['seconds']:.1f} s")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
