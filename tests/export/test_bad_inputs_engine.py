"""Bad input to ``edgeunet build-engine``: one line naming the fix, exit 2, nothing half-written.

Every case runs ``edgeunet.cli.main`` in process (the ``cli`` fixture). None needs TensorRT: the
refusals come before it is imported, and "TensorRT missing" / "TensorRT too old" are staged with a
stand-in ``tensorrt`` package put first on ``sys.path`` (and taken out of ``sys.modules`` afterwards).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from badinput import assert_user_error, leftovers
from tiny_onnx import tiny_onnx

GOOD_SHAPES = "1x1x8x8,1x1x16x16,2x1x32x32"
EXPORT_FIX = "edgeunet export --int8 --target tensorrt"


def _stand_in_tensorrt(folder, body: str):
    """A folder whose ``tensorrt`` package runs ``body`` on import (put first on sys.path by the test)."""
    package = folder / "stand_in" / "tensorrt"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(body)
    return package.parent


@pytest.fixture
def stand_in_first(monkeypatch):
    """``stand_in_first(folder)``: imports of ``tensorrt`` find ``folder``'s package until the test ends."""
    saved = sys.modules.pop("tensorrt", None)

    def install(folder) -> None:
        monkeypatch.syspath_prepend(str(folder))  # also invalidates the import caches
        sys.modules.pop("tensorrt", None)

    yield install
    sys.modules.pop("tensorrt", None)  # the stand-in must not stay imported for later tests
    if saved is not None:
        sys.modules["tensorrt"] = saved


def _case_missing(tmp):
    return [tmp / "absent.onnx", "--dry-run"], ("absent.onnx", "edgeunet export"), None


def _case_not_onnx(tmp):
    (tmp / "notes.onnx").write_text("these are notes, not a model")
    return [tmp / "notes.onnx", "--dry-run"], ("not a loadable ONNX model", "edgeunet export"), None


def _case_cpu_int8_dry_run(tmp):
    return [tiny_onnx(tmp / "model.int8.onnx", int8="cpu"), "--dry-run"], (EXPORT_FIX, "cpu INT8 flavour"), None


def _case_cpu_int8_build(tmp):
    return [tiny_onnx(tmp / "model.int8.onnx", int8="cpu")], (EXPORT_FIX,), None


def _case_cpu_int8_from_graph(tmp):  # an older export: no int8_flavour key, uint8 zero points in the graph
    return [tiny_onnx(tmp / "model.int8.onnx", int8="cpu", declare_flavour=False), "--dry-run"], (EXPORT_FIX,), None


def _case_two_shapes(tmp):
    return [tiny_onnx(tmp / "model.onnx"), "--dry-run", "--shapes", "1x1x8x8,1x1x16x16"], ("give min,opt,max",), None


def _case_three_dims(tmp):
    return [tiny_onnx(tmp / "model.onnx"), "--dry-run", "--shapes", "1x8x8,1x1x16x16,1x1x16x16"], ("BxCxHxW",), None


def _case_off_multiple(tmp):
    args = [tiny_onnx(tmp / "model.onnx"), "--dry-run", "--shapes", "1x1x12x8,1x1x16x16,1x1x16x16"]
    return args, ("12 is not a multiple of 8", "use 8 or 16"), None


def _case_min_above_max(tmp):
    args = [tiny_onnx(tmp / "model.onnx"), "--dry-run", "--shapes", "4x1x8x8,1x1x16x16,1x1x16x16"]
    return args, ("min <= opt <= max",), None


def _case_out_is_folder(tmp):
    (tmp / "engines").mkdir()
    return [tiny_onnx(tmp / "model.onnx"), "--dry-run", "--out", tmp / "engines"], ("is a folder",), None


def _case_zero_workspace(tmp):
    return [tiny_onnx(tmp / "model.onnx"), "--dry-run", "--workspace", "0"], ("--workspace", "must be 1 or more"), None


def _case_tensorrt_missing(tmp):
    stand_in = _stand_in_tensorrt(tmp, "raise ImportError(\"No module named 'tensorrt'\")\n")
    args = [tiny_onnx(tmp / "model.onnx"), "--shapes", GOOD_SHAPES]
    return args, ("pip install 'edgeunet[trt]'", "trtexec --onnx="), stand_in


def _case_tensorrt_too_old(tmp):
    stand_in = _stand_in_tensorrt(tmp, "__version__ = '8.6.1'\n")
    args = [tiny_onnx(tmp / "model.onnx"), "--shapes", GOOD_SHAPES]
    return args, ("TensorRT 8.6.1 is not supported", ">=10,<12"), stand_in


CASES = {name[len("_case_"):]: case for name, case in globals().items() if name.startswith("_case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_engine_refuses_bad_input(name, tmp_path, cli, stand_in_first):
    args, needles, stand_in = CASES[name](tmp_path)
    if stand_in:
        stand_in_first(stand_in)
    assert_user_error(cli("build-engine", *args), *needles)
    assert leftovers(tmp_path) == []


def test_cpu_int8_refusal_writes_no_trtexec_file(tmp_path, cli):
    model = tiny_onnx(tmp_path / "model.int8.onnx", int8="cpu")
    assert_user_error(cli("build-engine", model, "--dry-run"), EXPORT_FIX)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx"]


def test_tensorrt_flavour_int8_without_the_key_passes_the_check(tmp_path, cli):
    model = tiny_onnx(tmp_path / "model.int8.onnx", int8="tensorrt", declare_flavour=False)
    result = cli("build-engine", model, "--dry-run", "--shapes", GOOD_SHAPES)
    assert result.returncode == 0, result.stderr
    assert "--stronglyTyped" in (tmp_path / "model.int8.engine.trtexec.txt").read_text()


@pytest.fixture
def read_only_folder(tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({mounted.stderr.strip() or 'mount failed'}): needs root")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_out_in_a_read_only_folder_is_refused(tmp_path, read_only_folder, cli):
    model = tiny_onnx(tmp_path / "model.onnx")
    result = cli("build-engine", model, "--dry-run", "--out", read_only_folder / "model.engine")
    assert_user_error(result, str(read_only_folder), "writable")
