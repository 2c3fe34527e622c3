"""Bad input to ``edgeunet bench``: one line naming the fix, exit code 2, before any model runs, nothing written.

Every case runs ``edgeunet.cli.main`` in process (the ``cli`` fixture) and fails before a model is opened,
so the model file is a placeholder: a bad command must not cost a benchmark run to be told so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from badinput import assert_user_error, leftovers


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A placeholder model.onnx, a broken data folder, a baseline that is not JSON and an output folder."""
    root = tmp_path_factory.mktemp("bad-bench")
    (root / "model.onnx").write_bytes(b"placeholder: every case fails before the model is opened")
    broken = root / "broken"
    (broken / "images").mkdir(parents=True)
    (broken / "images" / "a.png").write_bytes(b"")  # no masks/ folder, an empty image
    (root / "baseline.txt").write_text("epoch,loss\n1,0.5\n")
    (root / "out").mkdir()
    return {"root": root, "model": root / "model.onnx", "broken": broken, "baseline": root / "baseline.txt",
            "out": root / "out"}


def _cuda_present() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


# (case id, argv after `edgeunet bench` with {model}/{root}/{broken}/{baseline}/{out} filled in, needles)
CASES = [
    ("missing model", ["{root}/missing.onnx"], ["missing.onnx", "not found"]),
    ("unknown suffix", ["{root}/model.xyz"], ["unknown model file type '.xyz'", "(.onnx)"]),
    ("bad img-size list", ["{model}", "--img-size", "256,x"], ["--img-size", "'256,x'", "comma-separated"]),
    ("batch-size 0", ["{model}", "--batch-size", "0"], ["--batch-size", "'0'"]),
    ("threads 0", ["{model}", "--threads", "0"], ["--threads", "must be 1 or more"]),
    ("negative min-time", ["{model}", "--min-time", "-1"], ["--min-time", "must be 0 or more"]),
    ("unknown backend", ["{model}", "--backends", "openvino-x"], ["unknown backend(s) openvino-x", "onnxruntime"]),
    ("negative max-dice-drop", ["{model}", "--max-dice-drop", "-0.1"], ["--max-dice-drop", "negative"]),
    ("device cuda without GPU", ["{model}", "--device", "cuda"], ["--device cuda", "use --device cpu"]),
    ("json is a folder", ["{model}", "--json", "{out}"], ["--json", "is a folder"]),
    ("plot in a file's place", ["{model}", "--plot", "{baseline}/pareto.png"], ["--plot", "is a file"]),
    ("unknown reference", ["{model}", "--reference", "other.onnx"], ["--reference other.onnx", "model.onnx"]),
    ("broken data folder", ["{model}", "--data", "{broken}"], ["broken"]),
    ("baseline not JSON", ["{model}", "--baseline", "{baseline}"], ["baseline", "is not JSON", "--json file"]),
    ("baseline missing", ["{model}", "--baseline", "{root}/old.json"], ["baseline not found", "old.json"]),
]


@pytest.mark.parametrize("argv, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_bench_input_is_one_line_and_exit_2(argv, needles, files, cli):
    if "--device" in argv and _cuda_present():
        pytest.skip("this machine has CUDA: --device cuda is valid here")
    argv = [a.format(**files) for a in argv]
    result = cli("bench", *argv, "--no-progress")
    assert_user_error(result, *needles)
    assert "rows ok" not in result.stdout  # nothing was benchmarked
    assert leftovers(files["root"]) == []


def test_json_in_a_read_only_folder_fails_before_the_benchmark(files, tmp_path, cli):
    """--json into a read-only file system is refused before any model runs (a long run must not be lost)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a read-only tmpfs here ({mounted.stderr.strip() or 'not permitted'})")
    try:
        result = cli("bench", str(files["model"]), "--json", str(folder / "bench.json"), "--no-progress")
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
    assert_user_error(result, "--json", "is not writable", "choose a writable location")
    assert "rows ok" not in result.stdout
