"""Deployment recipes: every shipped recipe parses; bad keys and values name the fix; flags override."""

from __future__ import annotations

from importlib import resources

import pytest

from edgeunet.export.recipes import RECIPE_KEYS, find_recipe, load_recipe, merge_options

REPO_RECIPES = sorted((p for p in (resources.files("edgeunet") / "recipes").iterdir() if p.name.endswith(".toml")),
                      key=lambda p: p.name)


def test_repo_ships_the_three_recipes():
    assert {p.name.removesuffix(".toml") for p in REPO_RECIPES} >= {"cpu-int8", "jetson-orin-int8", "desktop-gpu-fp16"}


@pytest.mark.parametrize("path", REPO_RECIPES, ids=lambda p: p.name)
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
    with pytest.raises(ValueError, match="unknown key 'calib_sise': did you mean 'calib_images'\\?"):
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


def test_every_recipe_builds_valid_options():
    from edgeunet.export.recipes import recipe_options

    for path in REPO_RECIPES:
        assert recipe_options(path.name.removesuffix(".toml"), {}).opset == 17


def test_old_recipe_keys_read_as_the_new_ones(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text('calib_size = 8\nsearch_size = 64\n')
    assert load_recipe(path) == {"calib_images": 8, "search_img_size": 64}


def test_recipe_values_are_validated_by_the_options(tmp_path):
    from edgeunet.export.recipes import recipe_options

    path = tmp_path / "r.toml"
    path.write_text("max_dice_drop = -0.5\n")
    with pytest.raises(ValueError, match="--max-dice-drop -0.5 must be 0 or more"):
        recipe_options(path, {})


def test_recipe_readme_documents_every_key():
    readme = (resources.files("edgeunet") / "recipes" / "README.md").read_text()
    assert [key for key in RECIPE_KEYS if f"| `{key}` |" not in readme] == []


def test_recipes_are_package_data_not_a_top_level_folder():
    from pathlib import Path

    assert str(find_recipe("cpu-int8")).endswith(str(Path("edgeunet", "recipes", "cpu-int8.toml")))
