"""Checks that every exported file computes what the PyTorch model computes.

* FP32 ONNX vs PyTorch: max |logit difference| and argmax agreement (>= 99.99 %).
* FP16 ONNX vs PyTorch: argmax agreement (>= 99.5 %).
* INT8 ONNX vs FP32 ONNX: Dice and IoU of both against the masks; the Dice drop must stay
  within ``max_dice_drop`` (the policy, and when the check is skipped, is in ``quality``).

Every check runs on the verification images (``roles``), which neither calibration nor the INT8
search saw. ONNX files run through the runtime's own session factory (``ort_session``).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import UserError
from ..metrics import ConfusionCounter
from ..runtime.session import CPU, ort_session

MIN_AGREEMENT = {"fp32": 0.9999, "fp16": 0.995}


class ExportCheckError(UserError):
    """An exported file failed a verification check; the earlier export was left in place."""


class ParityError(ExportCheckError):
    """An ONNX file disagrees with the PyTorch model beyond the stated tolerance."""


class DiceDropError(ExportCheckError):
    """The INT8 model lost more Dice than ``max_dice_drop`` allows."""


def onnx_logits(path: str | os.PathLike, images: list[np.ndarray], threads: int | None = None) -> list[np.ndarray]:
    """Runs an ONNX file with ONNX Runtime (CPU) on each (C, H, W) image; returns (K, H, W) float32 logits."""
    session = ort_session(path, threads=threads or None, providers=[CPU])
    name = session.get_inputs()[0].name
    return [session.run(None, {name: x[None]})[0][0].astype(np.float32) for x in images]


def torch_logits(model, images: list[np.ndarray]) -> list[np.ndarray]:
    """Runs the PyTorch model (eval, CPU) on each (C, H, W) image; returns (K, H, W) float32 logits."""
    import torch

    model = model.eval()
    with torch.no_grad():
        return [model(torch.from_numpy(x)[None]).numpy()[0] for x in images]


def parity(reference: list[np.ndarray], candidate: list[np.ndarray]) -> dict:
    """Compares two lists of (K, H, W) logits.

    Returns:
        ``max_abs_diff`` (logit units), ``argmax_agreement`` (fraction of pixels with the
        same class) and ``pixels``.
    """
    diff, same, pixels = 0.0, 0, 0
    for ref, cand in zip(reference, candidate, strict=True):
        diff = max(diff, float(np.max(np.abs(ref.astype(np.float64) - cand.astype(np.float64)))))
        same += int(np.count_nonzero(ref.argmax(0) == cand.argmax(0)))
        pixels += ref[0].size
    return {"max_abs_diff": diff, "argmax_agreement": same / max(pixels, 1), "pixels": pixels}


def scores(logits: list[np.ndarray], masks: list[np.ndarray], num_classes: int) -> dict:
    """Dice and IoU (``edgeunet.metrics`` summary) of argmax predictions against masks."""
    counter = ConfusionCounter(num_classes)
    for lg, mask in zip(logits, masks, strict=True):
        counter.update(lg.argmax(0), mask)
    return counter.summary()


def check_parity(precision: str, figures: dict, min_agreement: float | None = None) -> None:
    """Raises ParityError when the argmax agreement is below the bound for ``precision``."""
    bound = MIN_AGREEMENT[precision] if min_agreement is None else min_agreement
    if figures["argmax_agreement"] < bound:
        raise ParityError(
            f"{precision} ONNX agrees with PyTorch on {figures['argmax_agreement']:.4%} of pixels, below {bound:.2%} "
            f"(max |logit diff| {figures['max_abs_diff']:.3g}): check custom ops or try another --opset"
        )


def dice_drop(fp32_scores: dict, int8_scores: dict) -> float | None:
    """FP32 minus INT8 mean foreground Dice; None when either is undefined (no foreground)."""
    a, b = fp32_scores.get("mean_dice"), int8_scores.get("mean_dice")
    return None if a is None or b is None else float(a - b)


def check_dice_drop(drop: float | None, max_drop: float, culprits: list[dict]) -> None:
    """Raises DiceDropError naming the layers with the lowest SQNR when ``drop`` > ``max_drop``."""
    if drop is None or drop <= max_drop:
        return
    names = ", ".join(f"{c['tensor']} ({c['sqnr_db']:.1f} dB)" for c in culprits) or "unknown"
    raise DiceDropError(
        f"INT8 Dice drop {drop:.4f} exceeds --max-dice-drop {max_drop:g}; lowest-SQNR tensors: {names}: "
        "try --calib-method percentile or entropy, more --calib-images, or --fp16"
    )
