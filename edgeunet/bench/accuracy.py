"""Accuracy and size facts of a benchmarked model: Dice/IoU on the data set, parameters and MACs.

Accuracy is measured once per model, at batch 1 on full images: each raw image goes through
the one ``preprocess`` function, is padded to the size multiple, run, and the logits are
cropped back, so every backend and precision is scored on exactly the same pixels.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ..metrics import ConfusionCounter
from ..runtime.preprocess import preprocess
from ..runtime.tiling import crop, pad_to_multiple
from .runners import Runner

logger = logging.getLogger(__name__)


def evaluate_runner(runner: Runner, samples: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> dict:
    """Per-class and mean Dice/IoU of a runner's model over (name, raw image, mask) samples.

    Args:
        runner: An open runner (its ``meta`` gives preprocessing, channels, classes).
        samples: Raw images (H, W[, C]) and masks (H, W) int, as ``load_samples`` gives them.

    Returns:
        ``metrics.ConfusionCounter.summary()``: dice, iou (per class), mean_dice, mean_iou.
    """
    meta = runner.meta
    counter = ConfusionCounter(meta.num_classes)
    for name, image, mask in samples:
        top = int(mask.max()) if mask.size else 0
        if top >= meta.num_classes:
            raise ValueError(f"mask of {name} has class id {top} but the model has {meta.num_classes} classes: "
                             "bench on data labelled with the model's classes")
        x, (height, width) = pad_to_multiple(preprocess(image, meta.preprocessing, meta.in_channels), meta.size_multiple)
        logits = runner.predict(np.ascontiguousarray(x[None], dtype=np.float32))
        counter.update(crop(logits[0], height, width).argmax(0), mask)
    return counter.summary()


@lru_cache(maxsize=32)
def _cost(config_json: str, size: int) -> tuple[int, int]:
    from ..models import ModelConfig, build_model
    from ..models.cost import count_cost

    cost = count_cost(build_model(ModelConfig.from_dict(json.loads(config_json))), size)
    return cost.parameters, cost.macs


def model_cost_at(model_config: dict, size: int) -> tuple[int | None, int | None]:
    """Parameters and MACs of one (1, C, size, size) forward, from a model config.

    The model is rebuilt from ``model_config`` (random weights; counts do not depend on them)
    and counted by ``models.cost.count_cost``. Returns (None, None) without a config, without
    torch and torch-pruning (a runtime-only install), or when counting fails (logged).
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
