"""The README is a landing page and the manual is a MkDocs site (docs/, mkdocs.yml) that builds strictly."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_README_LINES = 250
_LINK = re.compile(r"\]\(([^)\s]+)\)")  # the target of a Markdown link or image


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="MkDocs is not installed: pip install -e '.[docs]' (CI installs it)")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=300)


def test_readme_is_a_landing_page_of_at_most_250_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines: move the reference into docs/"


def test_readme_links_point_at_files_of_the_repository():
    targets = [t for t in _LINK.findall(README.read_text(encoding="utf-8")) if "://" not in t and not t.startswith("#")]
    assert any(t.startswith("docs/") for t in targets), "README.md links to no page of docs/"
    missing = [t for t in targets if not (ROOT / t.split("#")[0]).exists()]
    assert not missing, f"README.md links to paths that do not exist: {missing}"


def test_every_page_of_docs_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = set(re.findall(r"^\s+- [^:\n]+: (\S+\.md)$", config, re.MULTILINE))
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert nav == pages, f"pages not in mkdocs.yml's nav: {sorted(pages - nav)}; nav entries without a page: " \
                         f"{sorted(nav - pages)}"


@pytest.mark.slow
def test_the_docs_site_builds_strictly(tmp_path):
    result = _mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "export" / "index.html").is_file()


@pytest.mark.slow
def test_a_broken_link_or_anchor_or_a_page_outside_the_nav_fails_the_build(tmp_path):
    shutil.copy2(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    page = tmp_path / "docs" / "pruning.md"
    text = page.read_text(encoding="utf-8")
    for broken, named in (("[gone](no-such-page.md)", "no-such-page.md"), ("[gone](export.md#no-such-anchor)",
                                                                            "no-such-anchor")):
        page.write_text(text + f"\n{broken}\n", encoding="utf-8")
        result = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
        assert result.returncode != 0 and named in result.stdout + result.stderr
    page.write_text(text, encoding="utf-8")
    (tmp_path / "docs" / "orphan.md").write_text("# Not in the nav\n", encoding="utf-8")
    result = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0 and "orphan.md" in result.stdout + result.stderr
