"""``prune_checkpoint``: prune a trained checkpoint in steps, fine-tune with the shared trainer,
and write RUN_DIR/best.pt, last.pt, metrics.jsonl and prune.json, as ``edgeunet prune`` does."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from .. import __version__
from . import MIN_CHANNELS
from ..checkpoint import make_checkpoint, save_checkpoint
from ..train.distributed import DistContext
from .pruner import check_importance, check_ratio, count_macs_params, planned_widths, prune_to_widths
from .session import PruneSession, open_session, write_json
from .target import find_ratio, parse_count

log = logging.getLogger(__name__)


def _check_settings(steps: int, finetune_epochs: int, round_to: int, batch_size: int, lr: float, min_channels: int) -> None:
    checks = [
        (min_channels >= 1, f"--min-channels must be at least 1, got {min_channels}"),
        (steps >= 1, f"--steps must be at least 1, got {steps}"),
        (finetune_epochs >= 0, f"--finetune-epochs must be 0 or more, got {finetune_epochs}"),
        (round_to >= 1, f"--round-to must be at least 1 (8 suits most accelerators), got {round_to}"),
        (batch_size >= 1, f"--batch-size must be at least 1, got {batch_size}"),
        (lr > 0, f"--lr must be positive, got {lr}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _size(model, img_size: int) -> dict:
    macs, params = count_macs_params(model, img_size)
    return {"parameters": params, "macs": macs, "widths": model.width_plan()}


def _settings(session: PruneSession, out: Path, epochs: int, options: dict):
    from ..train import TrainSettings

    cfg = session.model.cfg
    return TrainSettings(
        data=str(options["data"]), model=cfg.name, out=str(out), epochs=epochs, batch_size=options["batch_size"],
        img_size=session.img_size, num_classes=cfg.num_classes, samples_per_epoch=options["samples_per_epoch"],
        lr=options["lr"], schedule="cosine", init=session.source, seed=options["seed"], device=session.device,
        progress=options["progress"],
    )


def _finetune(session: PruneSession, out: Path, epochs: int, options: dict, facts: dict) -> dict:
    from ..train.loop import fit

    torch.manual_seed(options["seed"])
    settings = _settings(session, out, epochs, options)
    return fit(session.model, session.train_ds, session.val_samples, settings, session.preprocessing, session.class_names,
               extra={"prune": facts})


def _save_unfinetuned(session: PruneSession, out: Path, dice: float | None, facts: dict) -> dict:
    """best.pt and last.pt of the pruned model as is (``finetune_epochs=0``)."""
    ckpt = make_checkpoint(session.model, session.preprocessing, session.class_names, {"mean_dice": dice}, epoch=-1, prune=facts)
    best, last = out / "best.pt", out / "last.pt"
    if DistContext.from_env().is_main:  # under torchrun only rank 0 writes
        save_checkpoint(ckpt, best)
        save_checkpoint(ckpt, last)
    return {"best_dice": dice, "best_path": str(best), "last_path": str(last)}


def _prune_steps(session: PruneSession, out: Path, ratio: float, options: dict, facts: dict) -> list[dict]:
    """Prunes to ``ratio`` in ``steps`` equal steps, fine-tuning into RUN_DIR/step<k>/ between steps."""
    model, steps = session.model, options["steps"]
    calib = session.calibration_batches(options["batch_size"], seed=options["seed"]) if options["importance"] == "taylor" else None
    original, rows = model.width_plan(), []
    for step in range(1, steps + 1):
        step_ratio = ratio * step / steps
        t0 = time.perf_counter()
        widths = planned_widths(original, step_ratio, options["round_to"], options["min_channels"])
        prune_to_widths(model, widths, options["importance"], None, calib, options["round_to"])
        size = _size(model, session.img_size)
        row = {"step": step, "ratio": round(step_ratio, 6), "parameters": size["parameters"], "macs": size["macs"],
               "dice_pruned": session.dice(), "prune_s": round(time.perf_counter() - t0, 3)}
        if step < steps and options["finetune_epochs"] > 0:
            result = _finetune(session, out / f"step{step}", options["finetune_epochs"], options, {**facts, "step": step})
            row["dice_finetuned"] = result["last_metrics"].get("mean_dice")
        log.info("step %d/%d: %s", step, steps, row)
        rows.append(row)
    return rows


def _report(session: PruneSession, out: Path, ratio: float, targets: dict, before: dict, rows: list[dict], result: dict,
            options: dict, times: dict) -> dict:
    """The prune.json document."""
    after, finetuned = _size(session.model, session.img_size), options["finetune_epochs"] > 0

    def change(key: str) -> dict:
        return {"before": before[key], "after": after[key], "reduction": round(1 - after[key] / before[key], 6)}

    return {
        "edgeunet_version": __version__,
        "checkpoint": session.source,
        "model": session.model.cfg.name,
        "ratio": ratio,
        "targets": targets,
        "img_size": session.img_size,
        "parameters": change("parameters"),
        "macs": change("macs"),
        "widths": {"before": before["widths"], "after": after["widths"]},
        "dice": {"before": before["dice"], "pruned": rows[-1]["dice_pruned"], "finetuned": result["best_dice"] if finetuned else None},
        "steps": rows,
        "model_config": session.model.current_config().to_dict(),
        "settings": {**options, "ratio": ratio, "target_macs": targets["macs"], "target_params": targets["params"],
                     "img_size": session.img_size, "device": session.device},
        "outputs": {"best": result["best_path"], "last": result["last_path"], "metrics": str(out / "metrics.jsonl") if finetuned else None},
        "time_s": times,
    }


def prune_checkpoint(checkpoint: str | os.PathLike | dict, out: str | os.PathLike, *, data: str | os.PathLike = "synthetic",
                     ratio: float = 0.5, target_macs: int | str | None = None, target_params: int | str | None = None,
                     importance: str = "l1", steps: int = 1, finetune_epochs: int = 3, round_to: int = 8,
                     min_channels: int = MIN_CHANNELS, img_size: int | None = None, batch_size: int = 8, samples_per_epoch: int | None = None,
                     lr: float = 3e-3, seed: int = 0, device: str = "auto", progress: bool = True) -> dict:
    """Prunes a checkpoint, fine-tunes it and writes RUN_DIR/{best.pt, last.pt, metrics.jsonl, prune.json}.

    Args:
        checkpoint: A ``best.pt``/``last.pt`` path or checkpoint dict.
        out: Run folder.
        data: Fine-tuning data: a folder data set or ``"synthetic"``.
        ratio: Fraction of channels removed from every width, in [0, 1).
        target_macs: Instead of ``ratio``: MACs per (1, C, img_size, img_size) image to reach ("0.5G", 4e8...).
        target_params: Instead of ``ratio``: parameter count to reach ("150k", "1.2M"...).
        importance: ``l1``, ``l2``, ``taylor`` or ``bn-scale``.
        steps: Prune in this many steps, fine-tuning ``finetune_epochs`` between them (RUN_DIR/step<k>/).
        finetune_epochs: Epochs of the final fine-tuning (0: save the pruned model as is, no metrics.jsonl).
        round_to: Kept channel counts are multiples of this.
        min_channels: No width is pruned below this; narrower widths are kept whole.
        img_size: Training crop and MAC-counting size (default: the checkpoint's training size, else 256).
        batch_size, samples_per_epoch, lr, seed, device, progress: As for ``edgeunet train``.

    Returns:
        The prune.json content: parameters, MACs and widths before/after, Dice before, right after
        pruning and after fine-tuning, the steps, settings, outputs and times.
    """
    t0 = time.perf_counter()
    check_importance(importance)
    _check_settings(steps, finetune_epochs, round_to, batch_size, lr, min_channels)
    targets = {"macs": None if target_macs is None else parse_count(target_macs, "--target-macs"),
               "params": None if target_params is None else parse_count(target_params, "--target-params")}
    if targets["macs"] is None and targets["params"] is None:
        check_ratio(ratio)
    out = Path(out)
    session = open_session(checkpoint, data, img_size, samples_per_epoch, seed, device)
    options = dict(data=str(data), importance=importance, steps=steps, finetune_epochs=finetune_epochs, round_to=round_to,
                   min_channels=min_channels, batch_size=batch_size, samples_per_epoch=samples_per_epoch, lr=lr, seed=seed, progress=progress)
    if targets["macs"] is not None or targets["params"] is not None:
        ratio = find_ratio(session.model, session.img_size, round_to, targets["macs"], targets["params"], min_channels=min_channels)
    before = {**_size(session.model, session.img_size), "dice": session.dice()}
    facts = {"source": session.source, "ratio": ratio, "importance": importance, "round_to": round_to,
             "min_channels": min_channels, "steps": steps, "img_size": session.img_size, "parameters_before": before["parameters"], "macs_before": before["macs"],
             "widths_before": before["widths"], "dice_before": before["dice"]}
    t_prune = time.perf_counter()
    rows = _prune_steps(session, out, ratio, options, facts)
    t_finetune = time.perf_counter()
    if finetune_epochs > 0:
        result = _finetune(session, out, finetune_epochs, options, facts)
    else:
        result = _save_unfinetuned(session, out, rows[-1]["dice_pruned"], facts)
    times = {"setup": round(t_prune - t0, 3), "steps": round(t_finetune - t_prune, 3),
             "finetune": round(time.perf_counter() - t_finetune, 3), "total": round(time.perf_counter() - t0, 3)}
    report = _report(session, out, ratio, targets, before, rows, result, options, times)
    write_json(out / "prune.json", report)
    return report
