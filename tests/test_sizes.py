"""Sizes a machine cannot hold are refused up front: one line naming the size that fits, exit 2, nothing written."""

from __future__ import annotations

import math

import pytest
from badinput import assert_user_error

from edgeunet import sizes
from edgeunet.errors import UserError
from edgeunet.models.config import get_config
from edgeunet.sizes import (
    ACTIVATION_COPIES,
    activation_channels,
    available_memory,
    check_memory,
    check_synthetic_memory,
    check_training_memory,
)

GB = 2**30


def test_available_memory_is_what_proc_meminfo_says():
    try:
        with open("/proc/meminfo") as f:
            line = next(line for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        pytest.skip("no /proc/meminfo here")
    available = available_memory()
    assert 0 < available <= int(line.split()[1]) * 1024


def test_a_size_that_does_not_fit_names_the_largest_that_does():
    with pytest.raises(UserError) as caught:
        check_memory("--img-size", (100_000, 100_000), 32, "to make one image and its mask", available=20 * GB)
    message = str(caught.value)
    assert message.startswith("--img-size 100000 needs at least 298 GB to make one image and its mask; "
                              "this machine has 20 GB available: use --img-size ")
    suggested = int(message.split("use --img-size ")[1].split()[0])
    check_memory("--img-size", (suggested, suggested), 32, "", available=20 * GB)  # it fits, and is the largest:
    with pytest.raises(UserError):
        check_memory("--img-size", (suggested + 1, suggested + 1), 32, "", available=20 * GB)


def test_suggested_sides_keep_the_model_multiples_and_the_shape():
    with pytest.raises(UserError, match=r"use --patch 16,64,64 or less$"):
        check_memory("--patch", (64, 256, 256), 1000, "", multiples=(16, 16, 16), one_side=False,
                     available=16 * 64 * 64 * 1000 + 1)
    with pytest.raises(UserError, match="not even: lower --batch-size$"):
        check_memory("--img-size", (64, 64), 1000, "", multiples=(32, 32), otherwise="not even: lower --batch-size",
                     available=100)


def test_normal_sizes_pass_and_no_check_without_a_figure(monkeypatch):
    cfg = get_config("unet-ds", in_channels=1, num_classes=2)
    check_training_memory(cfg, (256, 256), 8, "cpu")  # the default crop and batch
    check_synthetic_memory("--img-size", (256, 256))
    check_synthetic_memory("--volume-size", (64, 128, 128), one_side=False)
    monkeypatch.setattr(sizes, "available_memory", lambda: None)  # an OS that does not say: no check
    check_synthetic_memory("--img-size", (10**6, 10**6))


def test_training_estimate_sums_the_levels_at_their_resolution(monkeypatch):
    cfg = get_config("unet-ds", in_channels=1, num_classes=2)
    stem = cfg.space_to_depth ** 2
    expected = sum(w / (stem * 4**level) for level, w in enumerate(cfg.widths))
    assert activation_channels(cfg) == pytest.approx(expected)
    cube = get_config("unet3d-ds", in_channels=1, num_classes=2)
    assert activation_channels(cube) == pytest.approx(
        sum(w / (cube.space_to_depth ** 3 * math.prod(math.prod(p) for p in cube.pool_factors[:level]))
            for level, w in enumerate(cube.widths)))
    per_pixel = 8 * 4 * ACTIVATION_COPIES * activation_channels(cfg)  # one batch of 8, float32
    monkeypatch.setattr(sizes, "available_memory", lambda: GB)
    side = math.isqrt(int(GB / per_pixel)) // cfg.size_multiple * cfg.size_multiple
    check_training_memory(cfg, (side, side), 8, "cpu")
    with pytest.raises(UserError, match=f"for one batch of 8 at this model's width; .*: use --img-size {side} or"):
        check_training_memory(cfg, (side + cfg.size_multiple,) * 2, 8, "cpu")


def test_training_on_a_gpu_counts_the_batch_on_the_host(monkeypatch):
    cfg = get_config("unet-ds", in_channels=1, num_classes=2)
    monkeypatch.setattr(sizes, "available_memory", lambda: 4 * GB)
    check_training_memory(cfg, (4096, 4096), 8, "cuda")  # 20 GB of activations live on the GPU: not checked here
    with pytest.raises(UserError, match="for one batch of 8 at this model's width"):
        check_training_memory(cfg, (4096, 4096), 8, "cpu")
    with pytest.raises(UserError, match="images and masks on the host"):  # 6 GB of float32 images and int64 masks
        check_training_memory(cfg, (8192, 8192), 8, "cuda")


CASES = [
    ("train", ["train", "--img-size", "100000", "--out", "{tmp}/run"], "--img-size 100000 needs at least",
     "for one batch of 8", "use --img-size"),
    ("train-3d-patch", ["train", "--model", "unet3d-ds", "--patch", "64,4096,4096", "--out", "{tmp}/run"],
     "--patch 64,4096,4096 needs at least", "use --patch"),
    ("train-3d-volume-size", ["train", "--model", "unet3d-ds", "--volume-size", "64,10000,10000", "--out",
                              "{tmp}/run"], "--volume-size 64,10000,10000 needs at least", "use --volume-size"),
    ("synth", ["data", "synth", "{tmp}/data", "--img-size", "100000"], "--img-size 100000 needs at least",
     "to make one image and its mask", "use --img-size"),
    ("synth-3d", ["data", "synth", "{tmp}/data", "--3d", "--img-size", "100000"], "--img-size 100000 needs at least",
     "one volume", "use --img-size"),
    ("synth-3d-volume-size", ["data", "synth", "{tmp}/data", "--3d", "--volume-size", "64,10000,10000"],
     "--volume-size 64,10000,10000 needs at least", "use --volume-size"),
]


@pytest.mark.parametrize("argv, needles", [(c[1], c[2:]) for c in CASES], ids=[c[0] for c in CASES])
def test_impossible_sizes_exit_2_at_once_and_write_nothing(argv, needles, cli, tmp_path):
    result = cli(*[a.format(tmp=tmp_path) for a in argv])
    line = assert_user_error(result, *needles, "available")
    assert "GB" in line and "internal error" not in line
    assert list(tmp_path.iterdir()) == []  # nothing read or written: the run folder was never made


def test_a_normal_size_passes_the_check(cli, tmp_path):
    result = cli("data", "synth", str(tmp_path / "data"), "--num-images", "1", "--img-size", "64")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "data" / "images").iterdir())) == 1
