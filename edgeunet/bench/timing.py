"""Latency measurement: warm-up, then a timed loop that runs for a minimum time AND a minimum count.

Each iteration is timed alone with ``time.perf_counter_ns``; the callable must return only
when the work is done (runners synchronize CUDA themselves), so a GPU's queue never hides
latency. Statistics are in milliseconds.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def check_timing_settings(warmup: int, min_time: float, min_iters: int) -> None:
    """Raises ValueError naming the fix for impossible timing settings."""
    if warmup < 0:
        raise ValueError(f"--warmup {warmup} is negative: use 0 or more warm-up iterations (default 5)")
    if min_time < 0:
        raise ValueError(f"--min-time {min_time} is negative: give seconds, e.g. 1.0")
    if min_iters < 1:
        raise ValueError(f"--min-iters {min_iters} must be at least 1 (default 10)")


def latency_stats(durations_ns: np.ndarray) -> dict:
    """p50/p90/p99/mean/std of per-iteration durations.

    Args:
        durations_ns: (N,) durations in nanoseconds, N >= 1.

    Returns:
        ``{"p50", "p90", "p99", "mean", "std"}`` in ms; std is the sample standard deviation
        (0 for one iteration).
    """
    ms = np.asarray(durations_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(ms.mean()), "std": std}


def time_callable(fn: Callable[[], object], warmup: int = 5, min_time: float = 1.0, min_iters: int = 10) -> tuple[dict, int]:
    """Times ``fn`` after ``warmup`` untimed calls until both ``min_time`` and ``min_iters`` are reached.

    Args:
        fn: One synchronous inference (returns when its results are ready).
        warmup: Untimed calls first (kernel selection, caches, lazy allocations).
        min_time: Timed loop lasts at least this many seconds (sum of iteration times).
        min_iters: And at least this many iterations.

    Returns:
        (latency stats in ms as in ``latency_stats``, number of timed iterations).
    """
    check_timing_settings(warmup, min_time, min_iters)
    for _ in range(warmup):
        fn()
    durations: list[int] = []
    budget_ns, spent_ns = int(min_time * 1e9), 0
    while len(durations) < min_iters or spent_ns < budget_ns:
        start = time.perf_counter_ns()
        fn()
        elapsed = time.perf_counter_ns() - start
        durations.append(elapsed)
        spent_ns += elapsed
    return latency_stats(np.asarray(durations)), len(durations)
