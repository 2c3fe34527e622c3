"""Argument types and helpers every command shares: values are checked where they are parsed,
so a bad flag gets argparse's one line (exit 2) naming the flag, and old spellings keep working
for a release as hidden aliases that say what to use instead."""

from __future__ import annotations

import argparse
import dataclasses
import sys


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} must be {minimum} or more")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _whole_number(text, 1)


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _whole_number(text, 0)


def finite_float(text: str) -> float:
    """A float that is not NaN or infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def nonnegative_float(text: str) -> float:
    """A finite float >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be 0 or more")
    return value


def int_list(text: str) -> list[int]:
    """``"256,512"`` -> [256, 512]; argparse reports anything else in one line."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive integers, e.g. 256,512")
    return [int(p) for p in parts]


def name_list(text: str) -> list[str]:
    """``"a, b"`` -> ["a", "b"]."""
    return [p.strip() for p in text.split(",") if p.strip()]


class _DeprecatedAlias(argparse.Action):
    """Stores like the new option and says once on stderr which spelling to use."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"edgeunet: {option_string} is deprecated and will be removed in the next release: use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs) -> None:
    """Adds ``old`` as a hidden spelling of the option ``new`` (same ``dest``, ``type`` etc. in ``kwargs``).

    Note: the deprecation line goes to stderr, so a test that counts stderr lines should use the new spelling.
    """
    parser.add_argument(old, dest=dest, action=_DeprecatedAlias, new=new, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kwargs)


def field_default(options_class, name: str):
    """The default of field ``name`` of a dataclass (so a CLI default is written once, in the options object)."""
    for f in dataclasses.fields(options_class):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise KeyError(f"{options_class.__name__}.{name} has no default")
    raise KeyError(f"{options_class.__name__} has no field {name!r}")
