"""Peak memory of the torch-free runtime on one large volume: a Segmenter run with the default 3-D edge model.

    python benchmarks/volume_memory.py            # writes benchmarks/results/<machine>-volume-memory.json
    python benchmarks/volume_memory.py --depth 300 --side 512 --threads 2

The model is ``unet3d-ds`` (random weights, seed 0: weights do not change memory) exported to ONNX
FP32 with dynamic D, H, W by ``edgeunet.export.onnx.export_onnx``. A fresh child process, which never
imports torch, builds a (depth, side, side) uint16 volume, runs ``Segmenter(model)(volume)`` with its
defaults (64^3 windows, overlap 0.25, one window per call, streamed slab by slab) and reports its peak
resident memory (``VmHWM`` of its own address space), including the volume itself and the mask.
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
MODEL = "unet3d-ds"
CHILD = """import json, re, sys, time
import numpy as np
from edgeunet.runtime import Segmenter
model, depth, side, threads, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def hwm():
    return int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))
seg = Segmenter(model, threads=threads)
rng = np.random.default_rng(0)
volume = np.empty((depth, side, side), np.uint16)
for z in range(depth):  # plane by plane: no float64 temporary of the whole volume
    volume[z] = rng.integers(100, 4000, size=(side, side), dtype=np.uint16)
before = hwm()
start = time.perf_counter()
mask = seg(volume)
seconds = time.perf_counter() - start
facts = {'hwm_kb': hwm(), 'hwm_before_kb': before, 'seconds': seconds, 'mask_shape': list(mask.shape),
         'mask_dtype': str(mask.dtype), 'tile': seg.tile, 'overlap': seg.overlap, 'tile_batch': seg.tile_batch,
         'torch_imported': 'torch' in sys.modules}
open(out, 'w').write(json.dumps(facts))
"""


def build_model(workdir: Path) -> Path:
    """``unet3d-ds`` (random weights, seed 0) exported to FP32 ONNX with dynamic D, H, W."""
    import torch

    from edgeunet.export.onnx import export_onnx
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    torch.manual_seed(0)
    return export_onnx(create_model(MODEL).eval(), workdir / "model.onnx", DEFAULT_PREPROCESSING,
                       ["background", "foreground"])


def measure(depth: int, side: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp))
        out = Path(tmp) / "facts.json"
        subprocess.run([sys.executable, "-c", CHILD, str(model), str(depth), str(side), str(threads), str(out)],
                       check=True)
        facts = json.loads(out.read_text())
    facts["peak_rss_mb"] = round(facts["hwm_kb"] / 1024, 1)
    facts["volume_mb"] = round(depth * side * side * 2 / 2**20, 1)
    return facts


def main(argv: list[str] | None = None) -> int:
    from edgeunet.env import machine_name, provenance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=300)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="result file (default under benchmarks/results)")
    args = parser.parse_args(argv)
    facts = measure(args.depth, args.side, args.threads)
    env = provenance(args.threads)
    out = args.out or HERE / "results" / f"{machine_name()}-volume-memory.json"
    result = {"kind": "volume-memory", "machine": machine_name(), "date": datetime.date.today().isoformat(),
              "model": MODEL, "precision": "fp32",
              "volume": {"shape": [args.depth, args.side, args.side], "dtype": "uint16"}, **facts,
              "bound_mb": 1024, "within_bound": facts["peak_rss_mb"] < 1024, "provenance": env}
    from edgeunet.atomic import write_json

    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    print(f"{out}: peak RSS {facts['peak_rss_mb']} MB for a {args.depth}x{args.side}x{args.side} uint16 volume "
          f"in {facts['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
