"""``edgeunet quickstart``: the whole pipeline on built-in synthetic data, in a few minutes on 2 CPU cores.

Every stage of the toolkit joins here as it lands, so the demo always shows the pipeline that exists:
synthetic data -> train -> evaluate -> prune + fine-tune -> export FP32/INT8 (+ parity) -> runtime -> bench.

Two synthetic folders are written: ``data/`` (training, and INT8 calibration) and ``heldout/``
(another seed), whose images the export halves into INT8 search and verification images and on
which the runtime and the benchmark run: the INT8 figures come from images nothing trained or
calibrated on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .formats import MODEL_SUFFIXES, missing
from .quickstart_stages import DemoSettings, bench_stage, export_lines, prune_stage, write_folders

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickstartSettings(DemoSettings):
    """Sizes picked so the demo finishes in minutes on 2 CPU cores; raise them for better models.

    ``bench_seconds``, ``int8_search_seconds``, ``seed`` and ``progress`` come from ``DemoSettings``.
    """

    MINIMUMS: ClassVar[dict[str, int]] = {"n_images": 2, "heldout_images": 2, "image_size": 16, "img_size": 16,
                                          "epochs": 1, "samples_per_epoch": 1, "batch_size": 1, "finetune_epochs": 0}

    out: str = "runs/quickstart"
    n_images: int = 64
    heldout_images: int = 16  # INT8 search and verification (halved), prediction and benchmark images
    image_size: int = 256
    img_size: int = 128
    epochs: int = 6
    samples_per_epoch: int = 256
    batch_size: int = 8
    prune_ratio: float = 0.5
    finetune_epochs: int = 4


def run_quickstart(settings: QuickstartSettings, report=print) -> dict:
    """Runs the pipeline; ``report(line)`` receives the progress lines the CLI prints.

    Returns:
        Facts of every stage (paths, Dice, timings).

    Raises:
        UserError: ``settings.out`` cannot be written (before anything runs).
    """
    from .atomic import ensure_dir

    out = ensure_dir(settings.out, "--out")
    facts: dict = {"out": str(out)}
    t0 = time.perf_counter()
    data_dir, heldout_dir = _data(settings, out, report)
    facts["data"], facts["heldout"] = str(data_dir), str(heldout_dir)
    facts["train"] = best = _train(settings, out / "train", data_dir, report)
    facts["prune"] = _prune(settings, Path(best["checkpoint"]), out / "prune", data_dir, report)
    facts["export"] = exported = _export(settings, out / "prune" / "best.pt", out / "export", (data_dir, heldout_dir),
                                         report)
    facts["predict"] = _predict(Path(exported["out"]), heldout_dir, out / "predict", report)
    facts["bench"] = _bench(settings, out, heldout_dir, report)
    facts["seconds"] = round(time.perf_counter() - t0, 1)
    report(f"done in {facts['seconds']:.0f} s; everything is under {out}")
    return facts


def _data(settings: QuickstartSettings, out: Path, report) -> tuple[Path, Path]:
    from .data.synthetic import write_synthetic

    def write(folder: Path, n: int, seed: int) -> None:
        write_synthetic(folder, n=n, size=settings.image_size, seed=seed)

    data_dir, heldout_dir = write_folders(out, write, (settings.n_images, settings.heldout_images), settings.seed)
    report(f"[1] data      {settings.n_images} synthetic microscopy images + masks in {data_dir}, "
           f"{settings.heldout_images} held-out ones in {heldout_dir}")
    return data_dir, heldout_dir


def _train(settings: QuickstartSettings, train_dir: Path, data_dir: Path, report) -> dict:
    from .train import TrainSettings, train

    result = train(TrainSettings(
        data=str(data_dir), model="unet-ds", out=str(train_dir), epochs=settings.epochs, batch_size=settings.batch_size,
        img_size=settings.img_size, samples_per_epoch=settings.samples_per_epoch, seed=settings.seed, device="cpu",
        progress=settings.progress, exist_ok=True,  # a quickstart run again replaces its own run
    ))
    report(f"[2] train     unet-ds, {result['parameters'] / 1e6:.3f} M parameters, {settings.epochs} epochs: "
           f"validation Dice {result['best_dice']:.4f} -> {result['best_path']}")
    return {"best_dice": result["best_dice"], "checkpoint": result["best_path"], "parameters": result["parameters"]}


def _prune(settings: QuickstartSettings, best: Path, prune_dir: Path, data_dir: Path, report) -> dict:
    pruned, line = prune_stage(settings, best, prune_dir, data_dir, "{} px", img_size=settings.img_size)
    report(line)
    return pruned


def _export(settings: QuickstartSettings, checkpoint: Path, export_dir: Path, data: tuple[Path, Path], report) -> dict:
    """INT8 calibrated on the training folder, searched and verified on the held-out folder (halved)."""
    from .export import ExportOptions, export_model

    data_dir, heldout_dir = data
    half = max(1, settings.heldout_images // 2)
    formats, not_here = runtime_formats()
    options = ExportOptions(int8=True, calib=str(data_dir), val=str(heldout_dir), calib_images=16,
                            search_images=half, val_images=settings.heldout_images - half,
                            search_time=settings.int8_search_seconds, seed=settings.seed, formats=formats)
    exported = export_model(checkpoint, export_dir, options, progress=settings.progress)
    for line in export_lines(exported, heldout_dir):
        report(f"[4] export    {line}")
    for line in not_here:
        report(f"[4] export    {line}")
    return {"out": str(export_dir), "artifacts": exported.get("artifacts"), "data": exported.get("data"),
            "verification": exported.get("verification"), "int8_quality": exported.get("int8_quality")}


# Runtimes of the demo's table: fast exports only. LiteRT and ExecuTorch take a minute or more each:
# `edgeunet export CKPT --recipe phone-int8` writes them.
DEMO_FORMATS = ("onnx", "ort", "openvino")


def runtime_formats() -> tuple[tuple[str, ...], list[str]]:
    """(the demo's ``--formats`` whose libraries are installed here, lines naming what else could join)."""
    formats = tuple(f for f in DEMO_FORMATS if f == "onnx" or missing(f, "int8") is None)
    lines = [f"more runtimes: {fmt} needs {missing(fmt, 'int8')}" for fmt in DEMO_FORMATS if fmt not in formats]
    lines.append("for phones: `edgeunet export CKPT --recipe phone-int8` writes LiteRT, ExecuTorch and ORT-format "
                 "files (needs `pip install 'edgeunet[mobile]'`)")
    return formats, lines


def _predict(export_dir: Path, heldout_dir: Path, predict_dir: Path, report) -> dict:
    from .runtime import Segmenter, predict_files

    segmenter = Segmenter(export_dir / "model.int8.onnx")
    images = sorted((heldout_dir / "images").iterdir())[:4]
    predicted = predict_files(segmenter, images, predict_dir, overlays=True)
    report(f"[5] predict   torch-free runtime, INT8: {predicted['images']} held-out images, "
           f"{predicted['mean_ms']:.1f} ms each -> masks and overlays in {predict_dir}")
    return {"out": str(predict_dir), "images": predicted["images"], "mean_ms": predicted["mean_ms"]}


def _bench(settings: QuickstartSettings, out: Path, heldout_dir: Path, report) -> str:
    # the runtime table of this machine: the checkpoint, then every file of the export (ONNX first)
    files = sorted((p for p in (out / "export").iterdir() if p.suffix in MODEL_SUFFIXES),
                   key=lambda p: (MODEL_SUFFIXES.index(p.suffix), len(p.name), p.name))
    path, table = bench_stage([out / "prune" / "best.pt", *files], heldout_dir, (256,), 8, settings, out)
    report(f"[6] bench     {path}: every runtime of the export on this machine (Dice on held-out images)\n" + table)
    return str(path)
