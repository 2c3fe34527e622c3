"""The wheel users install works outside the checkout: built from the sources, installed into a fresh venv,
``edgeunet export --recipe cpu-int8`` finds its recipe (package data) from an unrelated folder.

The fresh venv borrows this venv's third-party packages through a ``.pth`` file (no download of torch);
edgeunet itself comes from the wheel, which the test checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "edgeunet" / "recipes" / "cpu-int8.toml"

pytestmark = pytest.mark.slow


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv with the edgeunet wheel built from this checkout."""
    if not RECIPE.is_file():
        pytest.skip(f"{RECIPE.relative_to(REPO)} is missing: the recipes are not package data in this tree yet")
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"  # a copy, so the build leaves no build/ or *.egg-info in the checkout
    shutil.copytree(REPO / "edgeunet", source / "edgeunet", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
          "-q", "-w", root / "dist", source])
    (wheel,) = (root / "dist").glob("edgeunet-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "borrowed-dev-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q",
          "--disable-pip-version-check", wheel])
    return venv / "bin"


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def test_the_wheel_holds_the_recipes_and_is_imported_from_the_venv(installed, tmp_path):
    code = ("import edgeunet, importlib.resources as r; print(edgeunet.__file__); "
            "print(r.files('edgeunet').joinpath('recipes/cpu-int8.toml').is_file())")
    lines = _run([installed / "python", "-c", code], cwd=tmp_path, env=_clean_env()).stdout.split()
    assert lines[0].startswith(str(installed.parent)) and lines[1] == "True"


def test_export_with_a_recipe_works_from_the_installed_wheel(installed, tiny_checkpoint, tmp_path):
    checkpoint, _ = tiny_checkpoint
    out = tmp_path / "export"
    result = _run([installed / "edgeunet", "export", checkpoint, "--recipe", "cpu-int8", "--out", out],
                  cwd=tmp_path, env=_clean_env())
    assert (out / "model.onnx").is_file(), result.stdout
    assert any(out.glob("*int8*.onnx")), sorted(p.name for p in out.iterdir())
