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
    n_images: int = 96
    image_size: int = 256
    img_size: int = 128
    epochs: int = 4
    samples_per_epoch: int = 192
    batch_size: int = 8
    prune_ratio: float = 0.5
    finetune_epochs: int = 3
    seed: int = 0
    progress: bool = True


def run_quickstart(settings: QuickstartSettings, report=print) -> dict:
    """Runs the pipeline; ``report(line)`` receives the progress lines the CLI prints.

    Returns:
        Facts of every stage (paths, Dice, timings).
    """
    from .data.synthetic import write_synthetic
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
        progress=settings.progress,
    ))
    facts["train"] = {"best_dice": result["best_dice"], "checkpoint": result["best_path"], "parameters": result["parameters"]}
    report(f"[2] train     unet-ds, {result['parameters'] / 1e6:.3f} M parameters, {settings.epochs} epochs: "
           f"validation Dice {result['best_dice']:.4f} -> {result['best_path']}")
    facts["seconds"] = round(time.perf_counter() - t0, 1)
    report(f"done in {facts['seconds']:.0f} s; everything is under {out}")
    return facts
