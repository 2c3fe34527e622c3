"""Bad input to ``train``, ``prune``, ``data check`` and ``data synth``: one line naming the fix, exit 2,
nothing half-written. Each case runs ``edgeunet.cli.main`` in process (the ``cli`` fixture, tests/badinput.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from badinput import assert_user_error, leftovers

# As tests/test_cli.py's TINY_TRAIN: a model of size multiple 8 trained for one short epoch on 32 px crops.
TINY_TRAIN = ["--model", "unet-ds", "--base-width", "8", "--depth", "2", "--epochs", "1", "--batch-size", "4",
              "--img-size", "32", "--samples-per-epoch", "8", "--device", "cpu", "--no-progress"]


def _pairs(root: Path, count: int = 3, size: int = 32) -> Path:
    from edgeunet.data.io import write_image, write_mask

    rng = np.random.default_rng(0)
    for i in range(count):
        write_image(root / "images" / f"p{i}.png", rng.integers(0, 255, (size, size), dtype=np.uint8))
        mask = np.zeros((size, size), np.uint8)
        mask[: size // 4] = 1
        write_mask(root / "masks" / f"p{i}.png", mask)
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Data sets with one flaw each, a checkpoint, and a folder that holds a run."""
    import torch

    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.data.io import write_image, write_mask
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    root = tmp_path_factory.mktemp("inputs")
    no_masks = root / "no_masks"
    (no_masks / "images").mkdir(parents=True)
    write_image(no_masks / "images" / "a.png", np.zeros((32, 32), np.uint8))
    mismatch = _pairs(root / "mismatch")
    write_mask(mismatch / "masks" / "p1.png", np.zeros((16, 16), np.uint8))
    nan = _pairs(root / "nan")
    image = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    image[5, 5] = np.nan
    np.save(nan / "images" / "bad.npy", image)
    write_mask(nan / "masks" / "bad.png", np.zeros((32, 32), np.uint8))
    truncated = _pairs(root / "truncated")
    png = (truncated / "images" / "p0.png").read_bytes()
    (truncated / "images" / "p0.png").write_bytes(png[: len(png) // 2])
    jumps = _pairs(root / "jumps")
    mask = np.zeros((32, 32), np.uint8)
    mask[:4], mask[-4:] = 1, 7
    write_mask(jumps / "masks" / "p2.png", mask)
    run = root / "run"
    run.mkdir()
    for name in ("best.pt", "last.pt", "config.json"):
        (run / name).write_bytes(b"a run's file")
    torch.manual_seed(0)
    checkpoint = root / "ckpt" / "best.pt"
    model = create_model("unet-ds", base_width=8, depth=2).eval()
    save_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, ["background", "nucleus"],
                                    train_args={"img_size": 32}), checkpoint)
    (root / "a_file").write_text("not a folder")
    return {"root": root, "no_masks": no_masks, "mismatch": mismatch, "nan": nan, "truncated": truncated,
            "jumps": jumps, "run": run, "ckpt": checkpoint, "file": root / "a_file"}


