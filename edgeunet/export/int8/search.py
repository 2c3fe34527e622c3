"""Latency- and accuracy-aware INT8: which layers to quantize, measured on this CPU.

Full INT8 is not always faster than FP32 with ONNX Runtime on CPUs: depthwise QLinearConv,
float islands wrapped in Q/DQ pairs and layout transposes can cost more than the int8 GEMMs
save. The search therefore measures instead of guessing:

1. Full INT8 with the target's settings, then ONNX Runtime's options (``option_candidates``);
   the fastest that keeps Dice becomes the base.
2. Greedy elimination: each layer group (``layer_groups``) in turn is left in float; the
   change is kept when it is faster by more than ``MARGIN`` and keeps Dice, or, while the
   candidate so far loses more Dice than ``max_dice_drop`` allows, when it loses less (accuracy
   first, as NNCF's accuracy control reverts the layers that cost most).
3. The fastest candidate within ``max_dice_drop`` of FP32 is chosen.

Every candidate is quantized with one shared calibration (the calibration images), scored for
Dice on the search images (not the verification images: the final check in ``quality`` grades
the chosen file on images the search never saw), and timed by ``speed.time_pair`` on ONNX
Runtime sessions as the runtime opens them, at the search size, interleaved with the FP32 model:
the speed-up is the median of per-round FP32 / INT8 time ratios, which a busy machine's drift
affects far less than separate timings. The search starts no candidate once ``search_time`` is spent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..options import ExportOptions
from ..samples import Inputs
from ..speed import CONFIRM_TIMING, SEARCH_TIMING, time_files, time_pair
from ..verify import onnx_logits, scores
from .candidates import Candidate, layer_groups, option_candidates
from .quantize import quantize_int8

logger = logging.getLogger(__name__)

MARGIN = 0.03  # a group goes to float only when that is faster by more than this (timing noise)
CONFIRM_TOP = 3  # the fastest candidates re-timed at the end, longer, before one is chosen
CONFIRM_SHARE = 0.2  # of the time budget kept for that


@dataclass(frozen=True, kw_only=True)
class SearchJob:
    """What one search works on; how it searches comes from ``ExportOptions``.

    Attributes:
        prepared: FP32 model after ``quantize.prepare``.
        fp32_path: The FP32 ONNX file (latency reference).
        calib_images: (C, H, W) float32 calibration inputs.
        search: The search images (and masks) candidates are scored on.
        fp32_scores: ``verify.scores`` of the FP32 model on ``search``; None: candidates are judged by speed alone.
        props: ``metadata_props`` of the INT8 file.
        work: Scratch folder for candidate files and the calibration cache.
        size: Side (px) of the square (cubic for ``spatial_dims`` 3) input timed.
        threads: ONNX Runtime intra-op threads.
        in_channels: C of the model.
        num_classes: K of the model.
    """

    prepared: Path
    fp32_path: Path
    calib_images: list[np.ndarray]
    search: Inputs
    fp32_scores: dict | None
    props: dict[str, str]
    work: Path
    size: int = 256
    threads: int = 1
    in_channels: int = 1
    num_classes: int = 2
    spatial_dims: int = 2


@dataclass
class SearchResult:
    """Outcome of ``search_int8``: the chosen file (in the work folder) and the export.json record."""

    path: Path
    chosen: dict
    record: dict = field(default_factory=dict)


class _Search:
    """State of one search: the job, the options, the candidates tried and the clock."""

    def __init__(self, job: SearchJob, options: ExportOptions, say: Callable[[str], None]):
        self.job, self.options, self.say = job, options, say
        self.tried: list[dict] = []
        self.files: dict[str, Path] = {}
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def time_left(self) -> bool:
        """Whether another candidate fits the budget (judged by the slowest one so far); ``CONFIRM_SHARE`` stays
        for ``_confirm``."""
        slowest = max((t["seconds"] for t in self.tried), default=0.0)
        return self.elapsed() + slowest <= self.options.search_time * (1 - CONFIRM_SHARE)

    def timing(self, path: Path, settings=SEARCH_TIMING) -> dict:
        job = self.job
        return time_pair(job.fp32_path, path, size=job.size, threads=job.threads, in_channels=job.in_channels,
                         settings=settings, spatial_dims=job.spatial_dims)

    def evaluate(self, cand: Candidate) -> dict:
        """Quantizes, scores and times one candidate; returns (and records) its figures."""
        begun = time.monotonic()
        job, o = self.job, self.options
        path = job.work / f"candidate{len(self.tried)}.onnx"
        made = quantize_int8(job.prepared, path, job.calib_images, job.props, calib_method=o.calib_method,
                             target=o.target, reduce_range=o.resolved_reduce_range, nodes_to_exclude=sorted(cand.nodes),
                             overrides=dict(cand.options), calibration_cache=job.work / "calibration.json")
        drop, dice = None, None
        if job.fp32_scores is not None:
            logits = onnx_logits(path, job.search.images, job.threads)
            dice = scores(logits, job.search.masks, job.num_classes)["mean_dice"]
            reference = job.fp32_scores["mean_dice"]
            drop = None if dice is None or reference is None else float(reference - dice)
        row = {**cand.to_dict(), **self.timing(path), "mean_dice": dice, "dice_drop": drop,
               "dice_ok": drop is None or drop <= o.max_dice_drop, "qdq_rewrites": made["qdq_rewrites"],
               "seconds": round(time.monotonic() - begun, 2)}
        self.tried.append(row)
        self.files[cand.name] = path
        self.say(f"int8 search {self.elapsed():5.1f}s: {cand.name}: x{row['speedup']:.2f} vs fp32"
                 + (f", Dice drop {drop:+.4f}" if drop is not None else "")
                 + ("" if row["dice_ok"] else " (over the limit)"))
        return row

    def better(self, row: dict, best: dict) -> bool:
        return row["dice_ok"] and row["speedup"] > best["speedup"] * (1 + MARGIN)

    @staticmethod
    def recovers(row: dict, current: dict) -> bool:
        """Whether ``row`` (one more group in float) loses less Dice than ``current``, which is over the limit."""
        return (not current["dice_ok"] and row["dice_drop"] is not None and current["dice_drop"] is not None
                and row["dice_drop"] < current["dice_drop"])


def search_int8(job: SearchJob, options: ExportOptions, say: Callable[[str], None] | None = None) -> SearchResult:
    """Chooses what to quantize by measuring candidates on ONNX Runtime (this CPU).

    Args:
        job: The files, images and model facts the search works on.
        options: ``calib_method``, ``target``, ``reduce_range``, ``max_dice_drop`` and ``search_time`` (no
            candidate starts after this many seconds; full INT8 always runs; the last ``CONFIRM_SHARE`` of it
            re-times the best candidates).
        say: Receives one progress line per candidate; None logs them.

    Returns:
        The chosen candidate's file and figures, and the record for export.json: every candidate
        with ``speedup`` (and its interval), ``fp32_ms``, ``int8_ms``, ``mean_dice``, ``dice_drop``.
    """
    import onnx

    search = _Search(job, options, say or logger.info)
    base = Candidate("full")
    best = search.evaluate(base)
    for cand in option_candidates(base, options.resolved_reduce_range) if options.target_row.local else []:
        if not search.time_left():
            break
        row = search.evaluate(cand)
        if search.better(row, best) or not best["dice_ok"] and row["dice_ok"]:
            base, best = cand, row
    groups = layer_groups(onnx.load(str(job.prepared)))
    current, current_row = base, best
    decisions: dict[str, dict] = {}
    for group, nodes in groups.items():
        if not search.time_left():
            search.say(f"int8 search: time budget of {options.search_time:g}s spent; {len(search.tried)} candidates "
                       "tried")
            break
        cand = current.with_group(group, nodes)
        if cand.nodes == current.nodes:
            continue
        row = search.evaluate(cand)
        recovers = search.recovers(row, current_row)
        kept_float = recovers or search.better(row, current_row)
        decisions[group] = _decision(row, current_row, kept_float, options.max_dice_drop, recovers)
        if kept_float:
            current, current_row = cand, row
    for group in groups:  # every group gets a line, also those the time budget left untried
        decisions.setdefault(group, {"int8_pays": None, "kept_float": False, "reason": "not tried: the search's "
                                     "time budget was spent first (stays INT8; raise --search-time to measure it)"})
    _confirm(search)
    chosen = _choose(search.tried)
    record = {"size": job.size, "threads": job.threads, "time_budget_s": options.search_time,
              "seconds": round(search.elapsed(), 1), "images": "search", "count": len(job.search.names),
              "groups": {name: sorted(nodes) for name, nodes in groups.items()}, "candidates": search.tried,
              "chosen": chosen["name"], "speedup": chosen["speedup"], "int8_faster_than_fp32": chosen["speedup"] > 1.0,
              "group_decisions": decisions, "float_groups": list(chosen.get("float_groups", []))}
    return SearchResult(search.files[chosen["name"]], chosen, record)


def _decision(row: dict, before: dict, kept_float: bool, max_drop: float, recovers: bool = False) -> dict:
    """Whether INT8 pays for one layer group on this CPU: the speed-up with the group in float vs quantized."""
    if recovers:
        why = (f"kept float for accuracy: INT8 was over the Dice limit ({max_drop:g}) with a drop of "
               f"{before['dice_drop']:.4f}, and {row['dice_drop']:.4f} with this group in float")
    elif kept_float:
        why = (f"float is faster here (x{row['speedup']:.2f} vs x{before['speedup']:.2f} with the group in INT8): "
               "INT8 does not pay for this group on this CPU")
    elif not row["dice_ok"]:
        why = f"float would exceed the Dice limit ({max_drop:g}) with the other groups as they are"
    else:
        why = (f"INT8 pays (x{before['speedup']:.2f}) or float is within {MARGIN:.0%} "
               f"(x{row['speedup']:.2f}): stays INT8")
    return {"int8_pays": None if recovers else not kept_float, "kept_float": kept_float, "for_accuracy": recovers,
            "speedup_group_float": row["speedup"], "speedup_group_int8": before["speedup"],
            "dice_drop_group_float": row["dice_drop"], "dice_drop_group_int8": before["dice_drop"], "reason": why}


def _confirm(search: _Search) -> None:
    """Re-times the ``CONFIRM_TOP`` fastest Dice-keeping candidates and full INT8 longer, all in the same interleaved
    rounds with FP32: one quick timing on a busy machine can be lucky, and speed-ups taken in separate runs carry
    each run's drift. Their ``speedup`` becomes the joint figure (the quick one stays as ``first_speedup``)."""
    ranked = sorted((t for t in search.tried if t["dice_ok"]), key=lambda t: t["speedup"], reverse=True)[:CONFIRM_TOP]
    if search.tried[0]["dice_ok"] and search.tried[0] not in ranked:
        ranked.append(search.tried[0])  # full INT8 with default settings: the reference a change must beat
    if not ranked:
        return
    job = search.job
    timings = time_files(job.fp32_path, [search.files[row["name"]] for row in ranked], size=job.size,
                         threads=job.threads, in_channels=job.in_channels, settings=CONFIRM_TIMING,
                         spatial_dims=job.spatial_dims)
    for row, timing in zip(ranked, timings, strict=True):
        row.update(first_speedup=row["speedup"], **timing, confirmed=True)
        search.say(f"int8 search {search.elapsed():5.1f}s: confirm {row['name']}: x{row['speedup']:.2f} vs fp32")


def _choose(tried: list[dict]) -> dict:
    """The fastest confirmed candidate within the Dice limit (full INT8 unless beaten by ``MARGIN``); the most
    accurate one when none keeps Dice."""
    ok = [t for t in tried if t["dice_ok"] and t.get("confirmed")]
    if ok:
        best, full = max(ok, key=lambda t: t["speedup"]), tried[0]
        # Within timing noise of full INT8, the plain default wins: fewer float islands, no unusual settings.
        return full if full in ok and full["speedup"] * (1 + MARGIN) >= best["speedup"] else best
    return min(tried, key=lambda t: t["dice_drop"] if t["dice_drop"] is not None else 0.0)
