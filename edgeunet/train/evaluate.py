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
from ..runtime.window import mirrored, sliding_window

DEFAULT_WINDOW = 64  # sliding-window side of 3-D scoring when no window is given (clipped to the volume)
DEFAULT_OVERLAP = 0.25


def torch_run(model, device: str = "cpu", tta: bool = False):
    """The runtime's ``RunFn`` of a ``torch.nn.Module``: (B, C, *spatial) float32 -> logits as numpy; with ``tta``
    the runtime's test-time mirroring (``window.mirrored``) around it."""
    import torch

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(batch)).to(device)).float().cpu().numpy()

    return mirrored(run) if tta else run


def predict_logits(model, image: np.ndarray, preprocessing: dict, device: str = "cpu", tta: bool = False) -> np.ndarray:
    """(H, W[, C]) raw image -> (K, H, W) float32 logits of a ``torch.nn.Module`` U-Net (with ``tta``: the log of
    the mirrored mean probability, as the runtime's ``Segmenter(tta=True)``)."""
    cfg = model.cfg
    x, (h, w) = pad_to_multiple(preprocess(image, preprocessing, cfg.in_channels), cfg.size_multiple)
    return crop(torch_run(model, device, tta)(x[None])[0], h, w)


def predict_volume(model, volume: np.ndarray, preprocessing: dict, device: str = "cpu", window=DEFAULT_WINDOW,
                   overlap: float = DEFAULT_OVERLAP, normalize: bool = True, tta: bool = False) -> np.ndarray:
    """(D, H, W[, C]) raw volume -> (K, D, H, W) float32 probabilities of a 3-D U-Net, window by window.

    Args:
        window: (D, H, W) sliding window (one int: a cube), each a multiple of the model's size
            multiple on that axis; axes shorter than it run whole.
        overlap: Share of a window overlapping its neighbour along each axis.
        normalize: False gives unnormalised weighted sums (same argmax, one buffer less).
        tta: Test-time mirroring of every window (8x the model calls).
    """
    from ..data.volumes_prep import preprocess_volume

    cfg = model.cfg
    x = preprocess_volume(volume, preprocessing, cfg.in_channels)
    return sliding_window(x, torch_run(model, device, tta), cfg.num_classes, window, overlap, cfg.size_multiples,
                          normalize=normalize)


def evaluate_counts(model, samples: Sequence, preprocessing: dict, device: str = "cpu", window=DEFAULT_WINDOW,
                    overlap: float = DEFAULT_OVERLAP, tta: bool = False) -> np.ndarray:
    """(K, 3) true positive / false positive / false negative pixel (voxel) counts over the samples.

    A 3-D model scores whole volumes through ``predict_volume`` (``window``, ``overlap``); a 2-D
    model whole images. ``tta``: with the runtime's test-time mirroring. The model is put in eval mode and
    restored to its previous mode afterwards.
    """
    was_training = model.training
    model.eval()
    counter = ConfusionCounter(model.cfg.num_classes)
    volumes = getattr(model.cfg, "spatial_dims", 2) == 3
    for _, image, mask in samples:
        if volumes:
            scores = predict_volume(model, image, preprocessing, device, window, overlap, normalize=False, tta=tta)
        else:
            scores = predict_logits(model, image, preprocessing, device, tta)
        counter.update(scores.argmax(0), mask)
    model.train(was_training)
    return counter.counts


def evaluate(model, samples: Sequence[tuple[str, np.ndarray, np.ndarray]], preprocessing: dict,
             device: str = "cpu", window=DEFAULT_WINDOW, overlap: float = DEFAULT_OVERLAP, tta: bool = False) -> dict:
    """Per-class and mean Dice/IoU of ``model`` over (name, raw image (H, W[, C]), mask (H, W)) samples,
    or (name, raw volume (D, H, W[, C]), mask (D, H, W)) for a 3-D model (``window``, ``overlap``); ``tta``:
    with test-time mirroring, as ``Segmenter(tta=True)`` runs."""
    counter = ConfusionCounter(model.cfg.num_classes)
    counter.counts = evaluate_counts(model, samples, preprocessing, device, window, overlap, tta)
    return counter.summary()
