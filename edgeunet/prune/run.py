"""``prune_checkpoint``: prune a trained checkpoint in steps, fine-tune with the shared trainer,
and write RUN_DIR/best.pt, last.pt, metrics.jsonl, results.csv/png and prune.json, as ``edgeunet prune`` does."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .. import __version__
from ..atomic import ensure_dir
from ..checkpoint import make_checkpoint, save_checkpoint
from ..env import provenance
from ..errors import MissingFileError
from ..train import TrainSettings, distributed
from ..train.loop import fit, resolve_device
from ..train.run import check_out_folder
from .plan import planned_widths
from .pruner import cost, prune_to_widths
from .session import PruneSession, open_session, write_json
from .settings import PruneSettings
from .target import find_ratio

logger = logging.getLogger(__name__)


def _size(model, img_size: int) -> dict:
    counted = cost(model, img_size)
    return {"parameters": counted.parameters, "macs": counted.macs, "widths": model.width_plan()}


def _train_settings(session: PruneSession, out: Path, epochs: int, settings: PruneSettings):
    """The trainer's settings for fine-tuning the pruned model (cosine decay from ``settings.lr``)."""

    cfg = session.model.current_config()
    options = {k: v for k, v in cfg.to_dict().items() if k != "name"}  # the pruned model as it is
    return TrainSettings(
        data=session.data_info.get("data", settings.data), model=cfg.name, out=str(out), model_options=options,
        epochs=epochs, batch_size=settings.batch_size, img_size=session.img_size, patch=session.patch,
        num_classes=cfg.num_classes,
        samples_per_epoch=settings.samples_per_epoch, lr=settings.lr, schedule="cosine", init=session.source,
        seed=settings.seed, device=session.device, progress=settings.progress, exist_ok=True,
    )


def _finetune(session: PruneSession, out: Path, epochs: int, settings: PruneSettings, facts: dict,
              on_epoch: Callable[[str], None] | None = None) -> dict:

    torch.manual_seed(settings.seed)
    train_settings = _train_settings(session, out, epochs, settings)
    return fit(session.model, session.train_ds, session.val_samples, train_settings, session.preprocessing,
               session.class_names, extra={"prune": facts}, on_epoch=on_epoch)


def _save_unfinetuned(session: PruneSession, out: Path, dice: float | None, facts: dict) -> dict:
    """best.pt and last.pt of the pruned model as is (``finetune_epochs=0``; ``epoch`` 0: none completed)."""
    ckpt = make_checkpoint(session.model, session.preprocessing, session.class_names, {"mean_dice": dice}, epoch=0,
                           prune=facts)
    best, last = out / "best.pt", out / "last.pt"
    if distributed.DistContext.from_env().is_main:  # under torchrun only rank 0 writes
        save_checkpoint(ckpt, best)
        save_checkpoint(ckpt, last)
    return {"best_dice": dice, "best_path": str(best), "last_path": str(last)}


def _prune_steps(session: PruneSession, out: Path, ratio: float, settings: PruneSettings, facts: dict) -> list[dict]:
    """Prunes to ``ratio`` in ``steps`` equal steps, fine-tuning into RUN_DIR/step<k>/ between steps."""
    model, steps = session.model, settings.steps
    taylor = settings.importance == "taylor"
    calib = session.calibration_batches(settings.batch_size, seed=settings.seed) if taylor else None
    original, rows = model.width_plan(), []
    for step in range(1, steps + 1):
        step_ratio = ratio * step / steps
        t0 = time.perf_counter()
        widths = planned_widths(original, step_ratio, settings.round_to, settings.min_channels)
        prune_to_widths(model, widths, settings.importance, calib_batches=calib, round_to=settings.round_to)
        size = _size(model, session.img_size)
        row = {"step": step, "ratio": round(step_ratio, 6), "parameters": size["parameters"], "macs": size["macs"],
               "dice_pruned": session.dice(), "prune_s": round(time.perf_counter() - t0, 3)}
        if step < steps and settings.finetune_epochs > 0:
            result = _finetune(session, out / f"step{step}", settings.finetune_epochs, settings,
                               {**facts, "step": step})
            row["dice_finetuned"] = result["last_metrics"].get("mean_dice")
        logger.info("step %d/%d: %s", step, steps, row)
        rows.append(row)
    return rows


