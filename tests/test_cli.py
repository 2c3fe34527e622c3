"""The command line end to end: every command is registered, runs, and turns bad input into one line + exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeunet.cli import COMMANDS, main

TINY_TRAIN = ["--model", "unet-ds", "--base-width", "8", "--depth", "2", "--epochs", "1", "--batch-size", "4",
              "--img-size", "32", "--samples-per-epoch", "8", "--device", "cpu", "--no-progress"]


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeunet", *argv], capture_output=True, text=True, timeout=300)


def test_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name.replace("_", "-") in result.stdout


def test_train_then_info_through_subprocesses(tmp_path):
    out = tmp_path / "run"
    trained = run_cli("train", "--data", "synthetic", *TINY_TRAIN, "--fused-levels", "1", "--space-to-depth", "1", "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    assert "best validation Dice" in trained.stdout and (out / "best.pt").is_file()
    info = run_cli("info", str(out / "best.pt"), "--json")
    assert info.returncode == 0, info.stderr
    facts = json.loads(info.stdout)
    assert facts["model_config"]["name"] == "unet-ds" and facts["parameters"] > 0 and facts["macs"] > 0
    assert (facts["model_config"]["fused_levels"], facts["model_config"]["space_to_depth"]) == (1, 1)


def test_checks_prints_versions(capsys):
    assert main(["checks"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "cpu" in out


def test_info_models_lists_the_zoo(capsys):
    assert main(["info", "--models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("unet", "unet-ds", "unet-mobile"))


@pytest.fixture
def broken_dataset(tmp_path):
    from edgeunet.data.io import write_image, write_mask

    root = tmp_path / "broken"
    write_image(root / "images" / "a.png", np.zeros((32, 32), np.uint8))
    write_mask(root / "masks" / "a.png", np.zeros((16, 16), np.uint8))
    write_image(root / "images" / "b.png", np.zeros((32, 32), np.uint8))
    return root


BAD_INPUTS = [
    (["train", "--data", "/no/such/folder", "--out", "{tmp}/r"], "/no/such/folder"),
    (["train", "--model", "unet-dss", "--out", "{tmp}/r"], "did you mean 'unet-ds'"),
    (["train", "--epochs", "0", "--out", "{tmp}/r"], "--epochs must be at least 1"),
    (["train", "--data", "{broken}", "--out", "{tmp}/r"], "problems"),
    (["info", "{tmp}/missing.pt"], "does not exist"),
    (["export", "{tmp}/missing.pt", "--out", "{tmp}/e"], "not found"),
    (["predict", "{tmp}/missing.onnx", "{tmp}", "--out", "{tmp}/p"], "missing.onnx"),
    (["prune", "{tmp}/missing.pt", "--out", "{tmp}/p"], "not found"),
    (["bench", "{tmp}/missing.onnx", "--sizes", "abc"], "--sizes"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(a[:2]) for a, _ in BAD_INPUTS])
def test_bad_input_gives_one_line_and_exit_2(argv, message, tmp_path, broken_dataset, capsys):
    argv = [a.format(tmp=tmp_path, broken=broken_dataset) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse rejects malformed options itself, also with exit code 2
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_data_check_lists_every_problem_and_exits_2(broken_dataset, capsys):
    assert main(["data", "check", str(broken_dataset)]) == 2
    out = capsys.readouterr().out
    assert "a.png" in out and "b.png" in out and "2 problem(s)" in out


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    result = run_cli("export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "e"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
