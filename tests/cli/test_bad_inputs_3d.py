"""Bad input to the 3-D side of ``train``, ``prune``, ``data synth`` and ``data check``: one line naming the
fix, exit 2, nothing half-written. Each case runs ``edgeunet.cli.main`` in process (the ``cli`` fixture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from badinput import assert_user_error, leftovers

TINY3D = ["--model", "unet3d-ds", "--base-width", "4", "--depth", "2", "--epochs", "1", "--batch-size", "2",
          "--samples-per-epoch", "2", "--device", "cpu", "--no-progress"]


def _volumes(root: Path, shapes: list[tuple[tuple[int, ...], tuple[int, ...]]], suffix: str = ".npy") -> Path:
    from edgeunet.runtime.volume_files import write_volume

    rng = np.random.default_rng(0)
    for i, (shape, mask_shape) in enumerate(shapes):
        write_volume(root / "images" / f"v{i}{suffix}", rng.integers(0, 4000, shape).astype(np.uint16))
        mask = np.zeros(mask_shape, np.uint8)
        mask[: mask_shape[0] // 2] = 1
        write_volume(root / "masks" / f"v{i}{suffix}", mask)
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    from edgeunet.data.io import write_image, write_mask

    root = tmp_path_factory.mktemp("inputs3d")
    good = ((16, 16, 16), (16, 16, 16))
    mismatch = _volumes(root / "mismatch", [good, ((16, 16, 16), (16, 16, 8))])
    nifti = _volumes(root / "nifti", [good, good], ".nii.gz")
    flat = root / "flat"
    for i in range(2):
        write_image(flat / "images" / f"p{i}.png", np.zeros((16, 16), np.uint8))
        write_mask(flat / "masks" / f"p{i}.png", np.zeros((16, 16), np.uint8))
    import torch

    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    torch.manual_seed(0)
    ckpt3d = root / "ckpt3d" / "best.pt"
    model = create_model("unet3d-ds", base_width=4, depth=2).eval()
    save_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, ["background", "nucleus"],
                                    train_args={"img_size": 16, "patch": [16, 16, 16]}), ckpt3d)
    return {"root": root, "mismatch": mismatch, "nifti": nifti, "flat": flat, "ckpt3d": ckpt3d}


# (id, argv with {placeholders}, needles of the one stderr line)
CASES = [
    ("train-patch-not-a-multiple", ["train", *TINY3D, "--patch", "16,18,16", "--out", "{tmp}/r"],
     ["--patch H 18 is not a multiple of 4", "use 16 or 20"]),
    ("train-img-size-not-a-multiple-3d", ["train", "--model", "unet3d-ds", "--img-size", "20", "--out", "{tmp}/r"],
     ["--img-size 20 is not a multiple of 8", "use 16 or 24"]),
    ("train-patch-two-sides", ["train", *TINY3D, "--patch", "16,16", "--out", "{tmp}/r"],
     ["--patch must be three positive sides D,H,W"]),
    ("train-patch-for-a-2d-model", ["train", "--model", "unet-ds", "--patch", "16,16,16", "--out", "{tmp}/r"],
     ["--patch is for 3-D models", "--img-size"]),
    ("train-2d-model-on-synthetic3d", ["train", "--model", "unet-ds", "--data", "synthetic3d", "--out", "{tmp}/r"],
     ["synthetic3d holds volumes", "unet3d-ds"]),
    ("train-3d-model-on-synthetic", ["train", *TINY3D, "--data", "synthetic", "--out", "{tmp}/r"],
     ["synthetic holds 2-D images", "--data synthetic3d"]),
    ("train-2d-model-on-nifti", ["train", "--model", "unet-ds", "--base-width", "8", "--depth", "2", "--img-size",
                                 "16", "--epochs", "1", "--device", "cpu", "--data", "{nifti}", "--out", "{tmp}/r"],
     ["holds volumes (NIfTI files)", "--model unet3d-ds"]),
    ("train-3d-model-on-2d-images", ["train", *TINY3D, "--patch", "16,16,16", "--data", "{flat}", "--out", "{tmp}/r"],
     ["no volume files", "holds 2-D images", "2-D model"]),
    ("train-volume-mask-mismatch", ["train", *TINY3D, "--patch", "16,16,16", "--data", "{mismatch}",
                                    "--out", "{tmp}/r"],
     ["images/v1.npy", "volume 16x16x16 vs mask 16x16x8"]),
    ("synth-volume-size-without-3d", ["data", "synth", "{tmp}/d", "--volume-size", "16,16,16"],
     ["--volume-size is for volumes", "--3d"]),
    ("synth-3d-too-small", ["data", "synth", "{tmp}/d", "--3d", "--img-size", "4"], ["too small", "at least 8"]),
    ("prune-patch-zero", ["prune", "{tmp}/none.pt", "--patch", "0,16,16", "--out", "{tmp}/p"],
     ["--patch", "positive integers"]),
    ("prune-patch-not-a-multiple", ["prune", "{ckpt3d}", "--patch", "16,16,18", "--device", "cpu",
                                    "--out", "{tmp}/p"], ["--patch W 18 is not a multiple of 4", "use 16 or 20"]),
    ("prune-3d-checkpoint-on-2d-data", ["prune", "{ckpt3d}", "--data", "synthetic", "--device", "cpu",
                                        "--out", "{tmp}/p"], ["synthetic holds 2-D images", "--data synthetic3d"]),
]


@pytest.mark.parametrize("argv, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_3d_input_gives_one_line_naming_the_fix(argv, needles, folders, tmp_path, cli):
    places = {key: str(value) for key, value in folders.items()}
    result = cli(*[part.format(tmp=tmp_path, **places) for part in argv])
    assert_user_error(result, *needles)
    assert leftovers(tmp_path) == [] and leftovers(folders["root"]) == []
    assert not (tmp_path / "r" / "last.pt").exists() and not (tmp_path / "d").exists()


def test_data_check_lists_a_volume_mask_mismatch_with_its_file_and_exits_1(folders, cli):
    result = cli("data", "check", str(folders["mismatch"]), "--3d")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert any("images/v1.npy: volume 16x16x16 vs mask 16x16x8" in line for line in lines), result.stdout
    assert lines[-1] == f"1 problem(s) in {folders['mismatch']}"
