"""Bad input to ``edgeunet export`` and ``edgeunet quickstart``: exit code 2, one line naming the fix, nothing
half-written (no temporary files, ``--out`` neither created nor changed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from badinput import assert_user_error, leftovers


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """One tiny unet-ds checkpoint (untrained: every case fails before the weights matter)."""
    torch = pytest.importorskip("torch", reason="checkpoints need the train extra")
    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    model = create_model("unet-ds", base_width=8, depth=2).eval()
    save_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, ["background", "cell"], train_args={"img_size": 32}),
                    path)
    return path


@pytest.fixture
def read_only_dir(tmp_path) -> Path:
    """A folder on a read-only tmpfs (skips where mounting is not allowed)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip() or 'mount failed'}")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def _pairs(folder: Path, n: int, masks: bool = True) -> Path:
    from edgeunet.data.synthetic import write_synthetic

    write_synthetic(folder, n=n, size=32)
    if not masks:
        for mask in (folder / "masks").iterdir():
            mask.unlink()
        (folder / "masks" / "other.png").write_bytes((folder / "images" / "synth_0000.png").read_bytes())
    return folder


def _garbage(tmp: Path) -> Path:
    path = tmp / "random.pt"
    path.write_bytes(os.urandom(2048))
    return path


def _file(tmp: Path) -> Path:
    path = tmp / "out"
    path.write_text("a file, not a folder\n")
    return path


def _recipe(tmp: Path) -> Path:
    path = tmp / "mine.toml"
    path.write_text("int8 = true\ncalib_imagse = 4\n")
    return path


def _empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


# (id, argv after `edgeunet export CKPT` as a function of tmp_path, needles of the one error line)
EXPORT_CASES = [
    ("missing-checkpoint", None, ["checkpoint not found", "best.pt or last.pt"]),
    ("checkpoint-not-a-checkpoint", "garbage", ["is not a readable edgeunet checkpoint"]),
    ("out-is-a-file", lambda t: ["--out", str(_file(t))], ["is a file: give a folder"]),
    ("negative-max-dice-drop", lambda t: ["--int8", "--max-dice-drop", "-0.5"],
     ["--max-dice-drop", "must be 0 or more"]),
    ("nan-max-dice-drop", lambda t: ["--int8", "--max-dice-drop", "nan"], ["--max-dice-drop", "finite number"]),
    ("calib-folder-missing", lambda t: ["--calib", str(t / "nowhere")], ["folder not found", "edgeunet data synth"]),
    ("calib-folder-empty", lambda t: ["--calib", str(_empty(t))], ["subfolder missing", "images"]),
    ("calib-folder-unpaired", lambda t: ["--calib", str(_pairs(t / "broken", 3, masks=False))],
     ["no mask (add masks/"]),
    ("val-folder-missing", lambda t: ["--val", str(t / "nowhere")], ["folder not found"]),
    ("folder-too-small-for-three-roles", lambda t: ["--int8", "--calib", str(_pairs(t / "two", 2))],
     ["too few for disjoint calibration, search and verification", "--val DIR"]),
    ("val-folder-too-small-for-two-roles", lambda t: ["--int8", "--val", str(_pairs(t / "one", 1))],
     ["too few for disjoint search and verification", "add images"]),
    ("unknown-recipe", lambda t: ["--recipe", "cpu-int9"], ["recipe 'cpu-int9' not found", "did you mean 'cpu-int8'"]),
    ("recipe-unknown-key", lambda t: ["--recipe", str(_recipe(t))], ["unknown key 'calib_imagse'", "'calib_images'"]),
    ("img-size-not-a-multiple", lambda t: ["--img-size", "35"], ["--img-size 35 is not a multiple of 8", "32 or 40"]),
    ("search-img-size-not-a-multiple", lambda t: ["--int8", "--search-img-size", "70"],
     ["--search-img-size 70 is not a multiple of 8", "64 or 72"]),
    ("calib-images-zero", lambda t: ["--int8", "--calib-images", "0"], ["--calib-images", "must be 1 or more"]),
    ("val-images-not-a-number", lambda t: ["--val-images", "many"], ["--val-images", "not a whole number"]),
    ("unknown-target", lambda t: ["--int8", "--target", "gpu"], ["--target", "invalid choice: 'gpu'"]),
    ("search-for-tensorrt", lambda t: ["--int8", "--int8-search", "--target", "tensorrt"],
     ["serves --target cpu only"]),
    ("old-opset", lambda t: ["--opset", "11"], ["--opset 11 is too old", "13 or newer"]),
    ("search-time-zero", lambda t: ["--int8", "--search-time", "0"], ["--search-time 0", "positive number of seconds"]),
]


def _out_state(out: Path):
    if not out.exists():
        return None
    return out.read_bytes() if out.is_file() else sorted(p.name for p in out.iterdir())


@pytest.mark.parametrize("extra, needles", [c[1:] for c in EXPORT_CASES], ids=[c[0] for c in EXPORT_CASES])
def test_bad_export_input_is_one_line_and_leaves_nothing(checkpoint, tmp_path, extra, needles, cli):
    ckpt = {None: tmp_path / "missing.pt", "garbage": _garbage(tmp_path)}.get(extra, checkpoint)
    argv = extra(tmp_path) if callable(extra) else []
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else tmp_path / "export"
    before = _out_state(out)
    result = cli("export", ckpt, *(["--out", str(out)] if "--out" not in argv else []), *argv)
    assert_user_error(result, *needles)
    assert _out_state(out) == before
    assert leftovers(tmp_path) == []


def test_export_into_a_read_only_folder_names_the_fix(checkpoint, read_only_dir, tmp_path, cli):
    result = cli("export", checkpoint, "--out", read_only_dir / "export")
    assert_user_error(result, str(read_only_dir), "not writable", "choose a writable location")
    assert list(read_only_dir.iterdir()) == [] and leftovers(tmp_path) == []


QUICKSTART_CASES = [
    ("epochs-zero", lambda t: ["--epochs", "0", "--out", str(t / "qs")], ["--epochs", "must be 1 or more"]),
    ("seed-negative", lambda t: ["--seed", "-1", "--out", str(t / "qs")], ["--seed", "must be 0 or more"]),
    ("out-is-a-file", lambda t: ["--out", str(_file(t))], ["is a file: give a folder"]),
    ("json-is-a-folder", lambda t: ["--out", str(t / "qs"), "--json", str(_empty(t))],
     ["--json", "is a folder: give a file path"]),
]


@pytest.mark.parametrize("extra, needles", [c[1:] for c in QUICKSTART_CASES], ids=[c[0] for c in QUICKSTART_CASES])
def test_bad_quickstart_input_is_one_line_and_leaves_nothing(tmp_path, extra, needles, cli):
    argv = extra(tmp_path)
    out = Path(argv[argv.index("--out") + 1])
    before = _out_state(out)
    assert_user_error(cli("quickstart", "--no-progress", *argv), *needles)
    assert _out_state(out) == before and leftovers(tmp_path) == []


def test_quickstart_into_a_read_only_folder_names_the_fix(read_only_dir, tmp_path, cli):
    result = cli("quickstart", "--no-progress", "--out", read_only_dir / "qs")
    assert_user_error(result, "--out", "choose a writable location")
    assert list(read_only_dir.iterdir()) == [] and leftovers(tmp_path) == []
