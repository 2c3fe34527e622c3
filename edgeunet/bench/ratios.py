"""Speed ratios between bench rows, taken round by round so that machine drift cancels out.

Rows of one (size, batch) are timed round-robin (``edgeunet.timing.time_interleaved``); each row
keeps its per-round times in ``round_ms`` (round ``i`` of every row of the group ran within the
same few milliseconds). The ratio of two rows is then the median over rounds of
``t_reference / t_row`` (> 1: the row is faster) with its quartiles as the interval, by
``timing.ratio_stats``. Rows without per-round times (an older result, or rows of different
groups) fall back to the ratio of their p50s, with no interval.
"""

from __future__ import annotations

import numpy as np

from ..timing import is_noisy, ratio_stats, verdict


def pair_ratio(reference: dict, row: dict) -> dict | None:
    """Speed of ``row`` relative to ``reference``.

    Args:
        reference, row: Bench rows (``latency_ms`` and, when interleaved, ``round_ms``).

    Returns:
        ``{"ratio", "ratio_q25", "ratio_q75", "rounds", "noisy", "verdict"}``: ratio > 1 means
        ``row`` is faster; ``rounds`` is 0 for a p50 fallback (then q25 = q75 = ratio). None
        when either row has no latency.
    """
    ref_lat, row_lat = reference.get("latency_ms") or {}, row.get("latency_ms") or {}
    if not ref_lat.get("p50") or not row_lat.get("p50"):
        return None
    ref_rounds, row_rounds = reference.get("round_ms"), row.get("round_ms")
    if ref_rounds and row_rounds and len(ref_rounds) == len(row_rounds) and _same_group(reference, row):
        stats = ratio_stats(np.asarray(ref_rounds), np.asarray(row_rounds))
        noisy = bool(reference.get("noisy")) or is_noisy(row_lat, stats)
    else:
        value = ref_lat["p50"] / row_lat["p50"]
        stats = {"ratio": value, "ratio_q25": value, "ratio_q75": value, "rounds": 0}
        noisy = bool(reference.get("noisy") or row.get("noisy"))
    return {**stats, "noisy": noisy, "verdict": verdict(stats, noisy) if stats["rounds"] else "no verdict"}


def _same_group(a: dict, b: dict) -> bool:
    return a.get("size") == b.get("size") and a.get("batch") == b.get("batch")


def ratio_text(ratio: dict | None, digits: int = 2, unit: str = "") -> str:
    """``"1.62 [1.55-1.70]"``; ``"1.62?"`` when noisy (no verdict); ``"1.62"`` without an interval; ``"-"`` for None.

    ``unit`` follows the number: ``unit="x"`` gives ``"1.62x [1.55-1.70]"``.
    """
    if ratio is None or ratio.get("ratio") is None:
        return "-"
    text = f"{ratio['ratio']:.{digits}f}{unit}"
    if ratio.get("noisy"):
        return text + "?"
    if ratio.get("rounds"):
        return f"{text} [{ratio['ratio_q25']:.{digits}f}-{ratio['ratio_q75']:.{digits}f}]"
    return text


def row_ratio(row: dict) -> dict | None:
    """The row's own ratio to its reference (the fields ``run_bench`` stores), or None."""
    if row.get("ratio") is None:
        return None
    return {k: row.get(k) for k in ("ratio", "ratio_q25", "ratio_q75", "rounds", "noisy", "verdict")}
