"""Bad input to predict, info, checks and the command line itself: the right exit code, one line naming
the fix, no traceback, and nothing half-written left behind. Cases run ``edgeunet.cli.main`` in process (the
``cli`` fixture); one runs ``python -m edgeunet`` to check the entry point."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import numpy as np
import pytest
import tifffile
from badinput import assert_user_error, leftovers, run_cli
from PIL import Image
from tiny_onnx import metadata, tiny_onnx


@pytest.fixture
def work(tmp_path) -> dict:
    """A folder of good and bad inputs; the keys are the ``{name}`` fields the table uses. The model is the
    milliseconds-to-build tests/tiny_onnx.py one with size multiple 16: no case depends on what it predicts."""
    import onnx

    rng = np.random.default_rng(0)
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "tiny.onnx"
    proto = onnx.load(str(tiny_onnx(model)))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "models" / "plain.onnx"))  # a plain ONNX file without edgeunet metadata
    onnx.helper.set_model_props(proto, replace(metadata(), size_multiple=16, size_multiples=()).to_props())
    onnx.save(proto, str(model))
    good = tmp_path / "good.png"
    Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(good)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    (tmp_path / "bad.png").write_bytes(rng.bytes(200))
    nan = rng.random((32, 32), dtype=np.float32)
    nan[5, 5] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    (tmp_path / "fake.onnx").write_bytes(rng.bytes(300))
    (tmp_path / "fake.engine").write_bytes(rng.bytes(300))
    (tmp_path / "notes.txt").write_text("not a model\n")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "good.png").mkdir()  # where predict would write good.png's mask
    return {"tmp": tmp_path, "model": model, "plain": tmp_path / "models" / "plain.onnx", "good": good}


def _has_cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


PREDICT = ["predict", "{model}"]
# (id, argv, exit code, needles of the one stderr line)
CASES = [
    ("unknown-command", ["predcit", "x"], 2, ["invalid choice: 'predcit'", "did you mean 'predict'?"]),
    ("unknown-flag", ["checks", "--bogus"], 2, ["edgeunet checks: error:", "unrecognized arguments: --bogus"]),
    ("unknown-global-flag", ["--bogus", "checks"], 2, ["unrecognized arguments: --bogus"]),
    ("predict-missing-model", ["predict", "{tmp}/missing.onnx", "{good}", "--out", "{tmp}/out"], 2,
     ["edgeunet predict: error:", "missing.onnx does not exist"]),
    ("predict-not-a-model", ["predict", "{tmp}/fake.onnx", "{good}", "--out", "{tmp}/out"], 2,
     ["fake.onnx is not a loadable ONNX model"]),
    ("predict-not-an-edgeunet-model", ["predict", "{plain}", "{good}", "--out", "{tmp}/out"], 2,
     ["is not an edgeunet model", "edgeunet export"]),
    ("predict-missing-input", [*PREDICT, "{tmp}/nothing.png", "--out", "{tmp}/out"], 2,
     ["nothing.png does not exist"]),
    ("predict-input-not-an-image", [*PREDICT, "{tmp}/notes.txt", "--out", "{tmp}/out"], 2,
     ["notes.txt is not an image file"]),
    ("predict-out-is-a-file", [*PREDICT, "{good}", "--out", "{tmp}/notes.txt"], 2,
     ["notes.txt is a file: give a folder path"]),
    ("predict-mask-path-is-a-folder", [*PREDICT, "{good}", "--out", "{tmp}/taken"], 2,
     ["good.png is a folder", "choose another --out"]),
    ("predict-malformed-image", [*PREDICT, "{tmp}/bad.png", "--out", "{tmp}/out"], 1,
     ["edgeunet predict:", "bad.png: cannot read it: not a valid .png file"]),
    ("predict-malformed-image-stop", [*PREDICT, "{tmp}/bad.png", "--out", "{tmp}/out", "--stop-on-error"], 2,
     ["edgeunet predict: error:", "bad.png: not a valid .png file"]),
    ("predict-nan-image", [*PREDICT, "{tmp}/nan.tif", "--out", "{tmp}/out"], 1,
     ["nan.tif: the image contains NaN or infinite values"]),
    ("predict-wrong-channels", [*PREDICT, "{tmp}/rgb.png", "--out", "{tmp}/out"], 1,
     ["rgb.png: the image has 3 channel(s) but the model takes 1"]),
    ("predict-unknown-device", [*PREDICT, "{good}", "--out", "{tmp}/out", "--device", "tpu"], 2,
     ["argument --device: invalid choice: 'tpu'"]),
    ("predict-missing-cuda-device", [*PREDICT, "{good}", "--out", "{tmp}/out", "--device", "cuda"], 2,
     ["--device cuda", "no CUDAExecutionProvider", "use --device cpu"]),
    ("predict-missing-cuda-provider", [*PREDICT, "{good}", "--out", "{tmp}/out", "--providers",
                                       "CUDAExecutionProvider,CPUExecutionProvider"], 2,
     ["CUDAExecutionProvider are not in this onnxruntime build"]),
    ("predict-bad-providers", [*PREDICT, "{good}", "--out", "{tmp}/out", "--providers", "FooProvider"], 2,
     ["FooProvider are not in this onnxruntime build", "CPUExecutionProvider"]),
    ("predict-empty-providers", [*PREDICT, "{good}", "--out", "{tmp}/out", "--providers", ","], 2,
     ["argument --providers", "names no execution provider"]),
    ("predict-device-and-providers", [*PREDICT, "{good}", "--out", "{tmp}/out", "--device", "cpu",
                                      "--providers", "CPUExecutionProvider"], 2, ["not allowed with argument"]),
    ("predict-tile-not-a-multiple", [*PREDICT, "{good}", "--out", "{tmp}/out", "--tile", "60"], 2,
     ["tile 60 is not a multiple of 16", "use 48 or 64"]),
    ("predict-zero-threads", [*PREDICT, "{good}", "--out", "{tmp}/out", "--threads", "0"], 2,
     ["argument --threads", "must be 1 or more"]),
    ("predict-overlap-too-big", [*PREDICT, "{good}", "--out", "{tmp}/out", "--overlap", "1.5"], 2,
     ["overlap must be in [0, 1)"]),
    ("info-missing-file", ["info", "{tmp}/missing.pt"], 2, ["edgeunet info: error:", "missing.pt does not exist"]),
    ("info-unknown-suffix", ["info", "{tmp}/notes.txt"], 2, ["unknown kind of file '.txt'", "(.onnx)"]),
    ("info-folder", ["info", "{tmp}"], 2, ["is a folder"]),
    ("info-broken-onnx", ["info", "{tmp}/fake.onnx"], 2, ["fake.onnx is not a readable ONNX file", "re-export"]),
    ("info-not-an-edgeunet-onnx", ["info", "{plain}"], 2, ["is not an edgeunet model"]),
    ("info-engine-without-sidecar", ["info", "{tmp}/fake.engine"], 2, ["fake.engine"]),
    ("info-zero-img-size", ["info", "--models", "--img-size", "0"], 2, ["argument --img-size"]),
    ("checks-extra-argument", ["checks", "extra"], 2, ["unrecognized arguments: extra"]),
]


@pytest.mark.parametrize("argv, code, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_the_right_code_one_line_and_no_leftovers(argv, code, needles, work, cli):
    if "cuda" in " ".join(argv).lower() and _has_cuda():
        pytest.skip("this onnxruntime build has CUDA: a missing CUDA provider cannot be shown here")
    result = cli(*[a.format(**work) for a in argv])
    assert_user_error(result, *needles, code=code)
    assert leftovers(work["tmp"]) == []
    out = work["tmp"] / "out"
    assert not out.exists() or list(out.iterdir()) == []  # no mask of a failed image, not even a partial one


def test_a_read_only_output_folder_is_refused_before_any_work(work, cli):
    target = work["tmp"] / "readonly"
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(target)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        result = cli("predict", work["model"], work["good"], "--out", target / "masks")
        assert_user_error(result, "readonly/masks", "choose a writable location")
        result = cli("predict", work["model"], work["good"], "--out", target)
        assert_user_error(result, "is not writable", "choose a writable location")
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_a_folder_with_one_bad_image_is_segmented_past_it(work, cli):
    folder = work["tmp"] / "images"
    folder.mkdir()
    for name in ("good.png", "bad.png", "nan.tif"):
        (folder / name).write_bytes((work["tmp"] / name).read_bytes())
    (folder / "notes.txt").write_text("x")
    (folder / ".hidden.png").write_bytes(b"")
    out = work["tmp"] / "out"
    result = cli("predict", work["model"], folder, "--out", out)
    assert result.returncode == 1, result.stderr
    failures = result.stderr.strip().splitlines()
    assert len(failures) == 2 and "bad.png: cannot read it" in failures[0] and "nan.tif: " in failures[1]
    assert "segmented 1 image(s)" in result.stdout and "2 failed" in result.stdout
    assert "2 skipped (1 hidden file, 1 non-image file)" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
    assert leftovers(work["tmp"]) == []


def test_stop_on_error_stops_at_the_first_bad_image(work, cli):
    folder = work["tmp"] / "images"
    folder.mkdir()
    for name in ("bad.png", "good.png"):
        (folder / name).write_bytes((work["tmp"] / name).read_bytes())
    out = work["tmp"] / "out"
    result = cli("predict", work["model"], folder, "--out", out, "--stop-on-error")
    assert_user_error(result, "bad.png", code=2)
    assert not out.exists() or list(out.iterdir()) == []  # bad.png sorts first: nothing was written


def test_an_engine_without_the_trt_extra_names_the_extra(work, cli):
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        result = cli("predict", work["tmp"] / "fake.engine", work["good"], "--out", work["tmp"] / "out")
        assert_user_error(result, "tensorrt", "pip install 'edgeunet[trt]'")
    else:
        pytest.skip("TensorRT is installed")


def test_no_command_prints_the_help_and_exits_2():
    # A subprocess on purpose: the `python -m edgeunet` entry point must turn main's return value into the
    # process's exit status (the in-process cases call main directly and cannot see that).
    result = run_cli()
    assert result.returncode == 2 and "usage: edgeunet" in result.stdout and result.stderr == ""


def test_a_path_that_is_a_folder_where_an_overlay_goes_is_refused(work, cli):
    (work["tmp"] / "over").mkdir()
    (work["tmp"] / "over" / "good_overlay.png").mkdir()
    result = cli("predict", work["model"], work["good"], "--out", work["tmp"] / "over", "--overlay")
    assert_user_error(result, "good_overlay.png is a folder")
    assert not (work["tmp"] / "over" / "good.png").exists()
