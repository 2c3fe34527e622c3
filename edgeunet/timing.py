"""The one timing harness: interleaved rounds, per-round ratios, statistics that hold on a busy machine.

On a shared CPU the speed of everything drifts by tens of percent within seconds, so timing one
model after another lets the drift pick the winner. ``time_interleaved`` runs the callables in
rounds, each call timed alone with ``time.perf_counter_ns``: two alternate (A B, B A, ...), more
run in a new (seeded, repeatable) shuffled order each round, so no row always follows the same
neighbour: a rotation (A B C, B C A, ...) would keep B behind A in two rounds of three, and a
neighbour whose idle threads spin for a while after each call (OpenVINO's and XNNPACK's thread
pools do) or that evicts the caches would slow the same row every time. A row's speed relative to the
reference row is the median over rounds of ``t_reference / t_row`` (> 1: faster than the
reference) with its quartiles as the interval: drift that slows a whole round cancels out.

The callables must return only when their work is done (CUDA runners synchronize themselves).
Torch-free: the runtime, the INT8 search and the bench all use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .errors import UserError
from .fields import option

NOISY_SPREAD = 1.5  # p90 / p50 above this: the row's own timings scattered
NOISY_RATIO_IQR = 0.15  # ratio interval wider than this fraction of the ratio: no verdict


@dataclass(frozen=True)
class TimingSettings:
    """How long to time.

    Attributes:
        warmup: Untimed calls of each callable first (kernel selection, caches, allocations).
        min_time: Seconds of timed calls per row, at least ...
        min_rounds: ... and at least this many rounds.
        max_time: Seconds after which no round starts, whatever ``min_rounds`` says (None: no cap).
    """

    warmup: int = option(5, "nonnegative", "untimed calls per model and shape")
    min_time: float = option(1.0, "duration", "time each row for at least S seconds")
    min_rounds: int = option(10, "count", "and at least N rounds", flag="--min-iters")
    max_time: float | None = option(None, "duration", "stop starting rounds of one size and batch after S seconds "
                                    "(default: about --min-time per row)")

    def __post_init__(self):
        if self.warmup < 0:
            raise UserError(f"--warmup {self.warmup} is negative: use 0 or more warm-up iterations (default 5)")
        if not self.min_time >= 0:
            raise UserError(f"--min-time {self.min_time} must be 0 or more seconds, e.g. 1.0")
        if self.min_rounds < 1:
            raise UserError(f"--min-iters {self.min_rounds} must be at least 1 (default 10)")
        if self.max_time is not None and not self.max_time > 0:
            raise UserError(f"max_time {self.max_time} must be a positive number of seconds")

    def to_dict(self) -> dict:
        return asdict(self)


def latency_stats(durations_ns: Sequence[int] | np.ndarray) -> dict:
    """p50/p90/p99/min/mean/std (ms) of per-call durations in ns; std is the sample deviation (0 for one)."""
    ms = np.asarray(durations_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "min": float(ms.min()), "mean": float(ms.mean()),
            "std": std}


def ratio_stats(reference_ns: np.ndarray, row_ns: np.ndarray) -> dict:
    """Median and quartiles of per-round ``reference / row`` time ratios (> 1: the row is faster)."""
    ratios = np.asarray(reference_ns, dtype=np.float64) / np.asarray(row_ns, dtype=np.float64)
    q25, median, q75 = np.percentile(ratios, [25, 50, 75])
    return {"ratio": float(median), "ratio_q25": float(q25), "ratio_q75": float(q75), "rounds": int(ratios.size)}


def is_noisy(stats: dict, ratio: dict | None = None) -> bool:
    """Whether a row's timings are too scattered to trust (its spread, or its ratio's interval)."""
    if stats["p50"] > 0 and stats["p90"] / stats["p50"] > NOISY_SPREAD:
        return True
    if ratio and ratio["ratio"] > 0:
        return (ratio["ratio_q75"] - ratio["ratio_q25"]) / ratio["ratio"] > NOISY_RATIO_IQR
    return False


def verdict(ratio: dict, noisy: bool) -> str:
    """``faster``, ``slower`` or ``same`` when the interval is clear of 1, else ``no verdict``."""
    if noisy:
        return "no verdict"
    if ratio["ratio_q25"] > 1.0:
        return "faster"
    if ratio["ratio_q75"] < 1.0:
        return "slower"
    return "same"


def time_interleaved(fns: Sequence[Callable[[], object]], settings: TimingSettings = TimingSettings(),
                     reference: int = 0) -> list[dict]:
    """Times callables round-robin until each has ``min_time`` seconds and ``min_rounds`` calls.

    Args:
        fns: One synchronous call each (one inference on a prepared input).
        settings: Warm-up, minimum time and rounds.
        reference: Index of the row the ratios are taken against.

    Returns:
        One dict per callable: ``latency_ms`` (``latency_stats``), ``iterations``, ``ratio``,
        ``ratio_q25``, ``ratio_q75`` (per-round reference / row time), ``rounds``, ``noisy``
        and ``verdict`` (against the reference; the reference row itself has ratio 1).
    """
    if not fns:
        return []
    if not 0 <= reference < len(fns):
        raise ValueError(f"reference {reference} is not one of the {len(fns)} rows")
    for fn in fns:
        for _ in range(settings.warmup):
            fn()
    n = len(fns)
    times: list[list[int]] = [[] for _ in fns]
    spent = [0] * n
    start = time.monotonic()
    budget_ns = int(settings.min_time * 1e9)
    rounds = 0
    shuffle = np.random.default_rng(0)
    while rounds < settings.min_rounds or min(spent) < budget_ns:
        if settings.max_time is not None and rounds >= 1 and time.monotonic() - start > settings.max_time:
            break
        order = shuffle.permutation(n) if n > 2 else [(rounds + k) % n for k in range(n)]
        for i in order:
            begun = time.perf_counter_ns()
            fns[i]()
            elapsed = time.perf_counter_ns() - begun
            times[i].append(elapsed)
            spent[i] += elapsed
        rounds += 1
    ref = np.asarray(times[reference])
    rows = []
    for i in range(n):
        stats = latency_stats(times[i])
        ratio = ratio_stats(ref, np.asarray(times[i]))
        noisy = is_noisy(stats, ratio if i != reference else None)
        rows.append({"latency_ms": stats, "iterations": len(times[i]), **ratio, "noisy": noisy,
                     "verdict": "reference" if i == reference else verdict(ratio, noisy)})
    return rows


def time_callable(fn: Callable[[], object], settings: TimingSettings = TimingSettings()) -> dict:
    """Times one callable (a one-row ``time_interleaved``): ``latency_ms``, ``iterations``, ``noisy``."""
    row = time_interleaved([fn], settings)[0]
    return {"latency_ms": row["latency_ms"], "iterations": row["iterations"], "noisy": row["noisy"]}
