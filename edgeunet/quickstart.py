"""``edgeunet quickstart``: the whole pipeline on built-in synthetic data, in a few minutes on 2 CPU cores.

Every stage of the toolkit joins here as it lands, so the demo always shows the pipeline that exists:
synthetic data -> train -> evaluate -> prune + fine-tune -> export FP32/INT8 (+ parity) -> runtime -> bench.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class QuickstartSettings:
    """Sizes picked so the demo finishes in minutes on 2 CPU cores; raise them for better models."""

    out: str = "runs/quickstart"
    n_images: int = 64
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


def run_quickstart(settings: QuickstartSettings, report=print) -> dict:
    """Runs the pipeline; ``report(line)`` receives the progress lines the CLI prints.

    Returns:
        Facts of every stage (paths, Dice, timings).
    """
    from .bench import BenchSettings, format_table, run_bench, write_json
    from .data.synthetic import write_synthetic
    from .export import export_model
    from .prune import prune_checkpoint
    from .runtime import Segmenter, predict_files
    from .timing import TimingSettings
    from .train import TrainSettings, train

    out = Path(settings.out)
    facts: dict = {"out": str(out)}
    t0 = time.perf_counter()

    data_dir = out / "data"
    if not (data_dir / "images").is_dir():
        write_synthetic(data_dir, n=settings.n_images, size=settings.image_size, seed=settings.seed)
    report(f"[1] data      {settings.n_images} synthetic microscopy images + masks in {data_dir}")
    facts["data"] = str(data_dir)

    train_dir = out / "train"
    result = train(TrainSettings(
        data=str(data_dir), model="unet-ds", out=str(train_dir), epochs=settings.epochs, batch_size=settings.batch_size,
        img_size=settings.img_size, samples_per_epoch=settings.samples_per_epoch, seed=settings.seed, device="cpu",
        progress=settings.progress, exist_ok=True,  # a quickstart run again replaces its own run
    ))
    facts["train"] = {"best_dice": result["best_dice"], "checkpoint": result["best_path"], "parameters": result["parameters"]}
    report(f"[2] train     unet-ds, {result['parameters'] / 1e6:.3f} M parameters, {settings.epochs} epochs: "
           f"validation Dice {result['best_dice']:.4f} -> {result['best_path']}")
    best = Path(result["best_path"])

    prune_dir = out / "prune"
    pruned = prune_checkpoint(best, prune_dir, data=str(data_dir), ratio=settings.prune_ratio, finetune_epochs=settings.finetune_epochs,
                              img_size=settings.img_size, batch_size=settings.batch_size, samples_per_epoch=settings.samples_per_epoch,
                              seed=settings.seed, device="cpu", progress=settings.progress, exist_ok=True)
    facts["prune"] = pruned
    params, macs, dice = pruned["parameters"], pruned["macs"], pruned["dice"]
    report(f"[3] prune     ratio {settings.prune_ratio}: {params['before'] / 1e6:.3f} M -> {params['after'] / 1e6:.3f} M parameters "
           f"(-{params['reduction']:.0%}), {macs['before'] / 1e9:.3f} -> {macs['after'] / 1e9:.3f} GMACs at {pruned['img_size']} px; "
           f"Dice {_fmt(dice['before'])} -> {_fmt(dice['pruned'])} pruned -> {_fmt(dice['finetuned'])} fine-tuned")

    export_dir = out / "export"
    exported = export_model(prune_dir / "best.pt", export_dir, int8=True, calib=str(data_dir), calib_size=16,
                            search_time=settings.int8_search_seconds, progress=settings.progress)
    facts["export"] = {"out": str(export_dir), "artifacts": exported.get("artifacts"), "verification": exported.get("verification")}
    for line in _export_lines(exported):
        report(f"[4] export    {line}")

    predict_dir = out / "predict"
    segmenter = Segmenter(export_dir / "model.int8.onnx")
    images = sorted((data_dir / "images").iterdir())[:4]
    predicted = predict_files(segmenter, images, predict_dir, overlays=True)
    facts["predict"] = {"out": str(predict_dir), "images": predicted["images"], "mean_ms": predicted["mean_ms"]}
    report(f"[5] predict   torch-free runtime, INT8: {predicted['images']} images, {predicted['mean_ms']:.1f} ms each -> masks and overlays in {predict_dir}")

    models = [str(prune_dir / "best.pt"), str(export_dir / "model.onnx"), str(export_dir / "model.int8.onnx")]
    bench_settings = BenchSettings(data=str(data_dir), num_images=8, sizes=(256,),
                                   timing=TimingSettings(min_time=settings.bench_seconds))
    bench = run_bench(models, bench_settings, progress=settings.progress)
    write_json(bench, out / "bench.json")
    facts["bench"] = str(out / "bench.json")
    report(f"[6] bench     {out / 'bench.json'}\n" + format_table(bench))

    facts["seconds"] = round(time.perf_counter() - t0, 1)
    report(f"done in {facts['seconds']:.0f} s; everything is under {out}")
    return facts


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _export_lines(report: dict) -> list[str]:
    lines = []
    for art in report["artifacts"]:
        par = art.get("parity") or {}
        ref = "FP32 ONNX" if art.get("precision") == "int8" else "PyTorch"
        agreement = f", argmax agreement with {ref} {par['argmax_agreement']:.4%}" if par else ""
        lines.append(f"{art['file']} ({art['size_bytes'] / 1e6:.2f} MB){agreement}")
    quality = report.get("int8_quality") or {}
    if quality.get("dice_drop") is not None:
        lines.append(f"INT8 Dice {quality['int8']['mean_dice']:.4f} vs FP32 {quality['fp32']['mean_dice']:.4f} (drop {quality['dice_drop']:.4f})")
    return lines
