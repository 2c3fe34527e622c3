"""``edgeunet`` command line: a thin shell over library functions.

Each command lives in its own module with ``add_parser(subparsers)``; the parser sets
``func``. Bad input anywhere becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import MissingExtraError, UserError

# Pipeline order: the help lists them as a user meets them.
COMMANDS = ("data", "train", "prune", "export", "build_engine", "predict", "bench", "info", "checks", "quickstart")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, as argparse does, plus the fix
        self.exit(2, f"edgeunet: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgeunet", description="U-Net segmentation from training to edge devices.")
    parser.add_argument("--version", action="version", version=f"edgeunet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details; show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("edgeunet: interrupted", file=sys.stderr)
        return 130
    except (UserError, MissingExtraError, FileNotFoundError, NotADirectoryError, ValueError) as exc:
        if args.verbose:
            raise
        print(f"edgeunet {args.command}: error: {exc}", file=sys.stderr)
        return 2
