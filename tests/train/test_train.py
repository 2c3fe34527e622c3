"""The trainer on built-in synthetic data: learns, is deterministic, resumes, writes its files."""

from __future__ import annotations

import json
import re

import pytest
import torch
from interrupted import interrupted_and_full

from edgeunet.checkpoint import load_checkpoint, model_from_checkpoint
from edgeunet.errors import UserError
from edgeunet.train import TrainSettings, train

TINY = dict(
    data="synthetic",
    model="unet-ds",
    model_options={"base_width": 8, "depth": 3},
    batch_size=8,
    img_size=64,
    samples_per_epoch=128,
    val_samples=8,
    lr=5e-3,
    progress=False,
    device="cpu",
)


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


@pytest.mark.slow
def test_same_seed_gives_same_weights(tmp_path):
    a = train(TrainSettings(out=str(tmp_path / "a"), epochs=1, **{**TINY, "samples_per_epoch": 32}))
    b = train(TrainSettings(out=str(tmp_path / "b"), epochs=1, **{**TINY, "samples_per_epoch": 32}))
    wa, wb = load_checkpoint(a["last_path"])["state_dict"], load_checkpoint(b["last_path"])["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_resume_after_interruption_reaches_the_same_weights(tmp_path, monkeypatch):
    full, resumed = interrupted_and_full(monkeypatch, tmp_path, **{**TINY, "samples_per_epoch": 32})
    assert resumed["epochs_run"] == 1
    wa, wb = load_checkpoint(full["last_path"])["state_dict"], load_checkpoint(resumed["last_path"])["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert len((tmp_path / "part" / "metrics.jsonl").read_text().splitlines()) == 2


def test_init_starts_from_another_runs_weights(trained, tmp_path):
    _, out = trained
    result = train(
        TrainSettings(
            out=str(tmp_path / "ft"),
            epochs=1,
            init=str(out / "best.pt"),
            **{**TINY, "samples_per_epoch": 16, "lr": 1e-4},
        )
    )
    assert result["best_dice"] > 0.75  # starts trained: one tiny epoch at a low rate cannot get there from scratch


def test_resume_with_other_epochs_names_the_fix(trained, tmp_path):
    import shutil

    out = shutil.copytree(trained[1], tmp_path / "run")
    with pytest.raises(UserError, match=r"--resume continues .*with epochs 3 \(now 5\).*--init"):
        train(TrainSettings(out=str(out), epochs=5, resume=True, **TINY))


def test_resume_without_a_run_names_the_fix(tmp_path):
    with pytest.raises(UserError, match="--resume needs .*last.pt.*drop --resume"):
        train(TrainSettings(out=str(tmp_path / "none"), epochs=1, resume=True, **TINY))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", 0, "--epochs"),
        ("lr", -1.0, "--lr"),
        ("val_fraction", 1.5, "--val-fraction"),
        ("schedule", "step", "--schedule"),
    ],
)
def test_bad_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainSettings(**{**TINY, field: value})


def test_checkpoints_count_completed_epochs(trained):
    result, out = trained
    last, best = load_checkpoint(out / "last.pt"), load_checkpoint(out / "best.pt")
    assert (last["epoch"], last["epochs"]) == (3, 3)
    assert best["epoch"] == result["best_epoch"] == last["best_epoch"] and 1 <= result["best_epoch"] <= 3


def test_run_folder_has_results_csv_and_png(trained):
    import csv

    _, out = trained
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert {"train_loss", "val_mean_dice", "val_dice_background", "val_dice_nucleus", "lr", "time_s"} <= set(rows[0])
    jsonl = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [float(row["val_mean_dice"]) for row in rows] == pytest.approx([r["val_mean_dice"] for r in jsonl], rel=1e-5)
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_on_epoch_gets_one_line_per_epoch(tmp_path):
    lines = []
    settings = TrainSettings(out=str(tmp_path / "run"), epochs=2, **{**TINY, "samples_per_epoch": 16})
    train(settings, on_epoch=lines.append)
    assert len(lines) == 2
    assert re.fullmatch(r"epoch 1/2  loss \d+\.\d{4}  val Dice \d\.\d{4}  \d+\.\d s", lines[0]), lines[0]
    assert lines[1].startswith("epoch 2/2  loss ")


