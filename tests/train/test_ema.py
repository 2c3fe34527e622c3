"""--ema: an exponential moving average of the weights (buffers included) is validated and saved, warmed up,
recorded, and resumed exactly."""

from __future__ import annotations

import pytest
import torch
from interrupted import interrupted_and_full

from edgeunet.checkpoint import load_checkpoint
from edgeunet.errors import UserError
from edgeunet.train import TrainSettings, train
from edgeunet.train.loop import _make_ema, ema_decay

TINY = dict(data="synthetic", model="unet-ds", model_options={"base_width": 8, "depth": 3}, batch_size=8,
            img_size=64, val_samples=8, lr=5e-3, progress=False, device="cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_decay_warms_up_then_holds():
    assert ema_decay(0.99, torch.tensor(0.0)).item() == pytest.approx(0.1)
    assert ema_decay(0.99, torch.tensor(10.0)).item() == pytest.approx(11 / 20)
    assert ema_decay(0.99, torch.tensor(10_000.0)).item() == pytest.approx(0.99)


def test_average_follows_the_rule_for_weights_and_buffers_and_copies_counts():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    ema = _make_ema(model, 0.5)
    expected = {k: v.clone() for k, v in model.state_dict().items()}  # the first update copies
    for step in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        model(torch.randn(4, 1, 3, 3))  # moves the running statistics and num_batches_tracked
        ema.update_parameters(model)
        decay = 0.0 if step == 0 else min(0.5, (1 + step) / (10 + step))
        for key, value in model.state_dict().items():
            averaged = decay * expected[key] + (1 - decay) * value if value.is_floating_point() else value.clone()
            expected[key] = averaged
    for key, value in ema.module.state_dict().items():
        torch.testing.assert_close(value, expected[key], msg=key)
    assert ema.module[1].num_batches_tracked.item() == 3


def test_no_average_when_off():
    assert _make_ema(torch.nn.Linear(1, 1), 0.0) is None


@pytest.mark.slow
def test_a_run_with_ema_saves_the_average_and_resumes_to_the_same_weights(tmp_path, monkeypatch):
    small = {**TINY, "samples_per_epoch": 32, "ema": 0.9}
    full, resumed = interrupted_and_full(monkeypatch, tmp_path, **small)
    last, resumed = load_checkpoint(full["last_path"]), load_checkpoint(resumed["last_path"])
    assert last["train_args"]["ema"] == 0.9
    assert last["ema_updates"] == 2 * 32 // TINY["batch_size"]
    # state_dict (what best.pt, export and the runtime read) is the average, not the trained weights
    assert any(not torch.equal(last["state_dict"][k], last["trained_state_dict"][k]) for k in last["state_dict"])
    for key in ("state_dict", "trained_state_dict"):
        assert all(torch.equal(last[key][k], resumed[key][k]) for k in last[key]), key
    with pytest.raises(UserError, match=r"with ema 0.9 \(now 0.0\)"):
        train(TrainSettings(out=str(tmp_path / "part"), epochs=2, resume=True, **{**small, "ema": 0.0}))


@pytest.mark.parametrize("value", [1.0, -0.1, float("nan")])
def test_bad_ema_is_named(value):
    with pytest.raises(UserError, match="--ema must be 0"):
        TrainSettings(**{**TINY, "ema": value})
