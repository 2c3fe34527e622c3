"""The INT8 check's policy, on the verification images: passed, failed or skipped with its reason.

The check compares FP32 and INT8 mean foreground Dice against the masks of images that neither
calibration nor the INT8 search saw. It is skipped, never silently (a warning and the reason in
export.json ``int8_quality.dice_check``), when the masks are missing or hold no foreground, since
Dice is then undefined or meaningless. A drop over ``max_dice_drop`` raises ``DiceDropError`` naming
the tensors with the lowest SQNR.
"""

from __future__ import annotations

import logging

import numpy as np

from .samples import Inputs
from .verify import dice_drop, parity, scores

logger = logging.getLogger(__name__)

PASSED, FAILED = "passed", "failed"
NO_MASKS = "skipped: verification images have no masks"
NO_FOREGROUND = "skipped: verification images have no foreground"
UNDEFINED = "skipped: Dice is undefined on the verification images"


def dice_verdict(inputs: Inputs, drop: float | None, max_dice_drop: float) -> str:
    """The one INT8 Dice verdict: passed, failed, or skipped with the reason (no masks, no foreground, undefined).

    Args:
        inputs: The images the drop was measured on (their masks decide whether it means anything).
        drop: Reference minus INT8 mean Dice (None: undefined).
        max_dice_drop: Largest allowed drop.
    """
    if not inputs.has_masks:
        return NO_MASKS
    if not inputs.has_foreground:
        return NO_FOREGROUND
    if drop is None:
        return UNDEFINED
    return PASSED if drop <= max_dice_drop else FAILED


def int8_quality(fp32_logits: list[np.ndarray], int8_logits: list[np.ndarray], val: Inputs, num_classes: int,
                 max_dice_drop: float) -> dict:
    """The ``int8_quality`` record: parity with FP32, both Dice scores, the drop and the check's outcome.

    Args:
        fp32_logits, int8_logits: (K, H, W) logits of each verification image.
        val: The verification images with their masks.
        num_classes: K.
        max_dice_drop: Largest allowed FP32 - INT8 mean Dice.
    """
    quality: dict = {"images": "verification", "count": len(val.names), "max_dice_drop": max_dice_drop,
                     "int8_vs_fp32": parity(fp32_logits, int8_logits)}
    if not val.has_masks:
        quality.update(dice_drop=None, dice_check=dice_verdict(val, None, max_dice_drop))
    else:
        quality["fp32"] = scores(fp32_logits, val.masks, num_classes)
        quality["int8"] = scores(int8_logits, val.masks, num_classes)
        quality["dice_drop"] = dice_drop(quality["fp32"], quality["int8"])
        quality["dice_check"] = dice_verdict(val, quality["dice_drop"], max_dice_drop)
    if quality["dice_check"].startswith("skipped"):
        logger.warning("INT8 Dice check %s: give verification images with labelled objects (--val DIR)",
                       quality["dice_check"])
    return quality


def search_scores(fp32_logits: list[np.ndarray], search: Inputs, num_classes: int) -> dict | None:
    """FP32 scores on the search images, the reference of the search's Dice; None (with a warning) when the
    search images have no masks or no foreground, and candidates are then chosen by speed alone."""
    if search.has_masks and search.has_foreground:
        return scores(fp32_logits, search.masks, num_classes)
    logger.warning("the INT8 search images have no %s: candidates are chosen by speed alone "
                   "(the final Dice check still runs on the verification images)",
                   "masks" if not search.has_masks else "foreground")
    return None