def test_a_run_folder_is_not_overwritten_without_exist_ok(trained, tmp_path):
    import shutil

    out = shutil.copytree(trained[1], tmp_path / "run")
    before = (out / "best.pt").read_bytes()
    with pytest.raises(UserError, match="already holds a run .*continue it with --resume, overwrite it with --exist"):
        train(TrainSettings(out=str(out), epochs=1, **TINY))
    assert (out / "best.pt").read_bytes() == before
    small = {**TINY, "samples_per_epoch": 8}
    result = train(TrainSettings(out=str(out), epochs=1, exist_ok=True, **small))
    assert result["epochs_run"] == 1 and load_checkpoint(out / "last.pt")["epochs"] == 1
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1  # the old run's rows are gone


def test_settings_are_frozen():
    import dataclasses

    settings = TrainSettings(**TINY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.epochs = 5


@pytest.mark.parametrize(
    "options, size, fix",
    [
        ({"base_width": 8, "depth": 3}, 17, "16 (this model's size multiple): use 16 or 32"),
        ({"base_width": 8, "depth": 3}, 8, "16 (this model's size multiple): use 16"),
        ({"base_width": 8, "depth": 2}, 20, "8 (this model's size multiple): use 16 or 24"),
    ],
)
def test_img_size_names_the_nearest_valid_sizes_of_the_model(options, size, fix):
    with pytest.raises(UserError) as info:
        TrainSettings(**{**TINY, "model_options": options, "img_size": size})
    assert str(info.value) == f"--img-size {size} is not a multiple of {fix}"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("workers", -1, "--workers must be 0 or more"),
        ("lr", float("nan"), "--lr must be a positive finite number"),
        ("batch_size", 0, "--batch-size must be at least 1"),
        ("val_fraction", 0.0, "--val-fraction"),
        ("model_options", {"base_width": 0}, "--base-width must be at least 1 (got 0)"),
        ("model", "unet-dss", "did you mean 'unet-ds'"),
    ],
)
def test_more_bad_settings_are_named(field, value, message):
    with pytest.raises(UserError, match=re.escape(message)):
        TrainSettings(**{**TINY, field: value})


def test_validation_pads_images_as_the_runtime_does(trained):
    import numpy as np

    from edgeunet.runtime.preprocess import preprocess
    from edgeunet.runtime.tiling import pad_to_multiple
    from edgeunet.train.evaluate import predict_logits

    _, out = trained
    model, ckpt = model_from_checkpoint(out / "best.pt")
    image = np.random.default_rng(0).integers(0, 4000, (5, 21)).astype(np.uint16)  # pads longer than the image
    x, _ = pad_to_multiple(preprocess(image, ckpt["preprocessing"], 1), model.cfg.size_multiple)
    with torch.no_grad():
        expected = model(torch.from_numpy(np.ascontiguousarray(x))[None])[0, :, :5, :21].numpy()
    np.testing.assert_array_equal(predict_logits(model, image, ckpt["preprocessing"]), expected)


@pytest.mark.slow
def test_cli_prints_a_line_per_epoch_and_the_summary_when_stdout_is_a_pipe(tmp_path):
    from badinput import run_cli

    tiny = [
        "--model",
        "unet-ds",
        "--base-width",
        "8",
        "--depth",
        "2",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--img-size",
        "32",
        "--samples-per-epoch",
        "8",
        "--device",
        "cpu",
    ]
    result = run_cli("train", *tiny, "--out", str(tmp_path / "run"), env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("epoch 1/2  loss ") and lines[1].startswith("epoch 2/2  loss ")
    assert re.search(r"best validation Dice \d\.\d{4} at epoch [12] of 2", result.stdout)
    assert "results.csv, results.png" in result.stdout