def _report(session: PruneSession, out: Path, ratio: float, settings: PruneSettings, before: dict,
            run: dict) -> dict:
    """The prune.json document; ``run`` holds the steps' ``rows``, the trainer's ``result`` and ``times``."""
    after, finetuned = _size(session.model, session.img_size), settings.finetune_epochs > 0
    rows, result = run["rows"], run["result"]

    def change(key: str) -> dict:
        return {"before": before[key], "after": after[key], "reduction": round(1 - after[key] / before[key], 6)}

    options = {k: v for k, v in settings.to_dict().items() if k not in ("ratio", "target_macs", "target_params")}
    return {
        "edgeunet_version": __version__,
        "checkpoint": session.source,
        "model": session.model.cfg.name,
        "ratio": ratio,
        "targets": {"macs": settings.target_macs, "params": settings.target_params},
        "img_size": session.img_size,
        "patch": list(session.patch) if session.patch else None,
        "parameters": change("parameters"),
        "macs": change("macs"),
        "widths": {"before": before["widths"], "after": after["widths"]},
        "dice": {"before": before["dice"], "pruned": rows[-1]["dice_pruned"],
                 "finetuned": result["best_dice"] if finetuned else None},
        "steps": rows,
        "model_config": session.model.current_config().to_dict(),
        "settings": {**options, "ratio": ratio, "target_macs": settings.target_macs,
                     "target_params": settings.target_params, "img_size": session.img_size, "device": session.device},
        "outputs": {"best": result["best_path"], "last": result["last_path"],
                    "metrics": str(out / "metrics.jsonl") if finetuned else None},
        "time_s": run["times"],
    }


def _check_paths(checkpoint, out: Path, exist_ok: bool) -> None:
    """Before any work: the checkpoint exists, and ``out`` holds no run unless ``exist_ok`` (every rank alike)."""

    if not isinstance(checkpoint, dict) and not Path(checkpoint).is_file():
        raise MissingFileError(f"checkpoint not found: {checkpoint} (give the best.pt or last.pt of a run folder)")
    check_out_folder(out, exist_ok=exist_ok, resumable=False)


def prune_checkpoint(checkpoint: str | os.PathLike | dict, out: str | os.PathLike,
                     settings: PruneSettings | None = None, *, on_epoch: Callable[[str], None] | None = None,
                     **options) -> dict:
    """Prunes a checkpoint, fine-tunes it and writes RUN_DIR/{best.pt, last.pt, metrics.jsonl, prune.json}.

    Args:
        checkpoint: A ``best.pt``/``last.pt`` path or checkpoint dict.
        out: Run folder; one that holds a run is refused unless ``exist_ok``.
        settings: What to do (see ``PruneSettings``); or give its fields as keywords (``ratio=0.5, ...``).
        on_epoch: Called with a one-line summary after every fine-tuning epoch.

    Returns:
        The prune.json content: parameters, MACs and widths before/after, Dice before, right after
        pruning and after fine-tuning, the steps, settings, outputs and times.
    """
    t0 = time.perf_counter()
    settings = settings if settings is not None else PruneSettings(**options)
    out = Path(out)
    # Every rank checks the folder before any rank writes to it; the barrier keeps it that way.
    ctx = distributed.join(distributed.rank_device(resolve_device(settings.device), distributed.DistContext.from_env()))
    _check_paths(checkpoint, out, settings.exist_ok)
    distributed.barrier(ctx)
    if ctx.is_main:
        ensure_dir(out, "--out folder")
    session = open_session(checkpoint, settings.data, settings.img_size, settings.samples_per_epoch, settings.seed,
                           settings.device, settings.patch)
    ratio = settings.ratio
    if settings.has_target:
        ratio = find_ratio(session.model, session.img_size, settings.round_to, settings.target_macs,
                           settings.target_params, min_channels=settings.min_channels)
    before = {**_size(session.model, session.img_size), "dice": session.dice()}
    facts = {"source": session.source, "ratio": ratio, "importance": settings.importance,
             "round_to": settings.round_to, "min_channels": settings.min_channels, "steps": settings.steps,
             "img_size": session.img_size, "parameters_before": before["parameters"], "macs_before": before["macs"],
             "widths_before": before["widths"], "dice_before": before["dice"]}
    t_prune = time.perf_counter()
    rows = _prune_steps(session, out, ratio, settings, facts)
    t_finetune = time.perf_counter()
    if settings.finetune_epochs > 0:
        result = _finetune(session, out, settings.finetune_epochs, settings, facts, on_epoch)
    else:
        result = _save_unfinetuned(session, out, rows[-1]["dice_pruned"], facts)
    times = {"setup": round(t_prune - t0, 3), "steps": round(t_finetune - t_prune, 3),
             "finetune": round(time.perf_counter() - t_finetune, 3), "total": round(time.perf_counter() - t0, 3)}
    report = _report(session, out, ratio, settings, before, {"rows": rows, "result": result, "times": times})
    report["provenance"] = provenance(None)
    write_json(out / "prune.json", report)
    return report
