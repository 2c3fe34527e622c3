"""The base install (no torch, Torch-Pruning or onnx): commands that need the ``train`` extra say so in one
line before they start (exit 2); predict, info MODEL.onnx and checks still work.

Each command runs in a subprocess where a meta-path finder refuses to import the ``train`` extra's
modules and ``importlib.metadata`` does not know their distributions, as in a fresh ``pip install edgeunet``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from badinput import assert_user_error
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
WRAPPER = '''
import importlib.abc, importlib.metadata, sys

MODULES = {"torch", "torch_pruning", "onnx", "onnxslim", "torchvision"}
DISTRIBUTIONS = {"torch", "torch-pruning", "torch_pruning", "onnx", "onnxslim", "torchvision"}


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MODULES:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def version(name, _version=importlib.metadata.version):
    if name.lower() in DISTRIBUTIONS:
        raise importlib.metadata.PackageNotFoundError(name)
    return _version(name)


sys.meta_path.insert(0, NotInstalled())
importlib.metadata.version = version
sys.path.insert(0, sys.argv.pop(1))
from edgeunet.cli import main

sys.exit(main(sys.argv[1:]))
'''


def run_without_torch(tmp_path: Path, *argv) -> subprocess.CompletedProcess:
    wrapper = tmp_path / "no_torch.py"
    wrapper.write_text(WRAPPER)
    return subprocess.run([sys.executable, str(wrapper), str(REPO), *map(str, argv)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


NEED_TRAIN = [
    ["train", "--data", "synthetic", "--out", "{tmp}/run"],
    ["prune", "{tmp}/best.pt", "--out", "{tmp}/pruned"],
    ["export", "{tmp}/best.pt", "--out", "{tmp}/export"],
    ["quickstart", "--out", "{tmp}/quick"],
    ["info", "{tmp}/best.pt"],
    ["info", "--models"],
]


@pytest.mark.parametrize("argv", NEED_TRAIN, ids=[" ".join(a[:2]) for a in NEED_TRAIN])
@pytest.mark.slow
def test_a_command_that_needs_torch_names_the_extra_first(argv, tmp_path):
    result = run_without_torch(tmp_path, *[a.format(tmp=tmp_path) for a in argv])
    line = assert_user_error(result, f"edgeunet {argv[0]}: error:", "torch", "pip install 'edgeunet[train]'")
    assert "ModuleNotFoundError" not in line
    assert not any((tmp_path / name).exists() for name in ("run", "pruned", "export", "quick"))


def test_predict_runs_without_torch(runtime_model, tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8)).save(tmp_path / "a.png")
    result = run_without_torch(tmp_path, "predict", runtime_model, tmp_path / "a.png", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "segmented 1 image(s)" in result.stdout and (tmp_path / "out" / "a.png").is_file()


def test_info_of_an_onnx_model_runs_without_torch_or_onnx(runtime_model, tmp_path):
    result = run_without_torch(tmp_path, "info", runtime_model)
    assert result.returncode == 0, result.stderr
    assert "onnx: " in result.stdout and "classes     background, nucleus" in result.stdout
    assert "op counts need the onnx package: pip install 'edgeunet[train]'" in result.stdout


@pytest.mark.slow
def test_checks_runs_without_torch_and_says_what_is_missing(tmp_path):
    result = run_without_torch(tmp_path, "checks")
    assert result.returncode == 0, result.stderr
    assert "torch         not installed" in result.stdout
    assert "train, prune, export, quickstart" in result.stdout
    assert "need 'edgeunet[train]' (torch, torch_pruning, onnx, onnxslim missing)" in result.stdout
