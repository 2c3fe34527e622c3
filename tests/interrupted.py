"""A training run interrupted as its second epoch begins, then resumed, beside the same run uninterrupted: the
``--resume`` tests of 2-D, 3-D and ``--ema`` training compare the two."""

from __future__ import annotations

import pytest


def interrupted_and_full(monkeypatch, tmp_path, **settings) -> tuple[dict, dict]:
    """(the uninterrupted run's result, the resumed run's result): two epochs each, in ``tmp_path/full`` and
    ``tmp_path/part``; ``settings`` are ``TrainSettings`` fields besides ``out``, ``epochs`` and ``resume``."""
    from edgeunet.train import TrainSettings, loop, train

    full = train(TrainSettings(out=str(tmp_path / "full"), epochs=2, **settings))
    real_epoch = loop._train_epoch

    def interrupted(run, loader, epoch):
        if epoch == 1:  # the second epoch (0-based index) begins
            raise KeyboardInterrupt
        return real_epoch(run, loader, epoch)

    monkeypatch.setattr(loop, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(TrainSettings(out=str(tmp_path / "part"), epochs=2, **settings))
    monkeypatch.setattr(loop, "_train_epoch", real_epoch)
    return full, train(TrainSettings(out=str(tmp_path / "part"), epochs=2, resume=True, **settings))
