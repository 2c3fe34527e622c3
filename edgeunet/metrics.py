"""Segmentation metrics in numpy, so every backend (PyTorch, ONNX Runtime, TensorRT) is scored alike.

Scores are pooled over a whole data set: true/false positive and false negative pixels are
summed over all images, then Dice = 2TP / (2TP + FP + FN) and IoU = TP / (TP + FP + FN).

Rule for a class absent from both prediction and truth (TP + FP + FN = 0): its Dice and IoU
are undefined, reported as NaN (None in JSON) and left out of the means, rather than counted
as 1 (which would flatter a model) or 0 (which would punish it). Background (class 0) is
reported but left out of ``mean_dice`` and ``mean_iou``, the usual foreground score.
"""

from __future__ import annotations

import numpy as np


def confusion_counts(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class true positives, false positives and false negatives.

    Args:
        pred: Integer class ids, any shape.
        target: Integer class ids, same shape.
        num_classes: K.

    Returns:
        (K, 3) int64 array of (tp, fp, fn).
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    pred = pred.reshape(-1).astype(np.int64)
    target = target.reshape(-1).astype(np.int64)
    matrix = np.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    matrix = matrix[: num_classes * num_classes].reshape(num_classes, num_classes)
    tp = np.diag(matrix)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    return np.stack([tp, fp, fn], axis=1)


def dice_iou_from_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dice and IoU per class from (K, 3) counts; NaN where a class is absent from both."""
    tp, fp, fn = counts[:, 0].astype(np.float64), counts[:, 1], counts[:, 2]
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)
        iou = np.where(denom > 0, tp / np.maximum(tp + fp + fn, 1), np.nan)
    return dice, iou


class ConfusionCounter:
    """Accumulates counts over a data set; ``summary()`` gives per-class and mean Dice/IoU."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.counts = np.zeros((num_classes, 3), dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        self.counts += confusion_counts(pred, target, self.num_classes)

    def summary(self) -> dict:
        dice, iou = dice_iou_from_counts(self.counts)
        return summarize(dice, iou)


def summarize(dice: np.ndarray, iou: np.ndarray) -> dict:
    """Per-class lists and foreground means (NaN-aware) as JSON-able floats (None for NaN)."""
    fg = slice(1, None) if len(dice) > 1 else slice(None)
    with np.errstate(invalid="ignore"):
        mean_dice = float(np.nanmean(dice[fg])) if np.isfinite(dice[fg]).any() else float("nan")
        mean_iou = float(np.nanmean(iou[fg])) if np.isfinite(iou[fg]).any() else float("nan")
    return {
        "dice": [None if np.isnan(v) else float(v) for v in dice],
        "iou": [None if np.isnan(v) else float(v) for v in iou],
        "mean_dice": None if np.isnan(mean_dice) else mean_dice,
        "mean_iou": None if np.isnan(mean_iou) else mean_iou,
    }


def dice_iou(pred: np.ndarray, target: np.ndarray, num_classes: int) -> dict:
    """Scores one prediction (or a stacked batch) against its truth; see the module rule."""
    return summarize(*dice_iou_from_counts(confusion_counts(pred, target, num_classes)))
