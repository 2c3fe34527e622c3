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

from .errors import UserError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickstartSettings:
    """Sizes picked so the demo finishes in minutes on 2 CPU cores; raise them for better models."""

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
    bench_seconds: float = 0.5
    int8_search_seconds: float = 15.0
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        for name, low in (("n_images", 2), ("heldout_images", 2), ("image_size", 16), ("img_size", 16),
                          ("epochs", 1), ("samples_per_epoch", 1), ("batch_size", 1), ("finetune_epochs", 0)):
            if int(getattr(self, name)) < low:
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least {low}")
        if self.seed < 0:
            raise UserError(f"--seed {self.seed} must be 0 or more")
        if not 0 < self.prune_ratio < 1:
            raise UserError(f"prune_ratio {self.prune_ratio} must be between 0 and 1, e.g. 0.5")
        if not (self.bench_seconds > 0 and self.int8_search_seconds > 0):
            raise UserError("bench_seconds and int8_search_seconds must be positive numbers of seconds")


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
    from .data.sources import split_seed
    from .data.synthetic import write_synthetic

    data_dir, heldout_dir = out / "data", out / "heldout"
    if not (data_dir / "images").is_dir():
        write_synthetic(data_dir, n=settings.n_images, size=settings.image_size, seed=settings.seed)
    if not (heldout_dir / "images").is_dir():  # another seed: images training never saw
        write_synthetic(heldout_dir, n=settings.heldout_images, size=settings.image_size,
                        seed=split_seed(settings.seed, "val"))
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
    from .prune import prune_checkpoint

    pruned = prune_checkpoint(best, prune_dir, data=str(data_dir), ratio=settings.prune_ratio,
                              finetune_epochs=settings.finetune_epochs, img_size=settings.img_size,
                              batch_size=settings.batch_size, samples_per_epoch=settings.samples_per_epoch,
                              seed=settings.seed, device="cpu", progress=settings.progress, exist_ok=True)
    params, macs, dice = pruned["parameters"], pruned["macs"], pruned["dice"]
    report(f"[3] prune     ratio {settings.prune_ratio}: {params['before'] / 1e6:.3f} M -> "
           f"{params['after'] / 1e6:.3f} M parameters (-{params['reduction']:.0%}), {macs['before'] / 1e9:.3f} -> "
           f"{macs['after'] / 1e9:.3f} GMACs at {pruned['img_size']} px; Dice {_fmt(dice['before'])} -> "
           f"{_fmt(dice['pruned'])} pruned -> {_fmt(dice['finetuned'])} fine-tuned")
    return pruned


def _export(settings: QuickstartSettings, checkpoint: Path, export_dir: Path, data: tuple[Path, Path], report) -> dict:
    """INT8 calibrated on the training folder, searched and verified on the held-out folder (halved)."""
    from .export import ExportOptions, export_model

    data_dir, heldout_dir = data
    half = max(1, settings.heldout_images // 2)
    options = ExportOptions(int8=True, calib=str(data_dir), val=str(heldout_dir), calib_images=16,
                            search_images=half, val_images=settings.heldout_images - half,
                            search_time=settings.int8_search_seconds, seed=settings.seed)
    exported = export_model(checkpoint, export_dir, options, progress=settings.progress)
    for line in _export_lines(exported, heldout_dir):
        report(f"[4] export    {line}")
    return {"out": str(export_dir), "artifacts": exported.get("artifacts"), "data": exported.get("data"),
            "verification": exported.get("verification"), "int8_quality": exported.get("int8_quality")}


def _predict(export_dir: Path, heldout_dir: Path, predict_dir: Path, report) -> dict:
    from .runtime import Segmenter, predict_files

    segmenter = Segmenter(export_dir / "model.int8.onnx")
    images = sorted((heldout_dir / "images").iterdir())[:4]
    predicted = predict_files(segmenter, images, predict_dir, overlays=True)
    report(f"[5] predict   torch-free runtime, INT8: {predicted['images']} held-out images, "
           f"{predicted['mean_ms']:.1f} ms each -> masks and overlays in {predict_dir}")
    return {"out": str(predict_dir), "images": predicted["images"], "mean_ms": predicted["mean_ms"]}


def _bench(settings: QuickstartSettings, out: Path, heldout_dir: Path, report) -> str:
    from .bench import BenchSettings, format_table, run_bench, write_json
    from .timing import TimingSettings

    models = [str(out / "prune" / "best.pt"), str(out / "export" / "model.onnx"),
              str(out / "export" / "model.int8.onnx")]
    bench_settings = BenchSettings(data=str(heldout_dir), num_images=8, sizes=(256,),
                                   timing=TimingSettings(min_time=settings.bench_seconds))
    bench = run_bench(models, bench_settings, progress=settings.progress)
    write_json(bench, out / "bench.json")
    report(f"[6] bench     {out / 'bench.json'} (Dice on held-out images)\n" + format_table(bench))
    return str(out / "bench.json")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _export_lines(report: dict, heldout_dir: Path) -> list[str]:
    lines = []
    for art in report["artifacts"]:
        par = art.get("parity") or {}
        ref = "FP32 ONNX" if art.get("precision") == "int8" else "PyTorch"
        agreement = f", argmax agreement with {ref} {par['argmax_agreement']:.4%}" if par else ""
        lines.append(f"{art['file']} ({art['size_bytes'] / 1e6:.2f} MB){agreement}")
    quality = report.get("int8_quality") or {}
    if quality.get("dice_drop") is not None and quality.get("dice_check") in ("passed", "failed"):
        lines.append(f"INT8 Dice {quality['int8']['mean_dice']:.4f} vs FP32 {quality['fp32']['mean_dice']:.4f} "
                     f"(drop {quality['dice_drop']:.4f}) on {quality['count']} held-out images of {heldout_dir} "
                     "that training, calibration and the INT8 search never saw")
    elif quality:
        lines.append(f"INT8 Dice check {quality.get('dice_check')}")
    return lines
