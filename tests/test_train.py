"""The trainer on built-in synthetic data: learns, is deterministic, resumes, writes its files."""

from __future__ import annotations

import json

import pytest
import torch

from edgeunet.checkpoint import load_checkpoint, model_from_checkpoint
from edgeunet.errors import UserError
from edgeunet.train import TrainSettings, train

TINY = dict(data="synthetic", model="unet-ds", model_options={"base_width": 8, "depth": 3}, batch_size=8, img_size=64,
            samples_per_epoch=128, val_samples=8, lr=5e-3, progress=False, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    return train(TrainSettings(out=str(out), epochs=3, **TINY)), out


def test_training_on_synthetic_reaches_dice_above_0_8(trained):
    result, _ = trained
    assert result["best_dice"] > 0.8


def test_run_folder_has_checkpoints_metrics_and_config(trained):
    result, out = trained
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert {"train_loss", "val_dice", "val_iou", "val_mean_dice", "time_s", "lr"} <= set(rows[0])
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["epochs"] == 3 and config["model_config"]["block"] == "ds"
    best = load_checkpoint(out / "best.pt")
    assert best["metrics"]["mean_dice"] == pytest.approx(result["best_dice"])
    assert "optimizer" in load_checkpoint(out / "last.pt") and "optimizer" not in best


def test_best_checkpoint_rebuilds_and_scores_as_recorded(trained):
    from edgeunet.data.sources import load_samples
    from edgeunet.train import evaluate

    result, out = trained
    model, ckpt = model_from_checkpoint(out / "best.pt")
    samples = load_samples("synthetic", n=8, size=64, split="val")
    assert evaluate(model, samples, ckpt["preprocessing"])["mean_dice"] == pytest.approx(result["best_dice"], abs=1e-6)


def test_same_seed_gives_same_weights(tmp_path):
    a = train(TrainSettings(out=str(tmp_path / "a"), epochs=1, **{**TINY, "samples_per_epoch": 32}))
    b = train(TrainSettings(out=str(tmp_path / "b"), epochs=1, **{**TINY, "samples_per_epoch": 32}))
    wa, wb = load_checkpoint(a["last_path"])["state_dict"], load_checkpoint(b["last_path"])["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_after_interruption_reaches_the_same_weights(tmp_path, monkeypatch):
    from edgeunet.train import loop

    small = {**TINY, "samples_per_epoch": 32}
    full = train(TrainSettings(out=str(tmp_path / "full"), epochs=2, **small))
    real_epoch = loop._train_epoch

    def interrupted(*args):
        if args[-1] == 1:  # the epoch number is the last argument
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(loop, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(TrainSettings(out=str(tmp_path / "part"), epochs=2, **small))
    monkeypatch.setattr(loop, "_train_epoch", real_epoch)
    resumed = train(TrainSettings(out=str(tmp_path / "part"), epochs=2, resume=True, **small))
    assert resumed["epochs_run"] == 1
    wa, wb = load_checkpoint(full["last_path"])["state_dict"], load_checkpoint(resumed["last_path"])["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert len((tmp_path / "part" / "metrics.jsonl").read_text().splitlines()) == 2


def test_init_starts_from_another_runs_weights(trained, tmp_path):
    _, out = trained
    result = train(TrainSettings(out=str(tmp_path / "ft"), epochs=1, init=str(out / "best.pt"), **{**TINY, "samples_per_epoch": 16, "lr": 1e-4}))
    assert result["best_dice"] > 0.75  # starts trained: one tiny epoch at a low rate cannot get there from scratch


def test_resume_with_other_epochs_names_the_fix(trained, tmp_path):
    import shutil

    out = shutil.copytree(trained[1], tmp_path / "run")
    with pytest.raises(UserError, match=r"--resume continues .*with epochs 3 \(now 5\).*--init"):
        train(TrainSettings(out=str(out), epochs=5, resume=True, **TINY))


def test_resume_without_a_run_names_the_fix(tmp_path):
    with pytest.raises(UserError, match="--resume needs .*last.pt.*drop --resume"):
        train(TrainSettings(out=str(tmp_path / "none"), epochs=1, resume=True, **TINY))


@pytest.mark.parametrize("field, value, message", [("epochs", 0, "--epochs"), ("lr", -1.0, "--lr"), ("val_fraction", 1.5, "--val-fraction"), ("schedule", "step", "--schedule")])
def test_bad_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainSettings(**{**TINY, field: value})
