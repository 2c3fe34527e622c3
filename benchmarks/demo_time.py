"""Time and figures of the demo: ``edgeunet quickstart`` (what ``make demo`` runs once the venv is set up).

    python benchmarks/demo_time.py            # writes benchmarks/results/<machine>-demo.json

Runs ``python -m edgeunet quickstart --out DIR --no-progress --json FACTS`` in a fresh process in a
temporary folder and records its wall time and the figures the demo prints: validation Dice of
the trained ``unet-ds``, parameters before and after pruning with the fine-tuned Dice, the INT8
Dice drop, and what the INT8 search kept (from ``export/export.json``). Setting up the venv
(``make setup``: pip installs) is not included; it depends on the network and the pip cache.
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


def _search_facts(export: dict) -> dict | None:
    """What the INT8 search kept and the speed-up it measured (``int8_search.chosen``, ``int8_speed``), if it ran."""
    search, speed = export.get("int8_search"), export.get("int8_speed") or {}
    if not isinstance(search, dict):
        return None
    return {"kept": search.get("chosen"), "speedup": speed.get("speedup"), "size": speed.get("size")}


def figures(out: Path, facts: dict) -> dict:
    """The demo's figures from its facts JSON and the export's export.json."""
    export = json.loads((out / "export" / "export.json").read_text())
    prune = facts["prune"]
    quality = export.get("int8_quality") or {}
    return {
        "train_dice": facts["train"]["best_dice"], "parameters": facts["train"]["parameters"],
        "pruned_parameters": prune["parameters"]["after"], "pruned_reduction": prune["parameters"]["reduction"],
        "pruned_dice": prune["dice"]["finetuned"], "int8_dice_drop": quality.get("dice_drop"),
        "int8_faster_than_fp32": export.get("int8_faster_than_fp32"), "int8_search": _search_facts(export),
    }


def run(out: Path) -> Path:
    """Runs the demo once and writes ``<machine>-demo.json`` into ``out``."""
    from edgeunet.atomic import write_json
    from edgeunet.env import machine_name, provenance

    with tempfile.TemporaryDirectory(prefix="edgeunet-demo-") as tmp:
        work = Path(tmp)
        command = [sys.executable, "-m", "edgeunet", "quickstart", "--out", str(work / "quickstart"), "--no-progress",
                   "--json", str(work / "facts.json")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(f"edgeunet quickstart failed ({done.returncode}): {done.stderr[-3000:]}")
        found = figures(work / "quickstart", json.loads((work / "facts.json").read_text()))
    result = {"kind": "demo", "date": datetime.date.today().isoformat(), "machine": machine_name(),
              "command": "edgeunet quickstart --out runs/quickstart (make demo without setup)",
              "seconds": round(seconds, 1), **found, "provenance": provenance(None)}
    return write_json(out / f"{machine_name()}-demo.json", result)


def script_main(argv: list[str] | None, prog: str, doc: str, run_once, summary) -> int:
    """The command line of a demo-timing script: ``--out`` folder, ``run_once(out) -> result path``, then
    ``summary(result)`` printed with the path (``demo_time.py`` and ``demo3d_time.py``)."""
    p = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE / "results"),
                   help="folder of the result file (default: benchmarks/results)")
    args = p.parse_args(argv)
    path = run_once(Path(args.out))
    print(summary(json.loads(path.read_text())))
    print(f"wrote {path}")
    return 0


def summary(result: dict) -> str:
    """The line the script prints about its result."""
    figures = f"Dice {result['train_dice']:.4f}, pruned Dice {result['pruned_dice']:.4f}"
    return f"quickstart: {result['seconds']:.0f} s, {figures}"


def main(argv: list[str] | None = None) -> int:
    return script_main(argv, "benchmarks/demo_time.py", __doc__, run, summary)


if __name__ == "__main__":
    sys.exit(main())
