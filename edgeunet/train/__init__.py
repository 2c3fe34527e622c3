"""Training stage: ``train(TrainSettings(...))``, the shared trainer ``fit``, and ``evaluate``."""

from .evaluate import evaluate
from .settings import TrainSettings


def train(settings: TrainSettings) -> dict:
    from .run import train as _train

    return _train(settings)


def fit(*args, **kwargs) -> dict:
    from .loop import fit as _fit

    return _fit(*args, **kwargs)


__all__ = ["TrainSettings", "evaluate", "fit", "train"]
