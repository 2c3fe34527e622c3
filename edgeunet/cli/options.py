"""Argument types and the one flag builder every command shares.

``add_fields`` makes a command's flags from the fields of its settings dataclass (``TrainSettings``,
``PruneSettings``, ``BenchSettings``, ``TimingSettings``, ``ExportOptions``): each field made with
``edgeunet.fields.option`` holds its flag's kind, help and default, so an option is written once, beside
its field. Values are checked where they are parsed, so a bad flag gets argparse's one line (exit 2)
naming the flag, and old spellings keep working for a release as hidden aliases that say what to use
instead. Flags that are no settings field (``--out``, ``--no-progress``, positional arguments) are
written by hand in the command's module.
"""

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


def level_list(text: str) -> list[int]:
    """``"2,3"`` -> [2, 3]: levels of a U-Net, 0 (full resolution) or deeper."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of levels (0 or more), e.g. 2,3")
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


def ratio_fraction(text: str) -> float:
    """A fraction of channels to remove, in [0, 1)."""
    value = finite_float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not a fraction of channels to remove: use a value in [0, 1), "
                                         "e.g. 0.5")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be greater than 0")
    return value


# Field kind (the ``kind`` of a field made with ``edgeunet.fields.option``) -> argparse keywords.
KINDS = {
    "switch": {"action": argparse.BooleanOptionalAction},  # --name and --no-name
    "flag": {"action": "store_true"},
    "choice": {},  # the field's ``choices``
    "text": {},
    "data": {"metavar": "DIR"},
    "path": {"metavar": "FILE"},
    "count": {"type": positive_int, "metavar": "N"},
    "int": {"type": positive_int, "metavar": "N"},
    "nonnegative": {"type": nonnegative_int, "metavar": "N"},
    "seed": {"type": nonnegative_int, "metavar": "N"},
    "integer": {"type": int, "metavar": "N"},  # any whole number: the settings' check names the rule
    "size": {"type": positive_int, "metavar": "PX"},
    "sizes": {"type": int_list, "metavar": "N[,N...]"},
    "sides": {"type": int_list, "metavar": "D,H,W"},
    "number": {"type": finite_float, "metavar": "X"},
    "positive": {"type": positive_float, "metavar": "X"},
    "fraction": {"type": nonnegative_float, "metavar": "X"},
    "ratio": {"type": ratio_fraction, "metavar": "X"},
    "seconds": {"type": finite_float, "metavar": "S"},
    "duration": {"type": nonnegative_float, "metavar": "S"},
    "names": {"type": name_list, "metavar": "LIST"},
}


def flag_of(f: dataclasses.Field) -> str:
    """The command-line spelling of a field: its ``flag`` metadata, else ``calib_images`` -> ``--calib-images``."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _shown_default(kind: str, default) -> str:
    """`` (default X)`` for the help, or nothing where the default is unset (the help says what unset means)."""
    if default is None or kind == "flag" or kind == "switch" and not default:
        return ""
    if kind == "switch":
        return " (default on)"
    if isinstance(default, (tuple, list)):
        return f" (default {','.join(map(str, default))})"
    return f" (default {default})"


def option_fields(options_class, names=None, skip=()) -> list[dataclasses.Field]:
    """The fields of ``options_class`` that are flags (made with ``edgeunet.fields.option``), or those ``names``
    in that order; ``skip``: names left out."""
    fields = {f.name: f for f in dataclasses.fields(options_class) if "kind" in f.metadata}
    chosen = list(fields) if names is None else list(names)
    unknown = [name for name in chosen if name not in fields]
    if unknown:
        raise KeyError(f"{options_class.__name__} has no option field {', '.join(unknown)}")
    return [fields[name] for name in chosen if name not in skip]


def add_fields(parser: argparse.ArgumentParser, options_class, names=None, *, skip=(),
               defaults_none: bool = False) -> list[str]:
    """Adds one flag per option field of the dataclass ``options_class`` (see ``option_fields``).

    Each flag is ``flag_of(field)`` with the field's name as ``dest``, the argparse type and metavar of
    ``KINDS[kind]`` (the field's ``metavar``, ``choices`` and ``const`` refine them), the field's default, and
    its help with the default appended. Fields with the same ``exclusive`` name form a mutually exclusive
    group; ``aliases`` become hidden deprecated spellings (``deprecated_alias``).

    Args:
        parser: The command's parser.
        options_class: A dataclass whose flag fields were made with ``edgeunet.fields.option``.
        names, skip: Which fields (default: all flag fields, in field order).
        defaults_none: Every flag defaults to None, so the caller can tell which were given (``edgeunet
            export`` lays them over a recipe); the help still shows the field's default.

    Returns:
        The ``dest`` of every flag added (the field names).
    """
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    added = []
    for f in option_fields(options_class, names, skip):
        meta, kind = f.metadata, f.metadata["kind"]
        default = field_default(options_class, f.name)
        keywords = {**KINDS[kind], **{k: meta[k] for k in ("metavar", "choices") if k in meta}}
        if "const" in meta:  # a bare flag means this value
            keywords.update(nargs="?", const=meta["const"])
        if "choices" in keywords:
            keywords.pop("metavar", None)  # argparse lists the choices instead
        target = parser
        if "exclusive" in meta:
            if meta["exclusive"] not in groups:
                groups[meta["exclusive"]] = parser.add_mutually_exclusive_group()
            target = groups[meta["exclusive"]]
        action = target.add_argument(flag_of(f), dest=f.name, help=meta["help"] + _shown_default(kind, default),
                                     **keywords)
        action.default = None if defaults_none else default  # set after: BooleanOptionalAction would add its own
        # "(default: True)" to the help (Python < 3.14)
        for old in meta.get("aliases", ()):
            deprecated_alias(parser, old, flag_of(f), dest=f.name,
                             **{k: v for k, v in keywords.items() if k in ("type", "metavar", "choices")})
        added.append(f.name)
    return added


def field_values(args: argparse.Namespace, options_class, names=None, skip=()) -> dict:
    """``{field name: parsed value}`` of the option fields of ``options_class`` (as ``add_fields`` added them)."""
    return {f.name: getattr(args, f.name) for f in option_fields(options_class, names, skip) if hasattr(args, f.name)}
