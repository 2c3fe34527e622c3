"""Deployment recipes: TOML files naming the export options that suit a device.

A recipe holds ``export_model`` keyword arguments (plus a ``description``); command-line
flags override it. ``--recipe cpu-int8`` finds ``export/cpu-int8.toml`` in the current folder
or in the edgeunet repository; a path works too.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path

from ..errors import UserError

# Key -> accepted Python types (bool is checked before int: True is an int in Python).
RECIPE_KEYS: dict[str, tuple[type, ...]] = {
    "description": (str,),
    "int8": (bool,),
    "fp16": (bool,),
    "calib": (str,),
    "calib_size": (int,),
    "calib_method": (str,),
    "target": (str,),
    "reduce_range": (bool,),
    "opset": (int,),
    "img_size": (int,),
    "engine": (bool,),
    "max_dice_drop": (float, int),
    "int8_search": (bool,),
    "search_time": (float, int),
    "search_size": (int,),
}


def recipe_dirs() -> list[Path]:
    """Folders searched for bare recipe names: ./export, then the repository's export/."""
    repo = Path(__file__).resolve().parents[2] / "export"
    return [d for d in (Path.cwd() / "export", repo) if d.is_dir()]


def list_recipes() -> list[str]:
    """Bare names of the recipes found in ``recipe_dirs()``."""
    return sorted({p.stem for d in recipe_dirs() for p in d.glob("*.toml")})


def find_recipe(name: str | os.PathLike) -> Path:
    """Resolves a recipe path or bare name (``cpu-int8``) to a file."""
    path = Path(name)
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".toml") else path.name
    for folder in recipe_dirs():
        if (folder / f"{stem}.toml").is_file():
            return folder / f"{stem}.toml"
    known = list_recipes()
    close = difflib.get_close_matches(stem, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UserError(f"recipe {str(name)!r} not found{hint}: give a .toml path or one of {', '.join(known) or 'none found'}")


def check_recipe(options: dict, source: str = "recipe") -> dict:
    """Raises UserError for unknown keys (suggesting the close match) or wrongly typed values."""
    for key, value in options.items():
        if key not in RECIPE_KEYS:
            close = difflib.get_close_matches(key, list(RECIPE_KEYS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(RECIPE_KEYS)}"
            raise UserError(f"{source}: unknown key {key!r}: {hint}")
        types = RECIPE_KEYS[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise UserError(f"{source}: {key} = {value!r} should be a {types[0].__name__}")
    return options


def load_recipe(name: str | os.PathLike) -> dict:
    """Reads and checks a recipe; returns its options (``description`` included)."""
    path = find_recipe(name)
    try:
        options = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML ({exc}): fix the file") from None
    return check_recipe(options, str(path))


def merge_options(recipe: dict, given: dict) -> dict:
    """Options for ``export_model``: the recipe, overridden by the flags that were given (not None)."""
    merged = {k: v for k, v in recipe.items() if k != "description"}
    merged.update({k: v for k, v in given.items() if v is not None})
    return merged
