"""The 3-D trainer and pruner: random patches of volumes, whole-volume validation through the runtime's
sliding window, resume, pruning 3-D convs, and the volume data sets they read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from interrupted import interrupted_and_full

from edgeunet.checkpoint import load_checkpoint, model_from_checkpoint
from edgeunet.errors import UserError
from edgeunet.train import TrainSettings, train

# unet3d-ds at tiny widths (size multiple 4 per axis), 16^3 patches of 24^3 synthetic volumes.
TINY3D = dict(model="unet3d-ds", model_options={"base_width": 4, "depth": 2}, batch_size=2, patch=(16, 16, 16),
              volume_size=(24, 24, 24), samples_per_epoch=4, val_samples=2, progress=False, device="cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run3d")
    return train(TrainSettings(out=str(out), epochs=1, **TINY3D)), out


def test_a_3d_model_trains_on_synthetic_volumes_by_default(trained):
    result, out = trained
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["data"] == "synthetic3d" and config["model_config"]["spatial_dims"] == 3
    assert config["settings"]["patch"] == [16, 16, 16]
    assert 0.0 <= result["best_dice"] <= 1.0
    model, ckpt = model_from_checkpoint(out / "best.pt")
    assert model.cfg.spatial_dims == 3 and ckpt["train_args"]["patch"] == (16, 16, 16)


def test_validation_scores_whole_volumes_with_the_runtime_sliding_window(trained, monkeypatch):
    from edgeunet.data.sources import load_volume_samples
    from edgeunet.train import evaluate
    from edgeunet.train import evaluate as evaluate_module

    result, out = trained
    model, ckpt = model_from_checkpoint(out / "best.pt")
    samples = load_volume_samples("synthetic3d", 2, (24, 24, 24), split="val")
    windows = []
    real = evaluate_module.__globals__["sliding_window"]

    def spy(x, run, num_classes, window, *args, **kwargs):
        windows.append((x.shape, window))
        return real(x, run, num_classes, window, *args, **kwargs)

    monkeypatch.setitem(evaluate_module.__globals__, "sliding_window", spy)
    summary = evaluate(model, samples, ckpt["preprocessing"], window=(16, 16, 16))
    assert windows == [((1, 24, 24, 24), (16, 16, 16))] * 2  # whole volumes, window = the training patch
    assert summary["mean_dice"] == pytest.approx(result["best_dice"], abs=1e-6)


@pytest.mark.slow
def test_3d_resume_after_interruption_reaches_the_same_weights(tmp_path, monkeypatch):
    full, resumed = interrupted_and_full(monkeypatch, tmp_path, **TINY3D)
    assert resumed["epochs_run"] == 1
    wa, wb = load_checkpoint(full["last_path"])["state_dict"], load_checkpoint(resumed["last_path"])["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_3d_prune_shrinks_3d_convs_and_fine_tunes_on_patches(trained, tmp_path):
    from edgeunet.prune import prune_checkpoint

    _, out = trained
    report = prune_checkpoint(out / "best.pt", tmp_path / "p", ratio=0.5, finetune_epochs=1, round_to=2,
                              min_channels=2, batch_size=2, samples_per_epoch=4, device="cpu", progress=False)
    assert report["parameters"]["after"] < report["parameters"]["before"]
    assert report["patch"] == [16, 16, 16] and report["img_size"] == 16
    doc = json.loads((tmp_path / "p" / "prune.json").read_text())
    assert doc["dice"]["finetuned"] is not None and doc["macs"]["after"] < doc["macs"]["before"]
    model, _ = model_from_checkpoint(tmp_path / "p" / "best.pt")
    assert model.cfg.spatial_dims == 3
    assert model(torch.zeros(1, 1, 16, 16, 16)).shape == (1, 2, 16, 16, 16)


def test_pruner_example_input_is_5d_for_a_3d_model():
    from edgeunet.models import create_model
    from edgeunet.prune.pruner import example_input

    model = create_model("unet3d-ds", base_width=4, depth=2)
    assert tuple(example_input(model).shape) == (1, 1, 8, 8, 8)


def test_revert_sync_batchnorm_gives_batchnorm3d_back_to_a_3d_model():
    from edgeunet.models import create_model
    from edgeunet.train import distributed

    model = create_model("unet3d-ds", base_width=4, depth=2)
    kinds = sorted({type(m).__name__ for m in model.modules() if "BatchNorm" in type(m).__name__})
    torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    distributed.revert_sync_batchnorm(model)
    assert sorted({type(m).__name__ for m in model.modules() if "BatchNorm" in type(m).__name__}) == kinds
    assert kinds == ["BatchNorm3d"]
    model(torch.zeros(2, 1, 8, 8, 8))  # BatchNorm2d would refuse a 5-D input


def test_patch_that_is_not_a_multiple_names_valid_sides():
    with pytest.raises(UserError, match=r"--patch H 18 is not a multiple of 8 .*use 16 or 24"):
        TrainSettings(model="unet3d-ds", patch=(16, 18, 16), out="r")


def test_2d_synthetic_data_with_a_3d_model_names_the_fix():
    with pytest.raises(UserError, match="--data synthetic holds 2-D images.*--data synthetic3d"):
        TrainSettings(model="unet3d-ds", data="synthetic", img_size=32, out="r")


def test_volumes_with_a_2d_model_name_the_fix():
    with pytest.raises(UserError, match="synthetic3d holds volumes but unet-ds is a 2-D model.*unet3d-ds"):
        TrainSettings(model="unet-ds", data="synthetic3d", out="r")


def test_volume_patches_are_augmented_within_the_plane_and_keep_mask_alignment():
    from edgeunet.data.augment import AUGMENTATIONS, augment_crop, crop_or_pad

    rng = np.random.default_rng(0)
    x = np.arange(6 * 8 * 8, dtype=np.float32).reshape(1, 6, 8, 8)
    mask = x[0].astype(np.int64)
    for seed in range(8):
        cx, cm = crop_or_pad(x, mask, (8, 4, 4), np.random.default_rng(seed))  # D padded, H/W cropped
        assert cx.shape == (1, 8, 4, 4) and cm.shape == (8, 4, 4)
        ax, am = augment_crop(cx, cm, AUGMENTATIONS["basic"], rng)
        gain_offset = np.polyfit(am.ravel().astype(np.float64), ax.ravel().astype(np.float64), 1)
        assert np.allclose(ax[0], np.polyval(gain_offset, am), atol=1e-3)  # the mask moved with the voxels
        assert sorted(set(am[0].ravel())) in [sorted(set(s.ravel())) for s in (cm[0], cm[-1])]  # slices stay slices


@pytest.mark.slow
def test_cli_trains_a_3d_model_on_a_folder_of_tiff_stacks(tmp_path):
    from badinput import run_cli

    from edgeunet.data.synthetic import write_synthetic_volumes

    write_synthetic_volumes(tmp_path / "vols", n=3, size=(16, 24, 24), fmt="tiff")
    result = run_cli("train", "--data", str(tmp_path / "vols"), "--model", "unet3d-ds", "--base-width", "4",
                     "--depth", "2", "--patch", "8,16,16", "--epochs", "1", "--batch-size", "2",
                     "--samples-per-epoch", "2", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "r"),
                     env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert "best validation Dice" in result.stdout
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["data"]["n_train"] == 2 and config["data"]["n_val"] == 1
    assert config["settings"]["patch"] == [8, 16, 16]
