"""Time and figures of the 3-D demo: ``edgeunet quickstart --3d`` (data, train, prune + fine-tune, export FP32 +
INT8, predict, bench).

    python benchmarks/demo3d_time.py          # writes benchmarks/results/<machine>-demo3d.json

Runs ``python -m edgeunet quickstart --3d --out DIR --no-progress --json FACTS`` in a fresh process in a
temporary folder and records its wall time (and each stage's), the validation Dice of the trained
``unet3d-ds``, the pruned model, the FP32 and INT8 Dice of the benchmark on the held-out volumes
(``bench.json``), the export's INT8 Dice check, and what the INT8 search kept and why (``export.json``:
the chosen candidate, the groups left in float and why, each group's outcome and the INT8/FP32 speed ratio).
The host's load average before and after is recorded too: on a shared host the time says as much about
the other processes as about the demo.
"""

from __future__ import annotations

import collections
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
NO_DEMO3D = ("`edgeunet quickstart --3d` prints its figures as it goes; `python benchmarks/demo3d_time.py` records "
             "its time and figures in benchmarks/results/.")


def _search(export: dict) -> dict | None:
    """What the INT8 search kept: candidate, float groups, decisions counted by reason, INT8/FP32 speed ratio."""
    search, speed = export.get("int8_search"), export.get("int8_speed") or {}
    if not isinstance(search, dict):
        return None
    decisions = search.get("group_decisions") or {}
    return {"kept": search.get("chosen"), "float_groups": search.get("float_groups") or [],
            "speedup": speed.get("speedup"), "verdict": speed.get("verdict"), "size": speed.get("size"),
            "decisions": dict(collections.Counter(_decision(d) for d in decisions.values())),
            "float_reasons": {g: d.get("reason") for g, d in decisions.items() if d.get("kept_float")},
            "groups": len(decisions)}


def _decision(decision: dict) -> str:
    """One layer group's outcome in the search, in a word or three."""
    if decision.get("kept_float"):
        return "kept float (INT8 did not pay)"
    return "not tried (time budget spent)" if decision.get("int8_pays") is None else "INT8 (pays or within 3%)"


def figures(out: Path, facts: dict) -> dict:
    """The demo's figures from its facts JSON, ``export/export.json`` and ``bench.json``."""
    export = json.loads((out / "export" / "export.json").read_text())
    bench = json.loads((out / "bench.json").read_text())
    onnx = {r["precision"]: r for r in bench["rows"] if r["backend"] == "onnxruntime" and r["status"] == "ok"}
    fp32, int8 = (onnx.get(p, {}).get("mean_dice") for p in ("fp32", "int8"))
    quality = export.get("int8_quality") or {}
    prune = facts["prune"]
    return {
        "seconds_per_stage": facts["seconds_per_stage"],
        "train_dice": facts["train"]["best_dice"], "parameters": facts["train"]["parameters"],
        "pruned_parameters": prune["parameters"]["after"], "pruned_dice": prune["dice"]["finetuned"],
        "heldout_volumes": len(onnx.get("fp32", {}).get("dice_per_volume") or []),
        "heldout_dice_fp32": fp32, "heldout_dice_int8": int8,
        "int8_dice_drop": None if fp32 is None or int8 is None else fp32 - int8,
        "export_int8_dice_drop": quality.get("dice_drop"), "export_int8_check": quality.get("dice_check"),
        "volume_ms": {p: row.get("volume_ms") for p, row in onnx.items()},
        "int8_faster_than_fp32": export.get("int8_faster_than_fp32"), "int8_search": _search(export),
        "predict_precision": facts["predict"]["precision"],
    }


def run(out: Path) -> Path:
    """Runs the 3-D demo once and writes ``<machine>-demo3d.json`` into ``out``."""
    from edgeunet.atomic import write_json
    from edgeunet.env import machine_name, provenance

    with tempfile.TemporaryDirectory(prefix="edgeunet-demo3d-") as tmp:
        work = Path(tmp)
        command = [sys.executable, "-m", "edgeunet", "quickstart", "--3d", "--out", str(work / "quickstart3d"),
                   "--no-progress", "--json", str(work / "facts.json")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
        load_before, start = os.getloadavg(), time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds, load_after = time.perf_counter() - start, os.getloadavg()
        if done.returncode:
            raise RuntimeError(f"edgeunet quickstart --3d failed ({done.returncode}): {done.stderr[-3000:]}")
        found = figures(work / "quickstart3d", json.loads((work / "facts.json").read_text()))
    result = {"kind": "demo3d", "date": datetime.date.today().isoformat(), "machine": machine_name(),
              "command": "edgeunet quickstart --3d --out runs/quickstart3d", "seconds": round(seconds, 1), **found,
              "load_average": {"before": [round(v, 2) for v in load_before],
                               "after": [round(v, 2) for v in load_after]},
              "provenance": provenance(None)}
    return write_json(out / f"{machine_name()}-demo3d.json", result)


def block(path: Path, data: dict) -> str:
    """docs/3d.md: time and figures of ``edgeunet quickstart --3d`` (``benchmarks/tables.py``)."""
    minutes, seconds = divmod(round(data["seconds"]), 60)
    cpu = data["provenance"]["cpu"]
    search = data.get("int8_search") or {}
    floats = ", ".join(search.get("float_groups") or []) or "none"
    reasons = "; ".join(f"{count} of {search['groups']} {reason}" for reason, count in
                        (search.get("decisions") or {}).items())
    speed = (f"INT8 ran at {search['speedup']:.2f}x the speed of FP32 at {search['size']}^3 in its timing "
             f"({search.get('verdict') or 'no verdict'})") if search.get("speedup") else "INT8 was not timed"
    load = data.get("load_average", {}).get("before")
    busy = f" with a load average of {load[0]:.1f} from other processes" if load else ""
    return (f"On the {cpu['usable_cores']}-core {cpu['model']}{busy} ({data['date']}, `benchmarks/demo3d_time.py`), "
            f"`edgeunet quickstart --3d` took {minutes} min {seconds} s: validation Dice {data['train_dice']:.3f} "
            f"(whole volumes), pruned {data['parameters'] / 1e6:.3f} M -> {data['pruned_parameters'] / 1e6:.3f} M "
            f"parameters with Dice {data['pruned_dice']:.3f} after fine-tuning; on {data['heldout_volumes']} "
            f"held-out volumes FP32 Dice {data['heldout_dice_fp32']:.4f} and INT8 {data['heldout_dice_int8']:.4f} "
            f"(drop {data['int8_dice_drop']:.4f}). The INT8 search kept `{search.get('kept')}` (layer groups in "
            f"float: {floats}); {speed}; group decisions: {reasons or 'none recorded'}. The demo predicted with "
            f"{data['predict_precision'].upper()} (INT8 only where the export timed it faster).")


def summary(result: dict) -> str:
    """The line the script prints about its result."""
    return (f"quickstart --3d: {result['seconds']:.0f} s, Dice {result['train_dice']:.4f}, held-out FP32 "
            f"{result['heldout_dice_fp32']:.4f} / INT8 {result['heldout_dice_int8']:.4f}")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.demo_time import script_main

    return script_main(argv, "benchmarks/demo3d_time.py", __doc__, run, summary)


if __name__ == "__main__":
    sys.exit(main())
