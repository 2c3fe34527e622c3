"""Round-robin timing of the rows of one (size, batch), on ``edgeunet.timing.time_interleaved``.

Each call is timed alone into its row's store (ns), so round ``i`` of every row ran within the
same few milliseconds and the rows' statistics and ratios come from these per-round times with
the shared ``edgeunet.timing`` functions (``latency_stats``, ``ratio_stats``, ``is_noisy``,
``verdict``). Warm-up is done before (while memory is measured, see ``prepare``).

How many rounds: ``min_rounds`` always; then more until every row has ``min_time`` of timed
calls, within a budget of ``min_time`` per row for the whole group (what timing the rows one
after another would take). Without that budget, the fastest row would keep a slow one (a 3 s
PyTorch call next to a 4 ms INT8 one) running until the fast one had ``min_time`` of its own.
An explicit ``max_time`` replaces the budget, with ``TimingSettings``' meaning.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from ..timing import TimingSettings, is_noisy, latency_stats, ratio_stats, time_interleaved, verdict


class CallFailed(Exception):
    """A timed call raised; ``index`` says whose."""

    def __init__(self, index: int, exc: BaseException):
        super().__init__(str(exc))
        self.index, self.exc = index, exc


def recorded(index: int, run: Callable, x, store: list[int]) -> Callable[[], None]:
    """``run(x)`` timed into ``store`` (ns per call), a failure tagged with ``index``."""
    def call():
        start = time.perf_counter_ns()
        try:
            run(x)
        except Exception as exc:
            raise CallFailed(index, exc) from exc
        store.append(time.perf_counter_ns() - start)
    return call


def run_rounds(fns: Sequence[Callable[[], None]], stores: Sequence[list[int]], timing: TimingSettings) -> None:
    """Runs the round-robin schedule (see the module docstring); the calls fill ``stores``."""
    if timing.max_time is not None:
        time_interleaved(fns, dataclasses.replace(timing, warmup=0))
        return
    start = time.monotonic()
    time_interleaved(fns, TimingSettings(warmup=0, min_time=0.0, min_rounds=timing.min_rounds))
    need = timing.min_time - min(sum(store) for store in stores) / 1e9
    left = timing.min_time * len(fns) - (time.monotonic() - start)
    if need > 0 and left > 0:
        time_interleaved(fns, TimingSettings(warmup=0, min_time=need, min_rounds=1, max_time=left))


def row_stats(stores: Sequence[list[int]], reference: int) -> list[dict]:
    """Per row: ``latency_ms``, ``iterations``, ``ratio``/``ratio_q25``/``ratio_q75``/``rounds`` against the
    reference row, ``noisy``, ``verdict`` and ``round_ms`` (the per-round times, ms)."""
    ref = np.asarray(stores[reference], dtype=np.float64)
    out = []
    for i, store in enumerate(stores):
        stats = latency_stats(store)
        ratio = ratio_stats(ref, np.asarray(store, dtype=np.float64))
        noisy = is_noisy(stats, ratio if i != reference else None)
        out.append({"latency_ms": stats, "iterations": len(store), **ratio, "noisy": bool(noisy),
                    "verdict": "reference" if i == reference else verdict(ratio, noisy),
                    "round_ms": [round(v / 1e6, 6) for v in store]})
    return out
