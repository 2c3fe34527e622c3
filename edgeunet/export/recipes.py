"""Deployment recipes: TOML files naming the export options that suit a device.

A recipe holds ``ExportOptions`` fields (plus a ``description``); command-line flags override
it. The recipes edgeunet ships are package data (``edgeunet/recipes/*.toml``, read with
``importlib.resources``): ``--recipe cpu-int8`` names one; a path to a ``.toml`` file works too.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ..errors import MissingFileError, UserError
from .options import DEPRECATED_KEYS, ExportOptions, field_types

# Key -> accepted Python types (bool is checked before int: True is an int in Python), from ExportOptions.
RECIPE_KEYS: dict[str, tuple[type, ...]] = {"description": (str,), **field_types()}


def packaged_recipes() -> Traversable:
    """The folder of the recipes edgeunet ships (``edgeunet/recipes``)."""
    return resources.files("edgeunet") / "recipes"


def list_recipes() -> list[str]:
    """Bare names of the shipped recipes."""
    return sorted(p.name[:-5] for p in packaged_recipes().iterdir() if p.name.endswith(".toml"))


def find_recipe(name: str | os.PathLike) -> Path | Traversable:
    """Resolves a recipe path or the bare name of a shipped recipe (``cpu-int8``) to a file."""
    path = Path(name)
    if path.is_file():
        return path
    if path.suffix == ".toml" and len(path.parts) > 1:
        raise MissingFileError(f"recipe file {path} not found: check the path, or use one of "
                               f"{', '.join(list_recipes())}")
    stem = path.name[:-5] if path.name.endswith(".toml") else path.name
    shipped = packaged_recipes() / f"{stem}.toml"
    if shipped.is_file():
        return shipped
    known = list_recipes()
    close = difflib.get_close_matches(stem, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UserError(f"recipe {str(name)!r} not found{hint}: give a .toml path or one of "
                    f"{', '.join(known) or 'none found'}")


def check_recipe(options: dict, source: str = "recipe") -> dict:
    """Raises UserError for unknown keys (suggesting the close match) or wrongly typed values.

    Keys of earlier releases (``calib_size``, ``search_size``) are read as their new names.
    """
    out = {}
    for key, value in options.items():
        key = DEPRECATED_KEYS.get(key, key)
        if key not in RECIPE_KEYS:
            close = difflib.get_close_matches(key, list(RECIPE_KEYS) + list(DEPRECATED_KEYS), n=1)
            hint = f"did you mean {DEPRECATED_KEYS.get(close[0], close[0])!r}?" if close else \
                f"valid keys: {', '.join(RECIPE_KEYS)}"
            raise UserError(f"{source}: unknown key {key!r}: {hint}")
        types = RECIPE_KEYS[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise UserError(f"{source}: {key} = {value!r} should be a {types[0].__name__}")
        out[key] = value
    return out


def load_recipe(name: str | os.PathLike) -> dict:
    """Reads and checks a recipe; returns its options (``description`` included)."""
    path = find_recipe(name)
    try:
        options = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML ({exc}): fix the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read recipe {path} ({exc}): give a readable UTF-8 .toml file") from None
    return check_recipe(options, str(path))


def merge_options(recipe: dict, given: dict) -> dict:
    """Options for ``ExportOptions``: the recipe, overridden by the flags that were given (not None)."""
    merged = {k: v for k, v in recipe.items() if k != "description"}
    merged.update({k: v for k, v in given.items() if v is not None})
    return merged


def recipe_options(name: str | os.PathLike | None, given: dict) -> ExportOptions:
    """``ExportOptions`` from a recipe (None: none) overridden by the flags ``given`` (None: not given)."""
    recipe = load_recipe(name) if name else {}
    return ExportOptions.from_dict(merge_options(recipe, given), f"recipe {name}" if name else "options")
