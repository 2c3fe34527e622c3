"""Figures from committed result files: writes the marked blocks of README.md, benchmarks/README.md and docs/*.md.

    python benchmarks/tables.py            # rewrites every block from benchmarks/results/*.json
    python benchmarks/tables.py --check  # exit 1 when a committed block differs (test_readme_tables.py)

A block is the text between ``<!-- edgeunet:table NAME -->`` and ``<!-- /edgeunet:table -->``;
``BLOCKS`` says which function writes it, and a block may stand in several files. Each function reads
the newest result file of its kind (``results.latest``): the suite (``<machine>-<date>.json`` of
``benchmarks/run.py``), runtime memory (``runtime_memory.py``), the demos (``demo_time.py``,
``demo3d_time.py``), distributed training (``ddp.py``), the 3-D comparison (``volumes.py``), the recipes and
models on real data (``recipe.py``, ``recipe.py --set models``), a suite run of some variants (``run.py --tag``)
and the models table (``models.py``). A figure without a result file is not
printed: the block says which script measures it. The files written are ``FILES`` and every page of the
documentation site (``docs/*.md``).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import demo3d_time, models, prose, recipe, spinning, up_act, volumes  # noqa: E402
from benchmarks.results_files import RESULTS, latest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- edgeunet:table {name} -->"
END = "<!-- /edgeunet:table -->"
_BLOCK = re.compile(r"<!-- edgeunet:table ([\w.-]+) -->\n(.*?)<!-- /edgeunet:table -->", re.DOTALL)

# Block name -> (kind of result file it needs, function of (path, data) -> Markdown, text when there is no such file).
BLOCKS = {
    "suite": ("suite", prose.suite_table, prose.NO_SUITE),
    "suite-findings": ("suite", prose.suite_findings, ""),
    "suite-benchmarks": ("suite", prose.suite_benchmarks, prose.NO_SUITE),
    "int8-speedup": ("suite", prose.int8_speedup, ""),
    "runtime-memory": ("runtime-memory", prose.runtime_memory, prose.NO_RUNTIME_MEMORY),
    "demo": ("demo", prose.demo, prose.NO_DEMO),
    "ddp": ("ddp", prose.ddp, prose.NO_DDP),
    "runtimes": ("runtimes", prose.runtimes, prose.NO_RUNTIMES),
    "volume-memory": ("volume-memory", prose.volume_memory, prose.NO_VOLUME_MEMORY),
    "repeatability": ("repeatability", prose.repeatability, prose.NO_REPEATABILITY),
    "demo3d": ("demo3d", demo3d_time.block, demo3d_time.NO_DEMO3D),
    "volumes": ("volumes", volumes.block, volumes.NO_VOLUMES),
    "up-act": ("up-act", up_act.block, up_act.NO_UP_ACT),
    "spinning": ("spinning", spinning.block, spinning.NO_SPINNING),
    "recipe": ("recipe", recipe.block, recipe.NO_RECIPE),
    "recipe-budget": ("recipe-budget", recipe.block, recipe.NO_RECIPE_BUDGET),
    "recipe-models": ("recipe-models", recipe.block, recipe.NO_RECIPE_MODELS),
    "suite-transformer": ("suite-transformer", prose.suite_tagged, prose.NO_SUITE_TRANSFORMER),
    "unet-vit-choice": ("suite-transformer", prose.unet_vit_choice, prose.NO_UNET_VIT_CHOICE),
    "models": ("models", models.block, models.NO_MODELS),
    "models-3d": ("models", models.block_3d, models.NO_MODELS_3D),
}
FILES = ("README.md", "benchmarks/README.md")
PAGES = "docs/*.md"  # the documentation site (mkdocs.yml): every page is rendered too
WIDTH = 100  # README prose is wrapped at about 100 characters; tables, headings and images are not


def wrap(text: str) -> str:
    """Wraps the prose paragraphs of ``text`` at ``WIDTH``, leaving tables, headings and images as they are."""
    paragraphs = text.split("\n\n")
    return "\n\n".join(p if p.lstrip().startswith(("|", "#", "!", "- ", "```")) else
                        textwrap.fill(p, WIDTH, break_long_words=False, break_on_hyphens=False) for p in paragraphs)


def block_text(name: str, results: Path = RESULTS) -> str:
    """The Markdown of one block (ending with a newline, or empty)."""
    if name not in BLOCKS:
        raise ValueError(f"unknown table block {name!r}: use one of {', '.join(BLOCKS)} (see benchmarks/tables.py)")
    kind, write, missing = BLOCKS[name]
    found = latest(results, kind)
    text = wrap(write(*found) if found else missing)
    return text.rstrip("\n") + "\n" if text.strip() else ""


def render(text: str, results: Path = RESULTS) -> str:
    """``text`` with every marked block rewritten from the result files.

    Raises:
        ValueError: An unknown block name, or a start marker without its end.
    """
    if text.count("<!-- edgeunet:table ") != len(_BLOCK.findall(text)):
        raise ValueError(f"a '<!-- edgeunet:table NAME -->' marker has no '{END}' after it")
    return _BLOCK.sub(lambda m: START.format(name=m.group(1)) + "\n" + block_text(m.group(1), results) + END, text)


def files(root: Path = ROOT) -> list[Path]:
    """The files whose blocks this script writes: ``FILES`` and the pages of docs/ under ``root``."""
    return [root / name for name in FILES] + sorted(root.glob(PAGES))


def rendered(root: Path = ROOT, results: Path = RESULTS) -> dict[Path, tuple[str, str]]:
    """{file: (committed text, text as the result files give it)} for every file of ``files(root)``."""
    out = {}
    for path in files(root):
        text = path.read_text(encoding="utf-8")
        out[path] = (text, render(text, results))
    return out


def main(argv: list[str] | None = None, root: Path = ROOT, results: Path = RESULTS) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/tables.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check: exit 1 when a block differs from the results")
    args = p.parse_args(argv)
    from edgeunet.atomic import write_text

    stale = []
    for path, (before, after) in rendered(root, results).items():
        if before != after:
            stale.append(path)
            if not args.check:
                write_text(path, after)
    verb = "differ from the result files: run python benchmarks/tables.py" if args.check else "rewritten"
    for path in stale:
        print(f"{path.relative_to(root)}: blocks {verb}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
