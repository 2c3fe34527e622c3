"""Train, prune and export one variant of the zoo into WORKDIR/<label>/, as a user would.

WORKDIR/<label>/train (best.pt), prune (best.pt of the pruned model), export (model.onnx,
model.int8.onnx), export-pruned (model.int8.onnx) and, for variants with ``runtimes``,
export-runtimes (FP32 and INT8 files of ``Budget.runtime_formats``). A stage that fails is recorded with its
reason and the stages that need its output are skipped; the other variants go on. When the
INT8 export fails its check, the FP32 file is exported alone so that its rows are still measured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from .zoo import Budget, Variant

logger = logging.getLogger(__name__)

# Kinds of benchmarked file, in table order; the bench rows are matched to them by path.
KINDS = ("torch-fp32", "onnx-fp32", "onnx-int8", "pruned-int8")


def run_stage(record: dict, name: str, fn: Callable[[], dict]) -> dict | None:
    """Runs one stage, timing it; an exception is recorded as the stage's error instead of raised."""
    t0 = time.perf_counter()
    try:
        return fn()
    except Exception as exc:  # one variant's failure must not cost the whole run
        logger.exception("%s: %s failed", record["label"], name)
        record["errors"][name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return None
    finally:
        record["time_s"][name] = round(time.perf_counter() - t0, 1)


def _train(variant: Variant, folder: Path, budget: Budget, progress: bool) -> dict:
    from edgeunet.train import TrainSettings, train

    settings = TrainSettings(
        data="synthetic", model=variant.model, out=str(folder / "train"),
        model_options={**budget.model_options, **variant.model_options},
        epochs=budget.train_epochs, batch_size=budget.batch_size, img_size=budget.img_size,
        samples_per_epoch=budget.samples_per_epoch,
        val_samples=budget.val_samples, device="cpu", progress=progress, exist_ok=True)
    return train(settings)


def _prune(checkpoint: str, folder: Path, budget: Budget, progress: bool) -> dict:
    from edgeunet.prune import prune_checkpoint

    return prune_checkpoint(checkpoint, folder / "prune", data="synthetic", ratio=budget.prune_ratio,
                            finetune_epochs=budget.finetune_epochs,
                            img_size=budget.img_size, batch_size=budget.batch_size,
                            samples_per_epoch=budget.samples_per_epoch,
                            device="cpu", progress=progress, exist_ok=True)


def _export(checkpoint: str, out: Path, budget: Budget, progress: bool, int8: bool = True) -> dict:
    from edgeunet.export import ExportOptions, export_model

    images = {"calib": "synthetic", "calib_images": budget.calib_size, "val_images": budget.calib_size}
    if not int8:
        return export_model(checkpoint, out, ExportOptions(**images), progress=progress)
    options = ExportOptions(int8=True, int8_search=budget.int8_search, search_time=budget.search_time, **images)
    return export_model(checkpoint, out, options, progress=progress)


def _export_runtimes(checkpoint: str, out: Path, budget: Budget, progress: bool) -> dict:
    """FP32 and INT8 files of the installed ``budget.runtime_formats`` (one ``export_model`` call, INT8 without
    the ONNX search: the files of the other runtimes are what this folder is for)."""
    from edgeunet.export import ExportOptions, export_model
    from edgeunet.formats import missing

    formats = [f for f in budget.runtime_formats if not (missing(f, "fp32") or missing(f, "int8"))]
    skipped = {f: missing(f, "fp32") or missing(f, "int8") for f in budget.runtime_formats if f not in formats}
    if formats:
        options = ExportOptions(int8=True, int8_search=False, formats=("onnx", *formats), calib="synthetic",
                                calib_images=budget.calib_size, val_images=budget.calib_size)
        export_model(checkpoint, out, options, progress=progress)
    suffixes = (".xml", ".pte", ".tflite", ".ort")
    files = sorted(str(p) for p in out.iterdir() if p.suffix in suffixes) if formats else []
    return {"files": files, "skipped": skipped}


def build_variant(variant: Variant, workdir: str | Path, budget: Budget, progress: bool = False) -> dict:
    """Trains, prunes and exports ``variant``; returns what happened.

    Args:
        variant: The zoo entry.
        workdir: Parent of the variant's folder (checkpoints and ONNX files).
        budget: Shared settings.
        progress: Progress bars of training and export on stderr.

    Returns:
        ``{"label", "model", "model_options", "note", "files": {kind: path}, "runtime_files": [path],
        "skipped_formats": {format: reason}, "train": {...}, "prune": {...}, "errors": {stage: reason},
        "time_s": {stage: s}}``; ``files`` holds the kinds of ``KINDS`` that were written.
    """
    folder = Path(workdir) / variant.label
    options = {**budget.model_options, **variant.model_options}
    record = {"label": variant.label, "model": variant.model, "model_options": options,
              "note": variant.note, "files": {}, "runtime_files": [], "skipped_formats": {}, "train": None,
              "prune": None, "errors": {}, "time_s": {}}
    trained = run_stage(record, "train", lambda: _train(variant, folder, budget, progress))
    if trained is None:
        return record
    best = trained["best_path"]
    record["train"] = {"best_dice": trained["best_dice"], "parameters": trained["parameters"], "checkpoint": best,
                       "samples": budget.train_samples, "img_size": budget.img_size}
    record["files"]["torch-fp32"] = best
    export_dir, pruned_dir = folder / "export", folder / "export-pruned"
    if run_stage(record, "export", lambda: _export(best, export_dir, budget, progress)) is not None:
        record["files"]["onnx-fp32"] = str(export_dir / "model.onnx")
        record["files"]["onnx-int8"] = str(export_dir / "model.int8.onnx")
    elif run_stage(record, "export-fp32", lambda: _export(best, export_dir, budget, progress, int8=False)) is not None:
        record["files"]["onnx-fp32"] = str(export_dir / "model.onnx")  # a failed INT8 check still leaves the FP32 row
    if variant.runtimes and budget.runtime_formats:
        made = run_stage(record, "export-runtimes",
                         lambda: _export_runtimes(best, folder / "export-runtimes", budget, progress))
        if made is not None:
            record["runtime_files"], record["skipped_formats"] = made["files"], made["skipped"]
    pruned = run_stage(record, "prune", lambda: _prune(best, folder, budget, progress))
    if pruned is None:
        return record
    pruned_best = pruned["outputs"]["best"]
    record["prune"] = {"ratio": pruned["ratio"], "parameters": pruned["parameters"], "macs": pruned["macs"],
                       "dice": pruned["dice"], "checkpoint": pruned_best}
    if run_stage(record, "export-pruned", lambda: _export(pruned_best, pruned_dir, budget, progress)) is not None:
        record["files"]["pruned-int8"] = str(pruned_dir / "model.int8.onnx")
    return record
