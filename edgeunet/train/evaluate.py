"""Scores a PyTorch model on full raw images through the shared preprocessing and numpy metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..metrics import ConfusionCounter
from ..runtime.preprocess import preprocess


def pad_to_multiple(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pads a (C, H, W) array at the bottom and right to multiples of ``multiple``.

    Returns:
        The padded array and the original (H, W), to crop back.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "edge"
        x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode=mode)
    return x, (h, w)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, image: np.ndarray, preprocessing: dict, device: str = "cpu") -> np.ndarray:
    """(H, W[, C]) raw image -> (K, H, W) float32 logits."""
    cfg = model.cfg
    x, (h, w) = pad_to_multiple(preprocess(image, preprocessing, cfg.in_channels), cfg.size_multiple)
    logits = model(torch.from_numpy(x)[None].to(device))
    return logits[0, :, :h, :w].float().cpu().numpy()


@torch.no_grad()
def evaluate_counts(model: torch.nn.Module, samples: Sequence, preprocessing: dict, device: str = "cpu") -> np.ndarray:
    """(K, 3) true positive / false positive / false negative pixel counts over the samples.

    The model is put in eval mode and restored to its previous mode afterwards.
    """
    was_training = model.training
    model.eval()
    counter = ConfusionCounter(model.cfg.num_classes)
    for _, image, mask in samples:
        counter.update(predict_logits(model, image, preprocessing, device).argmax(0), mask)
    model.train(was_training)
    return counter.counts


def evaluate(model: torch.nn.Module, samples: Sequence[tuple[str, np.ndarray, np.ndarray]], preprocessing: dict, device: str = "cpu") -> dict:
    """Per-class and mean Dice/IoU of ``model`` over (name, raw image, mask) samples."""
    counter = ConfusionCounter(model.cfg.num_classes)
    counter.counts = evaluate_counts(model, samples, preprocessing, device)
    return counter.summary()
