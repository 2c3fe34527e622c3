"""The export's console output: a step bar on stderr and the INT8 search's progress lines.

Library code logs every line as well; the bar and the lines are shown only when ``enabled``
(``progress=True``, the CLI's default), so Python callers get a quiet export.
"""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

logger = logging.getLogger(__name__)


class Progress:
    """A tqdm bar of ``total`` steps (disabled when not ``enabled``); use it as a context manager."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.enabled = total, enabled
        self._bar = None

    def __enter__(self) -> Progress:
        self._bar = tqdm(total=self.total, desc="export", unit="step", disable=None if self.enabled else True,
                         leave=False)
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar = None

    def step(self, name: str) -> None:
        """Marks the start of step ``name``."""
        logger.info("export: %s", name)
        if self._bar is not None:
            self._bar.set_postfix_str(name)
            self._bar.update(1)

    def note(self, what: str) -> None:
        """What the current step is doing now: logged, and shown beside the bar (not as a line of its own)."""
        logger.info("export: %s", what)
        if self._bar is not None:
            self._bar.set_postfix_str(what)

    def say(self, line: str) -> None:
        """One progress line (logged; also written above the bar when enabled)."""
        logger.info(line)
        if self.enabled:
            tqdm.write(line, file=sys.stderr)
