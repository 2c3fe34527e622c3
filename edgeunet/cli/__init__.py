"""``edgeunet`` command line: a thin shell over library functions.

Each command lives in its own module with ``add_parser(subparsers)``; the parser sets ``func``.
``main`` owns the error policy, the same for every command:

- a ``UserError`` (bad input, path, option or environment; a missing extra) is one line on
  stderr, ``edgeunet <command>: error: <message>``, exit 2;
- anything else is a bug or a device failure: exit 1 with a one-line summary, the traceback
  under ``-v``, and for long commands also in ``<out>/edgeunet-error.log``;
- Ctrl-C exits 130; a closed stdout pipe (``edgeunet info --models | head -1``) exits 141, quietly.

A command that needs an optional extra says so before it starts (``EXTRAS``, ``needed_extra``).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import logging
import os
import re
import sys
import traceback
from pathlib import Path

from .. import __version__
from ..errors import DeviceError, MissingExtraError, UserError
from ..formats import BY_NAME, ENGINE_SUFFIXES

# Pipeline order: the help lists them as a user meets them.
COMMANDS = ("data", "train", "prune", "export", "build_engine", "predict", "bench", "info", "checks", "quickstart")
# Commands that run for minutes: an internal error also leaves its traceback in <out>/edgeunet-error.log.
LONG_COMMANDS = ("train", "prune", "export", "bench", "quickstart")
ERROR_LOG = "edgeunet-error.log"

# The modules each extra installs that commands import (pyproject.toml [project.optional-dependencies]).
EXTRAS = {
    "train": ("torch", "torch_pruning", "onnx", "onnxslim"),
    "trt": ("tensorrt",),
    "bench": ("monai",),
}
_TORCH_FREE_INFO = (BY_NAME["onnx"].suffix,) + ENGINE_SUFFIXES


def _info_extra(args) -> str | None:
    if getattr(args, "models", False) or not getattr(args, "path", None):
        return "train"  # the zoo is listed by building each variant in torch
    return None if Path(args.path).suffix.lower() in _TORCH_FREE_INFO else "train"


def _by_model_files(paths) -> str | None:
    suffixes = {Path(p).suffix.lower() for p in paths}
    if suffixes & {".pt", ".pth"}:
        return "train"
    return "trt" if suffixes & set(ENGINE_SUFFIXES) else None


# command -> the extra it needs, given its parsed arguments (None: the base install is enough).
NEEDS_EXTRA = {
    "train": lambda args: "train",
    "prune": lambda args: "train",
    "export": lambda args: "train",
    "quickstart": lambda args: "train",
    # build-engine checks its inputs (and writes --dry-run plans) before it needs TensorRT, then names the extra.
    "build-engine": lambda args: None,
    "info": _info_extra,
    "bench": lambda args: _by_model_files(getattr(args, "models", [])),
    "predict": lambda args: _by_model_files([getattr(args, "model", "")]),
}
# What `edgeunet checks` lists under each extra.
EXTRA_COMMANDS = {
    "train": "train, prune, export, quickstart, info CHECKPOINT, info --models, bench CHECKPOINT",
    "trt": "build-engine, predict ENGINE, bench ENGINE",
    "bench": "benchmarks/run.py's MONAI BasicUNet reference",
}


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (looked up, not imported)."""
    missing = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a finder that refuses it, or a half-imported module
            found = False
        if not found:
            missing.append(module)
    return missing


def check_extra(extra: str, what: str) -> None:
    """Raises MissingExtraError naming ``pip install 'edgeunet[extra]'`` when ``extra`` is incomplete."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(f"{what} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                                f"not installed: run `pip install 'edgeunet[{extra}]'`")


def needed_extra(args: argparse.Namespace) -> str | None:
    """The extra the parsed command needs, or None."""
    rule = NEEDS_EXTRA.get(args.command)
    return rule(args) if rule else None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, as argparse does, plus the fix
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = re.findall(r"'([^']*)'", match.group(2))
            close = difflib.get_close_matches(match.group(1), choices, n=1)
            if close:
                message += f"; did you mean '{close[0]}'?"
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """Lets ``-v`` follow the command too (``edgeunet predict ... -v``), as the error lines suggest."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                try:
                    child.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                       help="log details; show tracebacks")
                except argparse.ArgumentError:
                    pass  # the command has its own -v
                _add_verbose_everywhere(child)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgeunet", description="U-Net segmentation from training to edge devices.")
    parser.add_argument("--version", action="version", version=f"edgeunet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details; show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parser(sub)
    _add_verbose_everywhere(parser)
    return parser


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost parser of the command line given (``edgeunet data synth`` -> the ``synth`` parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            if chosen in action.choices:
                return _command_parser(action.choices[chosen], args)
    return parser


def _one_line(exc: BaseException, limit: int = 2000) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _write_error_log(args: argparse.Namespace, argv: list[str], exc: BaseException) -> Path | None:
    """Writes the traceback to ``<out>/edgeunet-error.log`` of a long command; None when there is no such folder."""
    out = getattr(args, "out", None)
    if args.command not in LONG_COMMANDS or not out:
        return None
    from ..atomic import ensure_dir, write_text

    try:
        folder = ensure_dir(out, "run folder")
        trace = "".join(traceback.format_exception(exc))
        return write_text(folder / ERROR_LOG, f"edgeunet {__version__}: edgeunet {' '.join(argv)}\n\n{trace}")
    except Exception:  # the log is a courtesy: never hide the error behind a second one
        return None


def _internal_error(args: argparse.Namespace, argv: list[str], exc: BaseException, name: str) -> int:
    if args.verbose:
        traceback.print_exception(exc)
    log = _write_error_log(args, argv, exc)
    where = f"traceback in {log}" if log else "rerun with -v for the traceback"
    if isinstance(exc, DeviceError):
        line = f"device error: {_one_line(exc)} ({where})"
    else:
        line = f"internal error: {type(exc).__name__}: {_one_line(exc)} ({where}; please report it)"
    print(f"{name}: {line}", file=sys.stderr)
    return 1


def _closed_pipe() -> int:
    """stdout's reader went away (``| head``): stop quietly, as the Python docs recommend for SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit must not fail again
    except (AttributeError, OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for tools stopped by a closed pipe


def main(argv: list[str] | None = None) -> int:
    """Runs ``edgeunet ARGV`` and returns the exit code (see the module docstring for the error policy)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's parser, so the line names the command and its --help
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    name = _command_parser(parser, args).prog  # "edgeunet predict", "edgeunet data synth"
    try:
        extra = needed_extra(args)
        if extra:
            check_extra(extra, f"`{name}`")
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except UserError as exc:
        if args.verbose:
            traceback.print_exception(exc)
        print(f"{name}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug or a device failure, not the user's input
        return _internal_error(args, argv, exc, name)