@pytest.fixture
def read_only(tmp_path):
    """A read-only folder: a read-only tmpfs mounted on tmp_path/ro (skipped where mounting is not allowed)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({mounted.stderr.decode().strip() or 'not root'})")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


# (id, argv with {placeholders}, needles of the one stderr line)
CASES = [
    ("train-missing-data", ["train", "--data", "{tmp}/nowhere", *TINY_TRAIN, "--out", "{tmp}/r"],
     ["nowhere", "folder not found"]),
    ("train-no-masks", ["train", "--data", "{no_masks}", *TINY_TRAIN, "--out", "{tmp}/r"],
     ["masks/: subfolder missing"]),
    ("train-size-mismatch", ["train", "--data", "{mismatch}", *TINY_TRAIN, "--out", "{tmp}/r"],
     ["image 32x32 vs mask 16x16", "must match"]),
    ("train-out-is-a-file", ["train", *TINY_TRAIN, "--out", "{file}"], ["--out", "is a file"]),
    ("train-out-holds-a-run", ["train", *TINY_TRAIN, "--out", "{run}"], ["already holds a run", "--resume",
                                                                         "--exist-ok"]),
    ("train-base-width-0", ["train", "--base-width", "0", "--out", "{tmp}/r"], ["--base-width", "1 or more"]),
    ("train-img-size-17", ["train", "--img-size", "17", "--out", "{tmp}/r"],
     ["--img-size 17 is not a multiple of 16", "use 16 or 32"]),
    ("train-img-size-17-multiple-8", ["train", *TINY_TRAIN, "--img-size", "17", "--out", "{tmp}/r"],
     ["--img-size 17 is not a multiple of 8", "use 16 or 24"]),
    ("train-workers-negative", ["train", "--workers", "-1", "--out", "{tmp}/r"], ["--workers", "0 or more"]),
    ("train-epochs-0", ["train", "--epochs", "0", "--out", "{tmp}/r"], ["--epochs must be at least 1"]),
    ("train-batch-size-0", ["train", "--batch-size", "0", "--out", "{tmp}/r"], ["--batch-size", "1 or more"]),
    ("train-lr-nan", ["train", "--lr", "nan", "--out", "{tmp}/r"], ["--lr", "finite"]),
    ("train-val-fraction-1.5", ["train", "--val-fraction", "1.5", "--out", "{tmp}/r"],
     ["--val-fraction must be between 0 and 1"]),
    ("train-resume-without-last", ["train", *TINY_TRAIN, "--resume", "--out", "{tmp}/r"],
     ["--resume needs", "last.pt", "drop --resume"]),
    ("train-init-missing", ["train", *TINY_TRAIN, "--init", "{tmp}/none.pt", "--out", "{tmp}/r"],
     ["--init", "does not exist"]),
    ("train-nan-image", ["train", "--data", "{nan}", *TINY_TRAIN, "--out", "{tmp}/r"],
     ["images/bad.npy", "NaN/Inf", "np.nan_to_num"]),
    ("train-truncated-png", ["train", "--data", "{truncated}", *TINY_TRAIN, "--out", "{tmp}/r"],
     ["images/p0.png", "truncated"]),
    ("train-jumping-class-ids", ["train", "--data", "{jumps}", *TINY_TRAIN, "--out", "{tmp}/r"],
     ["class id 7", "ids 2-6", "classes.txt"]),
    ("prune-missing-checkpoint", ["prune", "{tmp}/missing.pt", "--out", "{tmp}/p"], ["missing.pt", "not found"]),
    ("prune-ratio-1.5", ["prune", "{ckpt}", "--ratio", "1.5", "--out", "{tmp}/p"], ["--ratio", "[0, 1)"]),
    ("prune-ratio-negative", ["prune", "{ckpt}", "--ratio", "-0.1", "--out", "{tmp}/p"], ["--ratio", "[0, 1)"]),
    ("prune-finetune-epochs-negative", ["prune", "{ckpt}", "--finetune-epochs", "-1", "--out", "{tmp}/p"],
     ["--finetune-epochs", "0 or more"]),
    ("prune-out-holds-a-run", ["prune", "{ckpt}", "--device", "cpu", "--out", "{run}"],
     ["already holds a run", "--exist-ok"]),
    ("synth-zero-images", ["data", "synth", "{tmp}/d", "--num-images", "0"], ["--num-images", "1 or more"]),
]


@pytest.mark.parametrize("argv, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_naming_the_fix(argv, needles, folders, tmp_path, cli):
    places = {key: str(value) for key, value in folders.items()}
    result = cli(*[part.format(tmp=tmp_path, **places) for part in argv])
    assert_user_error(result, *needles)
    assert leftovers(tmp_path) == [] and leftovers(folders["root"]) == []
    assert not (tmp_path / "r" / "last.pt").exists()  # refused before training


def test_out_in_a_read_only_folder_is_refused_before_training(read_only, cli):
    result = cli("train", *TINY_TRAIN, "--out", str(read_only / "run"))
    assert_user_error(result, str(read_only / "run"), "choose a writable location")


def test_synth_into_a_read_only_folder_is_refused(read_only, cli):
    result = cli("data", "synth", str(read_only / "ds"), "--num-images", "2", "--img-size", "16")
    assert_user_error(result, str(read_only), "choose a writable location")


def test_train_refuses_a_nan_image_before_any_epoch(folders, tmp_path, cli):
    result = cli("train", "--data", str(folders["nan"]), *TINY_TRAIN, "--out", str(tmp_path / "r"))
    assert_user_error(result, "1 NaN/Inf pixel(s)")
    assert not list((tmp_path / "r").glob("*.pt")) and not (tmp_path / "r" / "metrics.jsonl").exists()


@pytest.mark.parametrize("name, needles", [
    ("nan", ["images/bad.npy: 1 NaN/Inf pixel(s) of 1024"]),
    ("truncated", ["images/p0.png: not a valid .png file", "truncated"]),
    ("jumps", ["masks/p2.png: class id 7 (in 1 mask(s)) but no mask holds ids 2-6"]),
    ("mismatch", ["images/p1.png: image 32x32 vs mask 16x16"]),
])
def test_data_check_lists_the_problem_with_its_file_and_exits_1(folders, name, needles, cli):
    result = cli("data", "check", str(folders[name]))
    assert result.returncode == 1, result.stderr
    assert result.stderr == "" and "Traceback" not in result.stdout
    lines = result.stdout.splitlines()
    assert any(all(needle in line for needle in needles) for line in lines), result.stdout
    assert lines[-1] == f"1 problem(s) in {folders[name]}"
