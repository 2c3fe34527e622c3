"""Accuracy and size facts of a benchmarked model: Dice/IoU through ``Segmenter``, parameters and MACs.

Accuracy is measured once per model on full images with the runtime's ``Segmenter`` built around
the opened backend, so the score is that of the code users embed (its preprocessing, padding to
the size multiple and, for images larger than a tile, its blended tiles), for every backend and
precision alike. Parameters and MACs come from the one MAC counter, ``models.cost.count_cost``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ..errors import UserError
from ..metrics import ConfusionCounter
from .memory import RssPeak

logger = logging.getLogger(__name__)


def evaluate_backend(backend, samples: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> dict:
    """Per-class and mean Dice/IoU of an open backend's model over (name, raw image, mask) samples.

    Args:
        backend: An open backend (``runtime.backends.open_backend`` or ``TorchBackend``).
        samples: Raw images (H, W[, C]) and masks (H, W) int, as ``data.sources.load_samples`` gives them.

    Returns:
        ``metrics.ConfusionCounter.summary()``: dice, iou (per class), mean_dice, mean_iou. For 3-D models
        (volumes (D, H, W[, C]) with (D, H, W) masks) also, per whole volume through ``Segmenter``:
        ``volume_ms`` (mean), ``volume_voxels_per_s``, ``volume_peak_rss_mb`` (the process's peak during
        one volume, MB), ``dice_per_volume`` ([{name, shape, mean_dice}]) and ``window`` (side, voxels).

    Raises:
        UserError: A mask holds a class id the model does not have.
    """
    from ..runtime.segmenter import Segmenter

    segmenter = Segmenter.from_backend(backend)
    counter = ConfusionCounter(segmenter.num_classes)
    volumes = segmenter.metadata.spatial_dims == 3
    per_volume, seconds, voxels, peaks = [], 0.0, 0, []
    for name, image, mask in samples:
        top = int(mask.max()) if mask.size else 0
        if top >= segmenter.num_classes:
            raise UserError(f"mask of {name} has class id {top} but the model has {segmenter.num_classes} classes: "
                            "bench on data labelled with the model's classes")
        if not volumes:
            counter.update(segmenter(image), mask)
            continue
        with RssPeak() as probe:
            start = time.perf_counter()
            pred = segmenter(image)
            seconds += time.perf_counter() - start
        peaks.append(probe.peak_mb)
        counter.update(pred, mask)
        voxels += int(mask.size)
        one = ConfusionCounter(segmenter.num_classes)
        one.update(pred, mask)
        per_volume.append({"name": name, "shape": list(mask.shape), "mean_dice": one.summary()["mean_dice"]})
    summary = counter.summary()
    if volumes and per_volume:
        summary.update(volume_ms=1000.0 * seconds / len(per_volume), volume_voxels_per_s=voxels / max(seconds, 1e-9),
                       volume_peak_rss_mb=max((p for p in peaks if p is not None), default=None),
                       dice_per_volume=per_volume, window=segmenter.tile)
    return summary


@lru_cache(maxsize=32)
def _cost(config_json: str, size: int) -> tuple[int, int]:
    from ..models import ModelConfig, build_model
    from ..models.cost import count_cost

    cost = count_cost(build_model(ModelConfig.from_dict(json.loads(config_json))), size)
    return cost.parameters, cost.macs


def model_cost_at(model_config: dict, size: int) -> tuple[int | None, int | None]:
    """Parameters and MACs of one (1, C, size, size) forward, from a model config.

    The model is rebuilt from ``model_config`` (random weights; counts do not depend on them) and
    counted by ``models.cost.count_cost``. Returns (None, None) without a config, without torch
    and torch-pruning (a runtime-only install), or when counting fails (logged).
    """
    if not model_config:
        return None, None
    try:
        return _cost(json.dumps(model_config, sort_keys=True), int(size))
    except ImportError as exc:
        logger.info("parameters and MACs left out: %s", exc)
    except Exception as exc:  # counting is a nicety: a config torch-pruning cannot trace must not fail the row
        logger.warning("could not count parameters and MACs at %d px: %s: %s", size, type(exc).__name__, exc)
    return None, None
