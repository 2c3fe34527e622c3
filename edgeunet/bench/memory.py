"""Peak resident memory (RSS) of a stretch of work, without psutil.

``resource.getrusage(...).ru_maxrss`` only grows over the life of a process, so a second model
would inherit the first one's peak. On Linux the peak (``VmHWM`` in ``/proc/self/status``) can
be reset by writing ``5`` to ``/proc/self/clear_refs``; ``RssPeak`` does that, which catches
short peaks inside one inference exactly. Where the reset is refused it samples
``/proc/self/statm`` from a thread every few ms instead; without ``/proc`` it reports None.
"""

from __future__ import annotations

import os
import re
import threading

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
SAMPLE_INTERVAL_S = 0.005


def current_rss_mb() -> float | None:
    """Resident set size of this process now (MB), or None without ``/proc``."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            match = re.search(r"^VmHWM:\s+(\d+)\s+kB", f.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class RssPeak:
    """Context manager: ``peak_mb`` is the highest RSS (MB) seen inside the ``with`` block.

    Example:
        >>> with RssPeak() as probe:
        ...     run_model()
        >>> probe.peak_mb  # None where this platform cannot tell
    """

    def __init__(self) -> None:
        self.peak_mb: float | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._exact = False

    def __enter__(self) -> RssPeak:
        self.peak_mb = current_rss_mb()
        self._exact = self.peak_mb is not None and _reset_hwm() and _hwm_mb() is not None
        if self.peak_mb is not None and not self._exact:
            self._thread = threading.Thread(target=self._sample, name="edgeunet-rss", daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._update(current_rss_mb())

    def _update(self, value: float | None) -> None:
        if value is not None and (self.peak_mb is None or value > self.peak_mb):
            self.peak_mb = value

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self._update(_hwm_mb() if self._exact else current_rss_mb())
