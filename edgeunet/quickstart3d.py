"""``edgeunet quickstart --3d``: the whole 3-D pipeline on built-in synthetic volumes, in minutes on 2 CPU cores.

synthetic volumes -> train ``unet3d-ds`` on random patches (validation: whole volumes through the
runtime's sliding window) -> light prune + fine-tune -> export FP32 ONNX (dynamic D, H, W) ->
predict held-out volumes with the torch-free ``Segmenter`` -> bench. Kept apart from the 2-D
``edgeunet.quickstart``; the stages call the public APIs only (``train``, ``prune_checkpoint``,
``export_model``, ``Segmenter``, ``run_bench``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quickstart3DSettings:
    """Sizes picked so the demo finishes within about 5 minutes on 2 idle CPU cores."""

    out: str = "runs/quickstart3d"
    n_volumes: int = 24
    heldout_volumes: int = 4
    volume_side: int = 48
    patch_side: int = 32
    epochs: int = 6  # 4 epochs reached validation Dice 0.914 (see the report of the 3-D training work)
    samples_per_epoch: int = 48
    batch_size: int = 4
    lr: float = 5e-3
    prune_ratio: float = 0.25
    finetune_epochs: int = 2
    bench_seconds: float = 0.5
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        for name, low in (("n_volumes", 2), ("heldout_volumes", 1), ("volume_side", 16), ("patch_side", 8),
                          ("epochs", 1), ("samples_per_epoch", 1), ("batch_size", 1), ("finetune_epochs", 0)):
            if int(getattr(self, name)) < low:
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least {low}")
        if self.seed < 0:
            raise UserError(f"--seed {self.seed} must be 0 or more")
        if not 0 < self.prune_ratio < 1:
            raise UserError(f"prune_ratio {self.prune_ratio} must be between 0 and 1, e.g. 0.25")

    @property
    def patch(self) -> tuple[int, int, int]:
        return (self.patch_side,) * 3


def run_quickstart3d(settings: Quickstart3DSettings, report=print, stages: tuple[str, ...] | None = None) -> dict:
    """Runs the 3-D pipeline; ``report(line)`` receives the progress lines the CLI prints.

    Args:
        settings: Sizes and seeds.
        report: Called with each progress line.
        stages: Run only these of ("data", "train", "prune", "export", "predict", "bench"), in
            pipeline order (None: all); a stage needs the outputs of those before it.

    Returns:
        Facts of every stage run (paths, Dice, timings).
    """
    from .atomic import ensure_dir

    out = ensure_dir(settings.out, "--out")
    wanted = stages or ("data", "train", "prune", "export", "predict", "bench")
    facts: dict = {"out": str(out)}
    t0 = time.perf_counter()
    data_dir, heldout_dir = out / "data", out / "heldout"
    steps = [("data", lambda: _data(settings, data_dir, heldout_dir, report)),
             ("train", lambda: _train(settings, out / "train", data_dir, report)),
             ("prune", lambda: _prune(settings, out / "train" / "best.pt", out / "prune", data_dir, report)),
             ("export", lambda: _export(settings, out / "prune" / "best.pt", out / "export", data_dir, report)),
             ("predict", lambda: _predict(out / "export" / "model.onnx", heldout_dir, out / "predict", report)),
             ("bench", lambda: _bench(settings, out, heldout_dir, report))]
    for name, step in steps:
        if name in wanted:
            started = time.perf_counter()
            facts[name] = step()
            facts.setdefault("seconds_per_stage", {})[name] = round(time.perf_counter() - started, 1)
    facts["seconds"] = round(time.perf_counter() - t0, 1)
    report(f"done in {facts['seconds']:.0f} s; everything is under {out}")
    return facts


def _data(settings: Quickstart3DSettings, data_dir: Path, heldout_dir: Path, report) -> dict:
    from .data.sources import split_seed
    from .data.synthetic3d import write_synthetic_volumes

    shape = (settings.volume_side,) * 3
    if not (data_dir / "images").is_dir():
        write_synthetic_volumes(data_dir, n=settings.n_volumes, size=shape, seed=settings.seed)
    if not (heldout_dir / "images").is_dir():  # another seed: volumes training never saw
        write_synthetic_volumes(heldout_dir, n=settings.heldout_volumes, size=shape,
                                seed=split_seed(settings.seed, "val"))
    report(f"[1] data      {settings.n_volumes} synthetic {settings.volume_side}^3 nuclei volumes + masks in "
           f"{data_dir}, {settings.heldout_volumes} held-out ones in {heldout_dir}")
    return {"data": str(data_dir), "heldout": str(heldout_dir)}


def _train(settings: Quickstart3DSettings, train_dir: Path, data_dir: Path, report) -> dict:
    from .train import TrainSettings, train

    result = train(TrainSettings(
        data=str(data_dir), model="unet3d-ds", out=str(train_dir), epochs=settings.epochs,
        batch_size=settings.batch_size, patch=settings.patch, samples_per_epoch=settings.samples_per_epoch,
        lr=settings.lr, val_fraction=0.17, seed=settings.seed, device="cpu", progress=settings.progress,
        exist_ok=True,  # a quickstart run again replaces its own run
    ))
    report(f"[2] train     unet3d-ds, {result['parameters'] / 1e6:.3f} M parameters, {settings.epochs} epochs on "
           f"{settings.patch_side}^3 patches: validation Dice {result['best_dice']:.4f} (whole volumes, sliding "
           f"window) -> {result['best_path']}")
    return {"best_dice": result["best_dice"], "checkpoint": result["best_path"], "parameters": result["parameters"]}


def _prune(settings: Quickstart3DSettings, best: Path, prune_dir: Path, data_dir: Path, report) -> dict:
    from .prune import prune_checkpoint

    pruned = prune_checkpoint(best, prune_dir, data=str(data_dir), ratio=settings.prune_ratio,
                              finetune_epochs=settings.finetune_epochs, round_to=4, patch=settings.patch,
                              batch_size=settings.batch_size, samples_per_epoch=settings.samples_per_epoch,
                              lr=settings.lr / 5, seed=settings.seed, device="cpu", progress=settings.progress,
                              exist_ok=True)
    params, macs, dice = pruned["parameters"], pruned["macs"], pruned["dice"]
    report(f"[3] prune     ratio {settings.prune_ratio}: {params['before'] / 1e6:.3f} M -> "
           f"{params['after'] / 1e6:.3f} M parameters, {macs['before'] / 1e9:.3f} -> {macs['after'] / 1e9:.3f} "
           f"GMACs at {pruned['img_size']}^3; Dice {_fmt(dice['before'])} -> {_fmt(dice['pruned'])} pruned -> "
           f"{_fmt(dice['finetuned'])} fine-tuned")
    return pruned


def _export(settings: Quickstart3DSettings, checkpoint: Path, export_dir: Path, data_dir: Path, report) -> dict:
    """FP32 ONNX with dynamic D, H, W (INT8 ran slower than FP32 on CPUs for unet3d-ds, so it is left out)."""
    from .export import ExportOptions, export_model

    options = ExportOptions(calib=str(data_dir), val_images=settings.heldout_volumes, seed=settings.seed)
    exported = export_model(checkpoint, export_dir, options, progress=settings.progress)
    for art in exported.get("artifacts") or []:
        report(f"[4] export    {art['file']} ({art['size_bytes'] / 1e6:.2f} MB)")
    return {"out": str(export_dir), "artifacts": exported.get("artifacts"),
            "verification": exported.get("verification")}


def _predict(model_path: Path, heldout_dir: Path, predict_dir: Path, report) -> dict:
    import numpy as np

    from .atomic import ensure_dir
    from .data.volume_sources import list_volume_files, volume_name
    from .data.volumes import read_volume, write_volume
    from .runtime import Segmenter

    segmenter = Segmenter(model_path)
    ensure_dir(predict_dir, "predict folder")
    rows = []
    for path in list_volume_files(heldout_dir / "images"):
        volume = read_volume(path)
        t0 = time.perf_counter()
        mask = np.asarray(segmenter(volume.array))
        rows.append((time.perf_counter() - t0) * 1e3)
        write_volume(predict_dir / f"{volume_name(path)}.nii.gz", mask.astype(np.uint8), like=volume)
    mean_ms = float(np.mean(rows)) if rows else 0.0
    report(f"[5] predict   torch-free runtime, FP32: {len(rows)} held-out volumes, {mean_ms:.0f} ms each -> "
           f"masks in {predict_dir}")
    return {"out": str(predict_dir), "volumes": len(rows), "mean_ms": mean_ms}


def _bench(settings: Quickstart3DSettings, out: Path, heldout_dir: Path, report) -> str:
    from .bench import BenchSettings, format_table, run_bench, write_json
    from .timing import TimingSettings

    models = [str(out / "prune" / "best.pt"), str(out / "export" / "model.onnx")]
    timing = TimingSettings(min_time=settings.bench_seconds)
    bench_settings = BenchSettings(data=str(heldout_dir), num_images=settings.heldout_volumes,
                                   sizes=(settings.volume_side,), timing=timing)
    bench = run_bench(models, bench_settings, progress=settings.progress)
    write_json(bench, out / "bench.json")
    report(f"[6] bench     {out / 'bench.json'} (Dice on held-out volumes)\n" + format_table(bench))
    return str(out / "bench.json")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
