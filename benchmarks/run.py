"""The benchmark suite in one command: ``python benchmarks/run.py`` (or ``make bench``).

Trains, prunes and exports every variant of the zoo on the synthetic data set, builds the MONAI
BasicUNet reference when MONAI is installed, then benchmarks every file in ONE ``run_bench``
call (same images, threads and timing rules for all) and writes, under ``--out``,
``<machine>-<date>.{json,csv,md,png}`` and ``<machine>-<date>-summary.md``. Checkpoints and
ONNX files go to ``--workdir``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import re
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import monai_reference  # noqa: E402
from benchmarks.build import KINDS, build_variant  # noqa: E402
from benchmarks.summary import format_runtimes, format_summary, runtime_rows, summary_rows  # noqa: E402
from benchmarks.zoo import FULL, QUICK, Budget, Variant, default_zoo, quick_zoo, select  # noqa: E402

logger = logging.getLogger("benchmarks")

HERE = Path(__file__).resolve().parent


def check_sizes(variants: list[Variant], budget: Budget, with_monai: bool) -> None:
    """Raises ValueError naming valid sizes when a timed size does not fit every model."""
    from edgeunet.models import get_config

    multiples = [get_config(v.model, **{**budget.model_options, **v.model_options}).size_multiple for v in variants]
    multiple = max(multiples + ([monai_reference.SIZE_MULTIPLE] if with_monai else []))
    bad = [s for s in budget.sizes if s < multiple or s % multiple]
    if bad:
        raise ValueError(f"--img-size {','.join(map(str, bad))}: every size must be a multiple of {multiple} "
                         "(the largest size multiple in the zoo), e.g. 256,512")


def build_all(variants: list[Variant], workdir: Path, budget: Budget, with_monai: bool) -> list[dict]:
    """Build records of the variants, then of the MONAI reference when asked and installed."""
    records = []
    for i, variant in enumerate(variants, 1):
        logger.info("[%d/%d] %s: train, prune, export", i, len(variants), variant.label)
        records.append(build_variant(variant, workdir, budget))
        logger.info("%s done in %.0f s%s", variant.label, sum(records[-1]["time_s"].values()),
                    f"; errors: {records[-1]['errors']}" if records[-1]["errors"] else "")
    if with_monai and monai_reference.available():
        logger.info("MONAI BasicUNet reference: train, export")
        records.append(monai_reference.build_reference(workdir, budget))
    elif with_monai:
        logger.warning("MONAI is not installed: the BasicUNet reference is skipped "
                       "(pip install 'edgeunet[bench]' to include it)")
    return records


REFERENCE_VARIANT = "unet-ds"  # the default edge model: the suite's speed ratios are taken against its FP32 ONNX


def bench_settings(budget: Budget, reference: str | None):
    """The one ``BenchSettings`` of the suite's bench call: synthetic images, batch 1, CPU, the budget's timing."""
    from edgeunet.bench import BenchSettings
    from edgeunet.timing import TimingSettings

    timing = TimingSettings(warmup=budget.warmup, min_time=budget.min_time, min_rounds=budget.min_iters)
    return BenchSettings(data="synthetic", num_images=budget.n_images, sizes=budget.sizes, batches=(1,), device="cpu",
                         reference=reference, timing=timing)


def plot_names(records: list[dict]) -> dict[str, str]:
    """Short point names for the Pareto plot: ``"unet-ds INT8"`` for WORKDIR/unet-ds/export/model.int8.onnx."""
    from benchmarks.summary import KIND_TITLES

    names = {path: f"{record['label']} {KIND_TITLES[kind]}"
             for record in records for kind, path in record["files"].items()}
    return names | {path: f"{record['label']} {Path(path).name}"
                    for record in records for path in record.get("runtime_files", [])}


def run_suite(out: str | Path, workdir: str | Path, variants: list[Variant], budget: Budget, with_monai: bool = True,
              date: str | None = None, tag: str | None = None) -> dict:
    """Builds and benchmarks the zoo; writes the result files.

    Args:
        out: Folder of the result files (JSON, CSV, Markdown, PNG).
        workdir: Folder of checkpoints and ONNX files.
        variants: Zoo entries to build.
        budget: Shared training, export and timing settings.
        with_monai: Add the MONAI BasicUNet reference (skipped with a warning when MONAI is missing).
        date: ``YYYY-MM-DD`` in the file names; None: today.
        tag: A name for a run of some of the variants (``<machine>-<tag>-<date>``, kind ``suite-<tag>``), so
            that it does not stand in for the full suite in the README's table; None: the full suite's files.

    Returns:
        ``{"paths": {kind: Path}, "summary": Markdown text, "result": bench result with a "suite" key,
        "errors": number of failed stages}``.
    """
    from edgeunet.bench import run_bench
    from edgeunet.bench.report import environment_line
    from edgeunet.env import machine_name, provenance

    check_sizes(variants, budget, with_monai)
    t0 = time.perf_counter()
    records = build_all(variants, Path(workdir), budget, with_monai)
    files = [record["files"][kind] for record in records for kind in KINDS if kind in record["files"]]
    files += [path for record in records for path in record.get("runtime_files", [])]
    t_bench = time.perf_counter()
    logger.info("bench: %d files at %s px", len(files), ", ".join(map(str, budget.sizes)))
    if not files:
        raise RuntimeError("no variant produced a file to benchmark: see the errors logged above")
    reference = next((r["files"]["onnx-fp32"] for r in records if r["label"] == REFERENCE_VARIANT
                      and "onnx-fp32" in r["files"]), None)
    result = run_bench(files, bench_settings(budget, reference), progress=False)
    lines = summary_rows(result, records)
    summary = format_summary(lines, list(budget.sizes), {r["label"]: r["note"] for r in records if r["note"]})
    runtimes = runtime_rows(result, records)
    summary += format_runtimes(runtimes, list(budget.sizes))
    times = {"build": round(t_bench - t0, 1), "bench": round(time.perf_counter() - t_bench, 1),
             "total": round(time.perf_counter() - t0, 1)}
    summary += (f"\nSuite time: {times['total'] / 60:.1f} min (build {times['build'] / 60:.1f}, "
                f"bench {times['bench'] / 60:.1f}).\n")
    result["suite"] = {"budget": dataclasses.asdict(budget), "variants": records, "summary": lines,
                       "runtimes": runtimes, "time_s": times,
                       "monai": "included" if any(r["label"] == monai_reference.LABEL for r in records) else "skipped",
                       "provenance": provenance(result["settings"]["threads"]), **({"tag": tag} if tag else {})}
    summary += f"\n{environment_line(result)}\n"
    stem = f"{machine_name()}-{tag + '-' if tag else ''}{date or datetime.date.today().isoformat()}"
    paths = write_results(result, summary, Path(out), stem, plot_names(records))
    errors = sum(len(r["errors"]) for r in records)
    return {"paths": paths, "summary": summary, "result": result, "errors": errors}


def write_results(result: dict, summary: str, out: Path, stem: str,
                  names: dict[str, str] | None = None) -> dict[str, Path]:
    """Writes ``stem``.json/.csv/.md/.png and ``stem``-summary.md into ``out`` (atomically); ``names``: plot labels."""
    from edgeunet.atomic import write_text
    from edgeunet.bench import save_pareto_plot, write_csv, write_json, write_markdown
    from edgeunet.errors import UserError

    paths = {"json": write_json(result, out / f"{stem}.json"), "csv": write_csv(result, out / f"{stem}.csv"),
             "markdown": write_markdown(result, out / f"{stem}.md"),
             "summary": write_text(out / f"{stem}-summary.md", summary)}
    try:
        paths["plot"] = save_pareto_plot(result, out / f"{stem}.png", names)
    except UserError as exc:  # nothing was both timed and scored; the tables say why
        logger.warning("no plot: %s", exc)
    return paths


def sizes(text: str) -> tuple[int, ...]:
    """``"256,512"`` -> (256, 512)."""
    return tuple(int(v) for v in text.split(",") if v.strip())


def day(text: str) -> str:
    """A ``YYYY-MM-DD`` date, checked (it becomes part of file names)."""
    return datetime.date.fromisoformat(text).isoformat()


def tag_name(text: str) -> str:
    """A ``--tag``: lower-case letters, digits and dashes (it becomes part of file names)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", text):
        raise argparse.ArgumentTypeError(f"{text!r}: use lower-case letters, digits and dashes, e.g. transformer")
    return text


