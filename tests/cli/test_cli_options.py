"""One flag builder for every command: each settings field made with ``option`` is a flag whose type, default and
help come from the field, written once."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pytest

from edgeunet.bench.settings import BenchSettings
from edgeunet.cli import build_parser
from edgeunet.cli.bench import settings_from_args
from edgeunet.cli.options import KINDS, add_fields, field_default, field_values, flag_of
from edgeunet.export.options import ExportOptions
from edgeunet.fields import option
from edgeunet.prune import PruneSettings
from edgeunet.timing import TimingSettings
from edgeunet.train.settings import TrainSettings

# command -> (the settings classes its flags come from, the arguments it needs besides them)
COMMANDS = {
    "train": ((TrainSettings,), ["--out", "r"]),
    "prune": ((PruneSettings,), ["c.pt", "--out", "r"]),
    "bench": ((BenchSettings, TimingSettings), ["m.onnx"]),
    "export": ((ExportOptions,), ["c.pt", "--out", "e"]),
}


def _flag_fields(cls):
    return [f for f in dataclasses.fields(cls) if "kind" in f.metadata]


def _command_parser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_field_is_a_flag_with_its_default_and_help(command):
    classes, needed = COMMANDS[command]
    parser = _command_parser(command)
    args = build_parser().parse_args([command, *needed])
    actions = {a.dest: a for a in parser._actions if a.help != argparse.SUPPRESS}  # not the old spellings
    for cls in classes:
        assert _flag_fields(cls), cls
        for f in _flag_fields(cls):
            action = actions[f.name]
            assert flag_of(f) in action.option_strings
            assert action.help.startswith(f.metadata["help"])  # the help is the field's, written once
            assert f.metadata["kind"] in KINDS
            given = getattr(args, f.name)
            if command == "export":  # None: not given, so a --recipe value stands
                assert given is None, f.name
            else:
                assert given == field_default(cls, f.name), f.name


def test_settings_from_a_bare_command_line_are_the_dataclass_defaults():
    parse = build_parser().parse_args
    args = parse(["train", "--out", "r"])
    assert TrainSettings(**field_values(args, TrainSettings), out="r") == TrainSettings(out="r")
    args = parse(["prune", "c.pt", "--out", "r"])
    assert PruneSettings(**field_values(args, PruneSettings)) == PruneSettings()
    assert settings_from_args(parse(["bench", "m.onnx"])) == BenchSettings()


def test_flags_reach_the_settings_with_their_types():
    args = build_parser().parse_args(["train", "--out", "r", "--batch-size", "4", "--img-size", "64", "--lr", "1e-3",
                                      "--device", "cpu", "--resume", "--workers", "0"])
    settings = TrainSettings(**field_values(args, TrainSettings), out="r")
    assert (settings.batch_size, settings.img_size, settings.lr, settings.device, settings.resume) == \
        (4, 64, 1e-3, "cpu", True)
    bench = settings_from_args(build_parser().parse_args(["bench", "m.onnx", "--img-size", "64,32", "--min-iters", "3",
                                                          "--no-memory", "--max-time", "0"]))
    assert (bench.sizes, bench.timing.min_rounds, bench.memory, bench.timing.max_time) == ((32, 64), 3, False, None)


@pytest.mark.parametrize("argv", [
    ["train", "--out", "r", "--steps", "10", "--samples-per-epoch", "8"],
    ["train", "--out", "r", "--val", "v", "--val-fraction", "0.2"],
    ["prune", "c.pt", "--out", "r", "--ratio", "0.3", "--target-macs", "1G"],
    ["prune", "c.pt", "--out", "r", "--target-macs", "1G", "--target-params", "1M"],
])
def test_exclusive_fields_cannot_be_given_together(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


@dataclasses.dataclass(frozen=True)
class _Toy:
    """Every way a field becomes a flag."""

    name: str = option("a", "choice", "a name", choices=("a", "b"))
    count: int = option(2, "count", "a count", aliases=("--n",))
    sides: tuple[int, ...] | None = option(None, "sides", "three sides", exclusive="shape")
    side: int | None = option(None, "size", "one side", exclusive="shape", flag="--img-size")
    fast: bool = option(True, "switch", "go fast")
    mode: str = option("run", "choice", "a mode", choices=("run", "always"), const="always")
    hidden: int = 0  # no option: no flag


def _toy(argv, defaults_none=False):
    parser = argparse.ArgumentParser(prog="toy")
    added = add_fields(parser, _Toy, defaults_none=defaults_none)
    assert added == ["name", "count", "sides", "side", "fast", "mode"]
    return parser, parser.parse_args(argv)


def test_a_new_field_is_a_new_flag(capsys):
    parser, args = _toy([])
    assert vars(args) == {"name": "a", "count": 2, "sides": None, "side": None, "fast": True, "mode": "run"}
    assert _Toy(**field_values(args, _Toy)) == _Toy()
    _, args = _toy(["--name", "b", "--n", "5", "--sides", "4,8,8", "--no-fast", "--mode"])
    assert vars(args) == {"name": "b", "count": 5, "sides": [4, 8, 8], "side": None, "fast": False, "mode": "always"}
    assert "--n is deprecated" in capsys.readouterr().err
    help_text = " ".join(parser.format_help().split())
    assert "a count (default 2)" in help_text and "go fast (default on)" in help_text and "(default: True)" \
        not in help_text and "--hidden" not in help_text and "--n " not in help_text
    _, args = _toy([], defaults_none=True)
    assert set(vars(args).values()) == {None}
    for bad in (["--count", "0"], ["--name", "c"], ["--sides", "4,8,8", "--img-size", "8"]):
        with pytest.raises(SystemExit) as exit_info:
            _toy(bad)
        assert exit_info.value.code == 2


@pytest.mark.slow
def test_help_builds_without_torch():
    code = ("import sys\n"
            "from edgeunet.cli import build_parser\n"
            "parser = build_parser()\n"
            "for command in ('train', 'prune', 'bench', 'export', 'data'):\n"
            "    try:\n"
            "        parser.parse_args([command, '--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
