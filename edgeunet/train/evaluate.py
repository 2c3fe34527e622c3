"""Scores a PyTorch model on full raw images (or whole volumes) through the shared preprocessing,
padding and numpy metrics.

Images are padded to the model's size multiple by ``edgeunet.runtime.tiling.pad_to_multiple``
(reflection), the rule the runtime applies on the device, so validation scores what ships. Volumes
of a 3-D model go through ``edgeunet.runtime.window.sliding_window`` (window = the training
patch), the code the device runs, on PyTorch logits. Torch is imported on first use, so
``edgeunet.train`` imports light.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metrics import ConfusionCounter
from ..runtime.preprocess import preprocess
from ..runtime.tiling import crop, pad_to_multiple
from ..runtime.window import sliding_window

DEFAULT_WINDOW = 64  # sliding-window side of 3-D scoring when no window is given (clipped to the volume)
DEFAULT_OVERLAP = 0.25


def predict_logits(model, image: np.ndarray, preprocessing: dict, device: str = "cpu") -> np.ndarray:
    """(H, W[, C]) raw image -> (K, H, W) float32 logits of a ``torch.nn.Module`` U-Net."""
    import torch

    cfg = model.cfg
    x, (h, w) = pad_to_multiple(preprocess(image, preprocessing, cfg.in_channels), cfg.size_multiple)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.ascontiguousarray(x))[None].to(device))
    return crop(logits[0].float().cpu().numpy(), h, w)


def predict_volume(model, volume: np.ndarray, preprocessing: dict, device: str = "cpu", window=DEFAULT_WINDOW,
                   overlap: float = DEFAULT_OVERLAP, normalize: bool = True) -> np.ndarray:
    """(D, H, W[, C]) raw volume -> (K, D, H, W) float32 probabilities of a 3-D U-Net, window by window.

    Args:
        window: (D, H, W) sliding window (one int: a cube), each a multiple of the model's size
            multiple on that axis; axes shorter than it run whole.
        overlap: Share of a window overlapping its neighbour along each axis.
        normalize: False gives unnormalised weighted sums (same argmax, one buffer less).
    """
    import torch

    from ..data.volumes_prep import preprocess_volume

    cfg = model.cfg
    x = preprocess_volume(volume, preprocessing, cfg.in_channels)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(batch)).to(device)).float().cpu().numpy()

    return sliding_window(x, run, cfg.num_classes, window, overlap, cfg.size_multiples, normalize=normalize)


def evaluate_counts(model, samples: Sequence, preprocessing: dict, device: str = "cpu", window=DEFAULT_WINDOW,
                    overlap: float = DEFAULT_OVERLAP) -> np.ndarray:
    """(K, 3) true positive / false positive / false negative pixel (voxel) counts over the samples.

    A 3-D model scores whole volumes through ``predict_volume`` (``window``, ``overlap``); a 2-D
    model whole images. The model is put in eval mode and restored to its previous mode afterwards.
    """
    was_training = model.training
    model.eval()
    counter = ConfusionCounter(model.cfg.num_classes)
    volumes = getattr(model.cfg, "spatial_dims", 2) == 3
    for _, image, mask in samples:
        if volumes:
            scores = predict_volume(model, image, preprocessing, device, window, overlap, normalize=False)
        else:
            scores = predict_logits(model, image, preprocessing, device)
        counter.update(scores.argmax(0), mask)
    model.train(was_training)
    return counter.counts


def evaluate(model, samples: Sequence[tuple[str, np.ndarray, np.ndarray]], preprocessing: dict,
             device: str = "cpu", window=DEFAULT_WINDOW, overlap: float = DEFAULT_OVERLAP) -> dict:
    """Per-class and mean Dice/IoU of ``model`` over (name, raw image (H, W[, C]), mask (H, W)) samples,
    or (name, raw volume (D, H, W[, C]), mask (D, H, W)) for a 3-D model (``window``, ``overlap``)."""
    counter = ConfusionCounter(model.cfg.num_classes)
    counter.counts = evaluate_counts(model, samples, preprocessing, device, window, overlap)
    return counter.summary()
