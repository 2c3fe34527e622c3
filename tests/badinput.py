"""Driving the CLI with bad input: one line naming the fix, the right exit code, nothing half-written.

Each area's table of bad inputs (``tests/test_bad_inputs_*.py``) runs its cases through
``run_cli`` (a real subprocess, so a traceback or a stray print is seen as a user sees it) and
checks them with ``assert_user_error``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*argv: str, env: dict | None = None, cwd: str | os.PathLike | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m edgeunet ARGV`` in a subprocess; stdout and stderr captured as text."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgeunet", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd)


def assert_user_error(result: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """Asserts exit ``code``, no traceback, exactly one line on stderr containing every needle; returns it."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, f"exit {result.returncode}, stderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def leftovers(folder: str | os.PathLike) -> list[str]:
    """Temporary files or folders a writer left behind under ``folder`` (names with ``.tmp``)."""
    folder = Path(folder)
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name)
