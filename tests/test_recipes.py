"""Deployment recipes: every shipped recipe parses; bad keys and values name the fix; flags override."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeunet.export.recipes import RECIPE_KEYS, find_recipe, load_recipe, merge_options

REPO_RECIPES = sorted((Path(__file__).resolve().parents[1] / "export").glob("*.toml"))


def test_repo_ships_the_three_recipes():
    assert {p.stem for p in REPO_RECIPES} >= {"cpu-int8", "jetson-orin-int8", "desktop-gpu-fp16"}


@pytest.mark.parametrize("path", REPO_RECIPES, ids=lambda p: p.stem)
def test_every_recipe_parses_with_known_keys(path):
    options = load_recipe(path)
    assert options["description"] and set(options) <= set(RECIPE_KEYS)


def test_bare_name_resolves_to_repo_recipe():
    assert find_recipe("cpu-int8").name == "cpu-int8.toml"


def test_unknown_recipe_name_suggests_close_match():
    with pytest.raises(ValueError, match="recipe 'cpu-int9' not found \\(did you mean 'cpu-int8'\\?\\)"):
        find_recipe("cpu-int9")


def test_unknown_key_suggests_close_match(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('description = "x"\ncalib_sise = 8\n')
    with pytest.raises(ValueError, match="unknown key 'calib_sise': did you mean 'calib_size'\\?"):
        load_recipe(path)


def test_wrong_value_type_names_the_type(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('int8 = "yes"\n')
    with pytest.raises(ValueError, match="int8 = 'yes' should be a bool"):
        load_recipe(path)


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text("int8 = \n")
    with pytest.raises(ValueError, match="r.toml is not valid TOML"):
        load_recipe(path)


def test_given_flags_override_recipe():
    recipe = {"description": "x", "int8": True, "calib_size": 64, "target": "tensorrt"}
    merged = merge_options(recipe, {"int8": False, "calib_size": None, "target": "cpu"})
    assert merged == {"int8": False, "calib_size": 64, "target": "cpu"}
