"""``edgeunet quickstart --3d``: the whole 3-D pipeline on built-in synthetic volumes, in minutes on 2 CPU cores.

synthetic volumes -> train ``unet3d-ds`` on random patches (validation: whole volumes through the
runtime's sliding window) -> light prune + fine-tune -> export FP32 and INT8 ONNX (dynamic D, H, W;
the INT8 search records what it kept and how fast INT8 ran here) -> predict held-out volumes with
the torch-free ``Segmenter`` -> bench FP32, INT8 and the checkpoint on them. Kept apart from the 2-D
``edgeunet.quickstart``; the stages call the public APIs only (``train``, ``prune_checkpoint``,
``export_model``, ``Segmenter``, ``run_bench``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .errors import UserError
from .quickstart_stages import DemoSettings, bench_stage, export_lines, prune_stage, write_folders

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quickstart3DSettings(DemoSettings):
    """Sizes picked so the demo finishes within about 5 minutes on 2 CPU cores (see benchmarks/demo3d_time.py).

    ``widths`` are narrower than the registered unet3d-ds (8, 32, 64, 128): on a CPU, PyTorch trains those
    about 5x slower per step (3-D depthwise convolutions at 32 channels), and the narrow model reaches the
    same Dice on these volumes within the budget. ``bench_seconds``, ``int8_search_seconds``, ``seed`` and
    ``progress`` come from ``DemoSettings``.
    """

    MINIMUMS: ClassVar[dict[str, int]] = {"n_volumes": 2, "heldout_volumes": 1, "volume_side": 16, "patch_side": 8,
                                          "epochs": 1, "samples_per_epoch": 1, "batch_size": 1, "finetune_epochs": 0}
    PRUNE_EXAMPLE: ClassVar[str] = "0.25"

    out: str = "runs/quickstart3d"
    n_volumes: int = 24
    heldout_volumes: int = 4  # INT8 search and verification (halved), prediction and benchmark volumes
    volume_side: int = 48
    patch_side: int = 32
    widths: tuple[int, ...] = (8, 16, 32, 64)
    epochs: int = 3  # 0.916 validation Dice (0.92 on the held-out volumes) in benchmarks/demo3d_time.py
    samples_per_epoch: int = 64
    batch_size: int = 4
    lr: float = 5e-3
    prune_ratio: float = 0.25
    finetune_epochs: int = 1
    int8_search_seconds: float = 45.0  # 15 s timed only whole-model candidates at 48^3; 45 s tries the layer groups

    def __post_init__(self):
        super().__post_init__()
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise UserError(f"widths {list(self.widths)} must be two or more positive channel counts, e.g. [8, 16, 32]")

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
    steps = [("data", lambda: _data(settings, out, report)),
             ("train", lambda: _train(settings, out / "train", data_dir, report)),
             ("prune", lambda: _prune(settings, out / "train" / "best.pt", out / "prune", data_dir, report)),
             ("export", lambda: _export(settings, out / "prune" / "best.pt", out / "export", (data_dir, heldout_dir),
                                        report)),
             ("predict", lambda: _predict(out / "export", _int8_faster(facts, out), heldout_dir, out / "predict",
                                          report)),
             ("bench", lambda: _bench(settings, out, heldout_dir, report))]
    for name, step in steps:
        if name in wanted:
            started = time.perf_counter()
            facts[name] = step()
            facts.setdefault("seconds_per_stage", {})[name] = round(time.perf_counter() - started, 1)
    facts["seconds"] = round(time.perf_counter() - t0, 1)
    report(f"done in {facts['seconds']:.0f} s; everything is under {out}")
    return facts


def _int8_faster(facts: dict, out: Path) -> bool | None:
    """The export's ``int8_faster_than_fp32``: from this run's facts, else from ``export/export.json``."""
    if "export" in facts:
        return facts["export"].get("int8_faster_than_fp32")
    import json

    return json.loads((out / "export" / "export.json").read_text(encoding="utf-8")).get("int8_faster_than_fp32")


def _data(settings: Quickstart3DSettings, out: Path, report) -> dict:
    from .data.synthetic import write_synthetic_volumes

    def write(folder: Path, n: int, seed: int) -> None:
        write_synthetic_volumes(folder, n=n, size=(settings.volume_side,) * 3, seed=seed)

    data_dir, heldout_dir = write_folders(out, write, (settings.n_volumes, settings.heldout_volumes), settings.seed)
    report(f"[1] data      {settings.n_volumes} synthetic {settings.volume_side}^3 nuclei volumes + masks in "
           f"{data_dir}, {settings.heldout_volumes} held-out ones in {heldout_dir}")
    return {"data": str(data_dir), "heldout": str(heldout_dir)}


def _train(settings: Quickstart3DSettings, train_dir: Path, data_dir: Path, report) -> dict:
    from .train import TrainSettings, train

    result = train(TrainSettings(
        data=str(data_dir), model="unet3d-ds", model_options={"widths": list(settings.widths)}, out=str(train_dir),
        epochs=settings.epochs, batch_size=settings.batch_size, patch=settings.patch,
        samples_per_epoch=settings.samples_per_epoch, lr=settings.lr, val_fraction=0.17, seed=settings.seed,
        device="cpu", progress=settings.progress, exist_ok=True,  # a quickstart run again replaces its own run
    ))
    report(f"[2] train     unet3d-ds {'-'.join(map(str, settings.widths))} wide, {result['parameters'] / 1e6:.3f} M "
           f"parameters, {settings.epochs} epochs on {settings.patch_side}^3 patches: validation Dice "
           f"{result['best_dice']:.4f} (whole volumes, sliding window) -> {result['best_path']}")
    return {"best_dice": result["best_dice"], "checkpoint": result["best_path"], "parameters": result["parameters"]}


def _prune(settings: Quickstart3DSettings, best: Path, prune_dir: Path, data_dir: Path, report) -> dict:
    pruned, line = prune_stage(settings, best, prune_dir, data_dir, "{}^3", patch=settings.patch, round_to=4,
                               lr=settings.lr / 5)
    report(line)
    return pruned


def _export(settings: Quickstart3DSettings, checkpoint: Path, export_dir: Path, data: tuple[Path, Path],
            report) -> dict:
    """FP32 and INT8 ONNX with dynamic D, H, W: INT8 calibrated on the training volumes, searched (timed on
    ``volume_side``^3, the volumes predict runs) and verified on the held-out volumes (halved)."""
    from .export import ExportOptions, export_model

    data_dir, heldout_dir = data
    half = max(1, settings.heldout_volumes // 2)
    options = ExportOptions(int8=True, calib=str(data_dir), val=str(heldout_dir), calib_images=8,
                            search_images=half, val_images=max(1, settings.heldout_volumes - half),
                            search_time=settings.int8_search_seconds, search_img_size=settings.volume_side,
                            seed=settings.seed)
    exported = export_model(checkpoint, export_dir, options, progress=settings.progress)
    for line in export_lines(exported, heldout_dir, samples="volumes"):
        report(f"[4] export    {line}")
    search = exported.get("int8_search") or {}
    report(f"[4] export    INT8 search: kept {search.get('chosen')!r}, float groups "
           f"{search.get('float_groups') or 'none'}; INT8 {_speed(exported.get('int8_speed'))} than FP32 at "
           f"{settings.volume_side}^3 (export.json records every candidate and why each layer group stayed "
           "INT8 or float)")
    return {"out": str(export_dir), "artifacts": exported.get("artifacts"), "data": exported.get("data"),
            "verification": exported.get("verification"), "int8_quality": exported.get("int8_quality"),
            "int8_faster_than_fp32": exported.get("int8_faster_than_fp32")}


def _speed(speed: dict | None) -> str:
    if not speed or not speed.get("speedup"):
        return "not timed"
    ratio = speed["speedup"]
    return f"x{ratio:.2f} ({'faster' if ratio > 1 else 'slower'}, {speed.get('verdict') or 'no verdict'})"


def _predict(export_dir: Path, int8_faster: bool | None, heldout_dir: Path, predict_dir: Path, report) -> dict:
    """Segments the held-out volumes with the INT8 model when the export found it faster, else with FP32."""
    import numpy as np

    from .atomic import ensure_dir
    from .runtime import Segmenter
    from .runtime.imageio import file_stem, list_files
    from .runtime.volume_files import VOLUME_SUFFIXES, read_volume, write_volume

    precision = "int8" if int8_faster else "fp32"
    segmenter = Segmenter(export_dir / ("model.int8.onnx" if int8_faster else "model.onnx"))
    ensure_dir(predict_dir, "predict folder")
    rows = []
    for path in list_files(heldout_dir / "images", VOLUME_SUFFIXES):
        volume = read_volume(path)
        t0 = time.perf_counter()
        mask = np.asarray(segmenter(volume.array))
        rows.append((time.perf_counter() - t0) * 1e3)
        write_volume(predict_dir / f"{file_stem(path)}.nii.gz", mask.astype(np.uint8), like=volume)
    mean_ms = float(np.mean(rows)) if rows else 0.0
    why = "the export timed it faster" if int8_faster else "the export did not find INT8 faster here"
    report(f"[5] predict   torch-free runtime, {precision.upper()} ({why}): {len(rows)} held-out volumes, "
           f"{mean_ms:.0f} ms each -> masks in {predict_dir}")
    return {"out": str(predict_dir), "precision": precision, "volumes": len(rows), "mean_ms": mean_ms}


def _bench(settings: Quickstart3DSettings, out: Path, heldout_dir: Path, report) -> str:
    models = [out / "prune" / "best.pt", out / "export" / "model.onnx", out / "export" / "model.int8.onnx"]
    path, table = bench_stage(models, heldout_dir, (settings.volume_side,), settings.heldout_volumes, settings, out)
    report(f"[6] bench     {path} (Dice on held-out volumes)\n" + table)
    return str(path)
