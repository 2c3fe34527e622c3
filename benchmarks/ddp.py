"""Distributed training on CPU: best validation Dice of 1 and 2 processes with the same total batch.

    python benchmarks/ddp.py                  # writes benchmarks/results/<machine>-ddp.json

Each configuration trains the same small ``unet-ds`` on the synthetic set twice, under
``torchrun --standalone`` with 1 and with 2 CPU processes (gloo on the loopback interface, one
thread each), and records the best validation Dice that each run's ``best.pt`` holds. The
configurations are those docs/training.md quotes: today's layout, and the edgeunet 0.1 layout
(``--fused-levels 0 --space-to-depth 1``) after a short and a longer training with two seeds.
Each training takes about a minute on 2 cores; ``--configs`` runs a subset.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
BASE = ["--data", "synthetic", "--model", "unet-ds", "--base-width", "8", "--depth", "3", "--img-size", "96",
        "--batch-size", "8", "--device", "cpu", "--no-progress"]
OLD_LAYOUT = ["--fused-levels", "0", "--space-to-depth", "1"]
# name -> (what it is, extra options)
CONFIGS = {
    "layout-0.2": ("today's layout, 4 epochs of 128 samples", ["--epochs", "4", "--samples-per-epoch", "128"]),
    "layout-0.1": ("edgeunet 0.1 layout, 4 epochs of 128 samples",
                   [*OLD_LAYOUT, "--epochs", "4", "--samples-per-epoch", "128"]),
    "layout-0.1-long-seed1": ("edgeunet 0.1 layout, 6 epochs of 256 samples, seed 1",
                              [*OLD_LAYOUT, "--epochs", "6", "--samples-per-epoch", "256", "--seed", "1"]),
    "layout-0.1-long-seed2": ("edgeunet 0.1 layout, 6 epochs of 256 samples, seed 2",
                              [*OLD_LAYOUT, "--epochs", "6", "--samples-per-epoch", "256", "--seed", "2"]),
}
PROCESSES = (1, 2)


def torchrun_train(processes: int, options: list[str], out: Path) -> float:
    """Trains under ``torchrun`` with ``processes`` CPU workers; the best validation Dice of its best.pt."""
    from edgeunet.checkpoint import load_checkpoint

    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only: no traffic leaves the machine
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "edgeunet", "train", *BASE, *options, "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"torchrun with {processes} process(es) failed ({done.returncode}): {done.stderr[-3000:]}")
    return float(load_checkpoint(out / "best.pt")["metrics"]["mean_dice"])


def run(out: Path, names: list[str]) -> Path:
    """Trains every configuration with 1 and 2 processes; writes ``<machine>-ddp.json`` into ``out``."""
    from edgeunet.atomic import write_json
    from edgeunet.env import machine_name, provenance

    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeunet-ddp-") as tmp:
        for name in names:
            what, options = CONFIGS[name]
            dice = {str(n): torchrun_train(n, options, Path(tmp) / f"{name}-{n}") for n in PROCESSES}
            rows.append({"config": name, "what": what, "options": BASE + options, "best_dice": dice})
            print(f"{name}: " + ", ".join(f"{n} process(es) {d:.4f}" for n, d in dice.items()), flush=True)
    result = {"kind": "ddp", "date": datetime.date.today().isoformat(), "machine": machine_name(),
              "command": "torchrun --standalone --nproc-per-node=N -m edgeunet train OPTIONS (gloo, OMP_NUM_THREADS=1)",
              "rows": rows, "provenance": provenance(1)}
    return write_json(out / f"{machine_name()}-ddp.json", result)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/ddp.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE / "results"),
                   help="folder of the result file (default: benchmarks/results)")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {', '.join(CONFIGS)}")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names:
        p.error(f"unknown config(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(CONFIGS)}")
    print(f"wrote {run(Path(args.out), names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
