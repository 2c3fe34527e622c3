"""Per-stage pruning sensitivity: the Dice lost when only one encoder or decoder stage is pruned."""

from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path

from .importance import check_importance
from .plan import MIN_CHANNELS, check_ratio
from .pruner import cost, prune_model
from .session import open_session, write_json

logger = logging.getLogger(__name__)


def stage_names(model) -> list[str]:
    """``enc0`` ... ``encD`` then ``dec0`` ... ``dec{D-1}``."""
    encoder, decoder = len(model.encoder.stages), len(model.decoder.stages)
    return [f"enc{i}" for i in range(encoder)] + [f"dec{j}" for j in range(decoder)]


def sensitivity(checkpoint: str | os.PathLike | dict, data: str | os.PathLike = "synthetic", ratio: float = 0.5, *,
                out: str | os.PathLike | None = None, importance: str = "l1", round_to: int = 8,
                min_channels: int = MIN_CHANNELS, img_size: int | None = None, batch_size: int = 8,
                samples_per_epoch: int | None = None, seed: int = 0, device: str = "auto",
                exist_ok: bool = False) -> list[dict]:
    """Prunes each stage alone by ``ratio`` (deep copies, no fine-tuning) and measures the Dice drop.

    Args:
        checkpoint: A checkpoint path or dict.
        data: Folder data set or ``"synthetic"``; its validation samples are scored.
        ratio: Fraction of each of the stage's widths removed, in [0, 1).
        out: If given, RUN_DIR for sensitivity.json (an existing one is refused unless ``exist_ok``).
        importance, round_to, min_channels: As for ``prune_model``.
        img_size: MAC-counting size (default: the checkpoint's training size, else 256).
        batch_size, samples_per_epoch, seed, device: Data for Taylor gradients and the device.

    Returns:
        One row per stage: ``stage``, ``widths_before``, ``widths_after``, ``parameters_removed``,
        ``macs_removed``, ``dice``, ``dice_drop`` (Dice before minus after; larger = more sensitive).
    """
    t0 = time.perf_counter()
    check_ratio(ratio)
    check_importance(importance)
    if out is not None:
        from ..train.run import check_out_folder

        check_out_folder(out, exist_ok=exist_ok, resumable=False, files=("sensitivity.json",))
    session = open_session(checkpoint, data, img_size, samples_per_epoch, seed, device)
    model = session.model
    calib = session.calibration_batches(batch_size, seed=seed) if importance == "taylor" else None
    before = cost(model, session.img_size)
    macs0, params0 = before.macs, before.parameters
    dice0 = session.dice()
    plan, rows = model.width_plan(), []
    for stage in stage_names(model):
        trial = prune_model(copy.deepcopy(model), ratio, importance, round_to, calib_batches=calib, stages=(stage,),
                            min_channels=min_channels)
        after_cost = cost(trial, session.img_size)
        dice = session.dice(trial)
        after = trial.width_plan()
        rows.append({
            "stage": stage,
            "widths_before": {k: v for k, v in plan.items() if k.split(".")[0] == stage},
            "widths_after": {k: v for k, v in after.items() if k.split(".")[0] == stage},
            "parameters_removed": params0 - after_cost.parameters,
            "macs_removed": macs0 - after_cost.macs,
            "dice": dice,
            "dice_drop": None if dice is None or dice0 is None else round(dice0 - dice, 6),
        })
        logger.info("sensitivity %s: %s", stage, rows[-1])
    if out is not None:
        write_json(Path(out) / "sensitivity.json", {
            "checkpoint": session.source, "ratio": ratio, "importance": importance, "round_to": round_to,
            "min_channels": min_channels, "img_size": session.img_size, "parameters": params0, "macs": macs0,
            "dice_before": dice0, "stages": rows,
            "time_s": round(time.perf_counter() - t0, 3),
        })
    return rows
