"""``option``: a settings field that is also a command-line flag, written once, beside the field.

``edgeunet.cli.options.add_fields`` makes the flags of a settings dataclass from these fields: the
flag, argparse type, default and help all come from here. Stdlib only: settings modules import it.

    batch_size: int = option(8, "count", "images per step, over all processes")
"""

from __future__ import annotations

import dataclasses


def option(default, kind: str, help: str, **extra) -> dataclasses.Field:
    """A dataclass field with the metadata its flag is built from.

    Args:
        default: The field's default (a tuple for sequences: dataclass defaults must not be mutable).
        kind: How the command line reads it: a key of ``edgeunet.cli.options.KINDS`` (``count``, ``size``,
            ``choice``, ``switch`` ...), which gives the argparse type and metavar.
        help: The help text, without the default (the flag's help appends it).
        **extra: ``choices``; ``flag`` (the spelling, when it is not ``--field-name``); ``metavar``;
            ``const`` (the value of the bare flag, which then takes an optional value); ``exclusive`` (a
            group name: flags of one group cannot be given together); ``aliases`` (old spellings, hidden,
            that still work for a release and say the new one).
    """
    return dataclasses.field(default=default, metadata={"kind": kind, "help": help, **extra})
