"""Latency- and accuracy-aware INT8: which layers to quantize, measured on this CPU.

Full INT8 is not always faster than FP32 with ONNX Runtime on CPUs: depthwise QLinearConv,
float islands wrapped in Q/DQ pairs and layout transposes can cost more than the int8 GEMMs
save. The search therefore measures instead of guessing:

1. Full INT8 with the target's settings, then ONNX Runtime's options (``option_candidates``);
   the fastest that keeps Dice becomes the base.
2. Greedy elimination: each layer group (``layer_groups``) in turn is left in float; the
   change is kept when it is faster by more than ``MARGIN`` and keeps Dice.
3. The fastest candidate within ``max_dice_drop`` of FP32 is chosen.

Every candidate is quantized with one shared calibration, scored for Dice on the verification
images, and timed on ONNX Runtime (CPU, all usable cores, ``ORT_ENABLE_ALL`` like the runtime)
at the search size, interleaved with the FP32 model: the speedup is the median of per-pair
FP32 / INT8 time ratios, which a busy machine's drift affects far less than separate timings.
The search stops starting candidates once ``time_budget_s`` is spent.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import verify
from .int8 import quantize_int8
from .int8_candidates import Candidate, layer_groups, option_candidates

logger = logging.getLogger(__name__)

MARGIN = 0.03  # a group goes to float only when that is faster by more than this (timing noise)
WARMUP = 3
MIN_PAIRS = 7
MIN_TIME_S = 0.5  # per candidate, FP32 and INT8 runs together
CONFIRM_TOP = 3  # the fastest candidates re-timed at the end, longer, before one is chosen
CONFIRM_SHARE = 0.2  # of the time budget kept for that


def _session(path: str | os.PathLike, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure_speedup(fp32_path: str | os.PathLike, int8_path: str | os.PathLike, size: int, threads: int, channels: int = 1,
                    min_pairs: int = MIN_PAIRS, min_time_s: float = MIN_TIME_S) -> dict:
    """Times FP32 and INT8 alternately on one (1, C, size, size) input.

    Returns:
        ``fp32_ms`` and ``int8_ms`` (medians, ms) and ``speedup``: the median of per-pair
        FP32 / INT8 time ratios (> 1: INT8 is faster).
    """
    sessions = [_session(fp32_path, threads), _session(int8_path, threads)]
    name = sessions[0].get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((1, channels, size, size)).astype(np.float32)
    for session in sessions:
        for _ in range(WARMUP):
            session.run(None, {name: x})
    times: list[list[int]] = [[], []]
    spent = 0
    while len(times[0]) < min_pairs or spent < min_time_s * 1e9:
        for i, session in enumerate(sessions):
            start = time.perf_counter_ns()
            session.run(None, {name: x})
            times[i].append(time.perf_counter_ns() - start)
            spent += times[i][-1]
    fp32, int8 = (np.asarray(t, dtype=np.float64) / 1e6 for t in times)
    return {"fp32_ms": float(np.median(fp32)), "int8_ms": float(np.median(int8)), "speedup": float(np.median(fp32 / int8))}


@dataclass
class SearchResult:
    """Outcome of ``search_int8``: the chosen file (in the work folder) and the export.json record."""

    path: Path
    chosen: dict
    record: dict = field(default_factory=dict)


class _Search:
    """State of one search: the shared inputs, the candidates tried and the clock."""

    def __init__(self, prepared, fp32_path, calib_images, val, fp32_scores, props, settings, work, say):
        self.prepared, self.fp32_path, self.calib_images, self.val = prepared, fp32_path, calib_images, val
        self.fp32_scores, self.props, self.settings, self.work, self.say = fp32_scores, props, settings, work, say
        self.tried: list[dict] = []
        self.files: dict[str, Path] = {}
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def time_left(self) -> bool:
        """Whether another candidate fits the budget (judged by the slowest one so far); ``CONFIRM_SHARE`` stays for ``_confirm``."""
        slowest = max((t["seconds"] for t in self.tried), default=0.0)
        return self.elapsed() + slowest <= self.settings["time_budget_s"] * (1 - CONFIRM_SHARE)

    def evaluate(self, cand: Candidate) -> dict:
        """Quantizes, scores and times one candidate; returns (and records) its figures."""
        begun = time.monotonic()
        s = self.settings
        path = self.work / f"candidate{len(self.tried)}.onnx"
        quantize_int8(self.prepared, path, self.calib_images, self.props, s["calib_method"], s["target"], s["reduce_range"],
                      nodes_to_exclude=sorted(cand.nodes), overrides=dict(cand.options), calibration_cache=self.work / "calibration.json")
        drop, dice = None, None
        if self.fp32_scores is not None:
            dice = verify.scores(verify.onnx_logits(path, self.val.images, s["threads"]), self.val.masks, s["num_classes"])["mean_dice"]
            drop = None if dice is None or self.fp32_scores["mean_dice"] is None else float(self.fp32_scores["mean_dice"] - dice)
        timing = measure_speedup(self.fp32_path, path, s["size"], s["threads"], s["in_channels"])
        row = {**cand.to_dict(), **timing, "mean_dice": dice, "dice_drop": drop,
               "dice_ok": drop is None or drop <= s["max_dice_drop"], "seconds": round(time.monotonic() - begun, 2)}
        self.tried.append(row)
        self.files[cand.name] = path
        self.say(f"int8 search {self.elapsed():5.1f}s: {cand.name}: x{row['speedup']:.2f} vs fp32"
                 + (f", Dice drop {drop:+.4f}" if drop is not None else "") + ("" if row["dice_ok"] else " (over the limit)"))
        return row

    def better(self, row: dict, best: dict) -> bool:
        return row["dice_ok"] and row["speedup"] > best["speedup"] * (1 + MARGIN)


def search_int8(prepared: Path, fp32_path: Path, calib_images: list[np.ndarray], val, fp32_scores: dict | None, props: dict[str, str],
                *, work: Path, target: str = "cpu", calib_method: str = "minmax", reduce_range: bool | None = None,
                size: int = 256, threads: int = 1, in_channels: int = 1, num_classes: int = 2, max_dice_drop: float = 0.01,
                time_budget_s: float = 75.0, say: Callable[[str], None] | None = None) -> SearchResult:
    """Chooses what to quantize by measuring candidates on ONNX Runtime (this CPU).

    Args:
        prepared: FP32 model after ``int8.prepare``.
        fp32_path: The FP32 ONNX file (latency reference).
        calib_images: (C, H, W) float32 calibration inputs.
        val: Verification ``Inputs`` (images and masks) for Dice.
        fp32_scores: ``verify.scores`` of the FP32 model on ``val``; None when there are no masks.
        props: ``metadata_props`` of the INT8 file.
        work: Scratch folder for candidate files and the calibration cache.
        target, calib_method, reduce_range: As for ``quantize_int8``.
        size: Side (px) of the square input timed.
        threads: ONNX Runtime intra-op threads.
        in_channels, num_classes: Of the model.
        max_dice_drop: Largest allowed FP32 - INT8 mean Dice.
        time_budget_s: No candidate starts after this many seconds (full INT8 always runs); the last
            ``CONFIRM_SHARE`` of it re-times the best candidates.
        say: Receives one progress line per candidate; None logs them.

    Returns:
        The chosen candidate's file and figures, and the record for export.json: every candidate
        with ``speedup``, ``fp32_ms``, ``int8_ms``, ``mean_dice``, ``dice_drop``.
    """
    import onnx

    settings = {"target": target, "calib_method": calib_method, "reduce_range": reduce_range, "size": size, "threads": threads,
                "in_channels": in_channels, "num_classes": num_classes, "max_dice_drop": max_dice_drop, "time_budget_s": time_budget_s}
    search = _Search(prepared, fp32_path, calib_images, val, fp32_scores, props, settings, work, say or logger.info)
    base = Candidate("full")
    best = search.evaluate(base)
    for cand in option_candidates(base, _default_reduce_range(target, reduce_range)) if target == "cpu" else []:
        if not search.time_left():
            break
        row = search.evaluate(cand)
        if search.better(row, best) or not best["dice_ok"] and row["dice_ok"]:
            base, best = cand, row
    groups = layer_groups(onnx.load(str(prepared)))
    current, current_row = base, best
    for group, nodes in groups.items():
        if not search.time_left():
            search.say(f"int8 search: time budget of {time_budget_s:g}s spent; {len(search.tried)} candidates tried")
            break
        cand = current.with_group(group, nodes)
        if cand.nodes == current.nodes:
            continue
        row = search.evaluate(cand)
        if search.better(row, current_row):
            current, current_row = cand, row
    _confirm(search, fp32_path, size, threads, in_channels)
    chosen = _choose(search.tried)
    record = {"size": size, "threads": threads, "time_budget_s": time_budget_s, "seconds": round(search.elapsed(), 1),
              "groups": {name: sorted(nodes) for name, nodes in groups.items()}, "candidates": search.tried,
              "chosen": chosen["name"], "speedup": chosen["speedup"], "int8_faster_than_fp32": chosen["speedup"] > 1.0}
    return SearchResult(search.files[chosen["name"]], chosen, record)


def _default_reduce_range(target: str, reduce_range: bool | None) -> bool:
    from .int8 import quant_settings

    return bool(quant_settings(target, reduce_range)["reduce_range"])


def _confirm(search: _Search, fp32_path: Path, size: int, threads: int, in_channels: int) -> None:
    """Re-times the ``CONFIRM_TOP`` fastest Dice-keeping candidates three times longer: one quick timing on a busy
    machine can be lucky. Their ``speedup`` becomes the longer figure (the quick one stays as ``first_speedup``)."""
    ranked = sorted((t for t in search.tried if t["dice_ok"]), key=lambda t: t["speedup"], reverse=True)[:CONFIRM_TOP]
    if search.tried[0]["dice_ok"] and search.tried[0] not in ranked:
        ranked.append(search.tried[0])  # full INT8 with default settings: the reference a change must beat
    for row in ranked:
        timing = measure_speedup(fp32_path, search.files[row["name"]], size, threads, in_channels, 3 * MIN_PAIRS, 3 * MIN_TIME_S)
        row.update(first_speedup=row["speedup"], **timing, confirmed=True)
        search.say(f"int8 search {search.elapsed():5.1f}s: confirm {row['name']}: x{row['speedup']:.2f} vs fp32")


def _choose(tried: list[dict]) -> dict:
    """The fastest confirmed candidate within the Dice limit (full INT8 unless beaten by ``MARGIN``); the most accurate one when none keeps Dice."""
    ok = [t for t in tried if t["dice_ok"] and t.get("confirmed")]
    if ok:
        best, full = max(ok, key=lambda t: t["speedup"]), tried[0]
        # Within timing noise of full INT8, the plain default wins: fewer float islands, no unusual settings.
        return full if full in ok and full["speedup"] * (1 + MARGIN) >= best["speedup"] else best
    return min(tried, key=lambda t: t["dice_drop"] if t["dice_drop"] is not None else 0.0)
