"""Scores a PyTorch model on full raw images through the shared preprocessing, padding and numpy metrics.

Images are padded to the model's size multiple by ``edgeunet.runtime.tiling.pad_to_multiple``
(reflection), the rule the runtime applies on the device, so validation scores what ships.
Torch is imported on first use, so ``edgeunet.train`` imports light.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metrics import ConfusionCounter
from ..runtime.preprocess import preprocess
from ..runtime.tiling import crop, pad_to_multiple


def predict_logits(model, image: np.ndarray, preprocessing: dict, device: str = "cpu") -> np.ndarray:
    """(H, W[, C]) raw image -> (K, H, W) float32 logits of a ``torch.nn.Module`` U-Net."""
    import torch

    cfg = model.cfg
    x, (h, w) = pad_to_multiple(preprocess(image, preprocessing, cfg.in_channels), cfg.size_multiple)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.ascontiguousarray(x))[None].to(device))
    return crop(logits[0].float().cpu().numpy(), h, w)


def evaluate_counts(model, samples: Sequence, preprocessing: dict, device: str = "cpu") -> np.ndarray:
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


def evaluate(model, samples: Sequence[tuple[str, np.ndarray, np.ndarray]], preprocessing: dict,
             device: str = "cpu") -> dict:
    """Per-class and mean Dice/IoU of ``model`` over (name, raw image (H, W[, C]), mask (H, W)) samples."""
    counter = ConfusionCounter(model.cfg.num_classes)
    counter.counts = evaluate_counts(model, samples, preprocessing, device)
    return counter.summary()
