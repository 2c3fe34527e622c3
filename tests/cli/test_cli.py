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


@pytest.mark.slow
def test_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name.replace("_", "-") in result.stdout


@pytest.mark.slow
def test_train_then_info_through_subprocesses(tmp_path):
    out = tmp_path / "run"
    trained = run_cli("train", "--data", "synthetic", *TINY_TRAIN, "--fused-levels", "1", "--space-to-depth", "1",
                      "--out", str(out))
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


@pytest.mark.slow
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


def _case_id(case) -> str:
    argv = case.values[0] if hasattr(case, "values") else case[0]
    return " ".join(argv[:2])


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[_case_id(c) for c in BAD_INPUTS])
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


def test_data_check_lists_every_problem_and_exits_1(broken_dataset, capsys):
    assert main(["data", "check", str(broken_dataset)]) == 1
    out = capsys.readouterr().out
    assert "a.png" in out and "b.png" in out and "2 problem(s)" in out


@pytest.mark.slow
def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    result = run_cli("export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "e"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


# The error policy: whose fault it is decides the exit code and what is printed.

def _raiser(exc: BaseException):
    def run(args):
        raise exc
    return run


def test_a_bug_is_exit_1_with_a_one_line_summary(monkeypatch, capsys):
    monkeypatch.setattr("edgeunet.cli.checks.run", _raiser(ValueError("operands could not be broadcast")))
    assert main(["checks"]) == 1  # a plain ValueError from deep inside numpy is not the user's input
    err = capsys.readouterr().err.strip()
    assert err == ("edgeunet checks: internal error: ValueError: operands could not be broadcast "
                   "(rerun with -v for the traceback; please report it)")


def test_verbose_shows_the_traceback_also_after_the_command(monkeypatch, capsys):
    monkeypatch.setattr("edgeunet.cli.checks.run", _raiser(FileNotFoundError("libfoo.so")))
    assert main(["checks", "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "FileNotFoundError: libfoo.so" in err
    assert err.strip().splitlines()[-1].startswith("edgeunet checks: internal error: FileNotFoundError: libfoo.so")


def test_a_device_failure_says_device_error(monkeypatch, capsys):
    from edgeunet.errors import DeviceError

    monkeypatch.setattr("edgeunet.cli.checks.run", _raiser(DeviceError("CUDA error: out of memory")))
    assert main(["checks"]) == 1
    assert capsys.readouterr().err.strip() == ("edgeunet checks: device error: CUDA error: out of memory "
                                               "(rerun with -v for the traceback)")


def test_a_user_error_is_exit_2_and_one_line(monkeypatch, capsys):
    from edgeunet.errors import UserError

    monkeypatch.setattr("edgeunet.cli.checks.run", _raiser(UserError("bad thing\nover two lines: fix it")))
    assert main(["checks"]) == 2
    assert capsys.readouterr().err == "edgeunet checks: error: bad thing over two lines: fix it\n"


def test_a_long_command_leaves_the_traceback_in_its_run_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("edgeunet.cli.train.run", _raiser(RuntimeError("NCCL timeout")))
    out = tmp_path / "run"
    assert main(["train", "--out", str(out)]) == 1
    log = out / "edgeunet-error.log"
    err = capsys.readouterr().err.strip()
    assert err == f"edgeunet train: internal error: RuntimeError: NCCL timeout (traceback in {log}; please report it)"
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: NCCL timeout" in text and "train --out" in text


def test_a_user_error_of_a_long_command_writes_no_log(monkeypatch, tmp_path, capsys):
    from edgeunet.errors import UserError

    monkeypatch.setattr("edgeunet.cli.train.run", _raiser(UserError("no such data")))
    assert main(["train", "--out", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()


def test_ctrl_c_is_exit_130(monkeypatch, capsys):
    monkeypatch.setattr("edgeunet.cli.checks.run", _raiser(KeyboardInterrupt()))
    assert main(["checks"]) == 130
    assert capsys.readouterr().err == "edgeunet checks: interrupted\n"


@pytest.mark.parametrize("argv", [["checks", "--json"], ["info", "--models"]])
@pytest.mark.slow
def test_a_closed_pipe_exits_quietly(argv):
    process = subprocess.Popen([sys.executable, "-m", "edgeunet", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # the reader is gone before the first line is written, as `| head -1` ends up
    err = process.stderr.read()
    assert process.wait(timeout=300) == 141
    assert err == ""