def variant_labels(text: str) -> list[str]:
    """``"unet,unet-ds"`` -> ["unet", "unet-ds"]."""
    return [v.strip() for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE / "results"),
                   help="folder of the result files (default: benchmarks/results)")
    p.add_argument("--workdir", default=str(HERE.parent / "runs" / "benchmarks"),
                   help="folder of checkpoints and ONNX files (default: runs/benchmarks)")
    p.add_argument("--quick", action="store_true",
                   help="tiny models, one small size, short timings: checks the suite end to end in about a minute")
    p.add_argument("--variants", type=variant_labels, help="comma-separated zoo labels (default: all)")
    p.add_argument("--train-epochs", type=int, help="training epochs of every variant (default: the budget's)")
    p.add_argument("--img-size", dest="sizes", type=sizes, help="timed square sizes in px, e.g. 256,512")
    p.add_argument("--min-time", type=float, help="seconds each bench row is timed for at least")
    p.add_argument("--search-time", type=float, help="seconds the INT8 search may spend per export")
    p.add_argument("--no-monai", action="store_true", help="leave out the MONAI BasicUNet reference")
    p.add_argument("--date", type=day, help="YYYY-MM-DD in the result file names (default: today)")
    p.add_argument("--tag", type=tag_name,
                   help="name of a run of some variants, e.g. transformer: writes <machine>-<tag>-<date>.* of kind "
                        "suite-<tag>, leaving the full suite's table as it is")
    from edgeunet.cli.options import deprecated_alias

    deprecated_alias(p, "--sizes", "--img-size", dest="sizes", type=sizes)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    budget = (QUICK if args.quick else FULL).replace(train_epochs=args.train_epochs, sizes=args.sizes,
                                                     min_time=args.min_time,
                                                     search_time=args.search_time)
    try:
        if budget.train_epochs < 1 or budget.min_time < 0 or not budget.sizes:
            raise ValueError("--train-epochs must be at least 1, --min-time 0 or more and --img-size non-empty, "
                             "e.g. --img-size 256,512")
        variants = select(quick_zoo() if args.quick else default_zoo(), args.variants)
        outcome = run_suite(args.out, args.workdir, variants, budget, with_monai=not args.no_monai, date=args.date,
                            tag=args.tag)
    except ValueError as exc:  # bad options; UserError is a ValueError
        print(f"benchmarks/run.py: error: {exc}", file=sys.stderr)
        return 2
    print(outcome["summary"])
    for kind, path in outcome["paths"].items():
        print(f"{kind:8s} {path}")
    if outcome["errors"]:
        print(f"{outcome['errors']} stage(s) failed: see 'Problems' in the summary", file=sys.stderr)
    return 1 if outcome["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
