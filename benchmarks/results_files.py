"""The committed result files in benchmarks/results/ and which is the newest of each kind.

Kinds: ``suite`` (``<machine>-<YYYY-MM-DD>.json`` written by ``benchmarks/run.py``: a bench result
with a ``suite`` key), ``suite-<tag>`` (a run of some variants with ``--tag``) and the files of the
single-figure scripts, which say their kind in a ``kind`` key: ``runtime-memory`` (``runtime_memory.py``),
``demo`` (``demo_time.py``), ``demo3d`` (``demo3d_time.py``), ``ddp`` (``ddp.py``), ``runtimes``
(``runtimes.py``), ``repeatability`` (``repeatability.py``), ``int8-profile`` (``int8_profile.py``),
``up-act`` (``up_act.py``), ``spinning`` (``spinning.py``), ``volumes`` (``volumes.py``), ``volume-memory``
(``volume_memory.py``), ``recipe`` and ``recipe-budget`` (``recipe.py`` at its default budget, and at another
``--steps``), ``recipe-models`` (``recipe.py --set models``) and ``models`` (``models.py``: ``models.json``,
the same on every machine). The newest is the one with the latest
date (the ``date`` key, or the date in a suite file's name); ties go to the last name in sort order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})$")


def kind_of(path: Path, data: dict) -> str | None:
    """``"suite"``, a script's ``kind``, or None for a JSON file that is none of them."""
    if isinstance(data, dict) and isinstance(data.get("suite"), dict) and "rows" in data:
        tag = data["suite"].get("tag")
        return f"suite-{tag}" if tag else "suite"
    return data.get("kind") if isinstance(data, dict) else None


def date_of(path: Path, data: dict) -> str:
    """``YYYY-MM-DD`` of a result: its ``date`` key, else the date ending a suite file's name, else ""."""
    if isinstance(data.get("date"), str):
        return data["date"]
    match = _DATE.search(path.stem)
    return match.group(1) if match else ""


def latest(results: Path, kind: str) -> tuple[Path, dict] | None:
    """(path, data) of the newest result file of ``kind`` in ``results``, or None."""
    found = []
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if kind_of(path, data) == kind:
            found.append((date_of(path, data), path.name, path, data))
    if not found:
        return None
    _, _, path, data = max(found, key=lambda f: (f[0], f[1]))
    return path, data
