"""Driving the CLI with bad input: one line naming the fix, the right exit code, nothing half-written.

Each area's table of bad inputs (``tests/*/test_bad_inputs_*.py``) runs its cases in this process through
the ``cli`` fixture (tests/conftest.py, built on ``run_main``) and checks them with ``assert_user_error``.
``run_main`` shows what a user's terminal would: file descriptors 1 and 2 are captured (``capfd``), log
records go to stderr as ``main``'s ``logging.basicConfig`` sends them in a fresh process, and warnings
are printed as Python's default filters would. ``run_cli`` starts ``python -m edgeunet`` in a subprocess:
for the few cases where the process boundary is what is tested, and for end-to-end runs elsewhere.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CliResult:
    """What ``edgeunet ARGV`` left: exit code and captured text (the fields of ``subprocess.CompletedProcess``)."""

    returncode: int
    stdout: str
    stderr: str


def run_main(capture, *argv: str | os.PathLike) -> CliResult:
    """``edgeunet.cli.main(ARGV)`` in this process; ``capture`` is pytest's ``capfd`` (or ``capsys``).

    Root logging handlers are emptied for the run so ``main``'s ``basicConfig`` installs its own stderr
    handler, as in a fresh process, and restored afterwards: no handler or level leaks into the next run.
    """
    from edgeunet.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []
    capture.readouterr()  # only this run's output
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")  # Python's defaults outside __main__: shown once, these hidden
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse's errors and --help / --version; as the interpreter maps it
                code = 0 if exc.code is None else exc.code
                if not isinstance(code, int):
                    print(code, file=sys.stderr)
                    code = 1
        for w in caught:
            sys.stderr.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line))
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers, root.level = handlers, level
    out, err = capture.readouterr()
    return CliResult(code, out, err)


def run_cli(*argv: str, env: dict | None = None, cwd: str | os.PathLike | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m edgeunet ARGV`` in a subprocess; stdout and stderr captured as text."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgeunet", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd)


def assert_user_error(result: CliResult | subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
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
