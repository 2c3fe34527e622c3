"""``--formats auto``: make the runtimes' files that can run here, time them side by side, ship the fastest.

The candidates are the ``auto`` entries of the format table (``edgeunet.formats``), made from the
libraries installed, fast exports first; the slow exports (LiteRT, ExecuTorch: minutes) are not
started once ``--search-time`` is spent. Each is verified like any format file
(``step.verify_made``): a candidate whose Dice drops more than ``--max-dice-drop`` below PyTorch's
on the verification images, or whose argmax disagrees, is rejected and its file removed. The rest
run interleaved (``timing.time_interleaved``, ONNX Runtime threads spinning within a call only, as
the runtime ships, so no session steals the others' cores) through the runtime backends on one
(1, C, side, side) input at ``--search-img-size`` (the side fixed-size files are made at here); the
one with the best median per-round ratio against ONNX Runtime FP32 ships (export.json ``shipped``),
and the whole comparison is kept under ``auto``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from ...env import has_bf16
from ...formats import BY_NAME, FORMATS, missing
from ...runtime.backends import open_backend
from ...runtime.session import DEFAULT_SPINNING
from ...timing import TimingSettings, time_interleaved
from ..quiet import quiet
from ..report import ArtifactFacts, file_facts
from ..speed import usable_threads
from ..targets import where_note
from .step import FormatContext, make_file, verify_made

logger = logging.getLogger(__name__)

AUTO_TIMING = TimingSettings(warmup=3, min_time=1.0, min_rounds=15)


@dataclass(frozen=True)
class Candidate:
    """One runtime and precision: ``name``, the ``fmt`` of its file, ``precision`` and OpenVINO's ``hint``."""

    name: str
    fmt: str
    precision: str
    hint: str | None = None


def candidates() -> tuple[Candidate, ...]:
    """The table's ``auto`` entries in the order they are made: fast exports, then the slow ones' INT8, then the
    rest (``<backend> <precision>``, or the hint where it names another arithmetic: ``openvino bf16``)."""
    def made(fmt) -> list[Candidate]:
        return [Candidate(f"{fmt.backend} {hint if hint == 'bf16' else precision}", fmt.name, precision, hint)
                for precision, hint in fmt.auto]

    fast = [c for f in FORMATS if not f.slow for c in made(f)]
    slow = [c for f in FORMATS if f.slow for c in made(f)]
    return tuple(fast + [c for c in slow if c.precision == "int8"] + [c for c in slow if c.precision != "int8"])


CANDIDATES = candidates()


def skip_reason(candidate: Candidate, options, elapsed: float) -> str | None:
    """Why a candidate is not made here, None when it is."""
    target = options.target_row
    if candidate.precision == "int8" and not options.int8:
        return "needs --int8"
    if candidate.fmt in target.auto_skips:
        return f"--target {target.name}: {target.auto_skip_reason}"
    if candidate.hint == "bf16" and not has_bf16():
        return "this CPU has no bfloat16 arithmetic"
    if candidate.fmt != "onnx" and (reason := missing(candidate.fmt, candidate.precision)):
        return reason
    if BY_NAME[candidate.fmt].slow and elapsed > options.search_time:
        return f"--search-time {options.search_time:g} s spent ({elapsed:.0f} s): a slow export was not started"
    return None


def make_candidate(ctx: FormatContext, candidate: Candidate, made: dict) -> ArtifactFacts:
    """The verified record of a candidate's file (made once per format and precision; bf16 reuses the FP32 IR)."""
    key = (candidate.fmt, candidate.precision)
    if key not in made:
        if candidate.fmt == "onnx":
            facts = file_facts(ctx.onnx_path(candidate.precision)).to_dict()
            made[key] = {"format": "onnx", "precision": candidate.precision, "file": facts["file"], "files": [facts],
                         "size_bytes": facts["size_bytes"]}
        else:
            made[key] = make_file(ctx, candidate.fmt, candidate.precision)
    return verify_made(ctx, made[key], candidate.hint)


def time_candidates(ctx: FormatContext, rows: list[dict]) -> dict:
    """Times the verified rows interleaved; adds ``latency_ms``, ``ratio`` (+ q25/q75) and ``verdict`` to each."""
    side, threads, spinning = ctx.fixed_side, usable_threads(), DEFAULT_SPINNING  # spinning: as the runtime ships
    x = np.random.default_rng(0).standard_normal((1, ctx.in_channels, side, side)).astype(np.float32)
    with quiet("runtimes"):  # runtimes announce their delegates when a file opens
        backends = [open_backend(ctx.out / row["file"], threads=threads, precision=row["hint"] or "f32",
                                 spinning=spinning) for row in rows]
    fns = [lambda b=b: b.run(x) for b in backends]
    for row, timing in zip(rows, time_interleaved(fns, AUTO_TIMING, reference=0), strict=True):
        row.update({k: timing[k] for k in ("latency_ms", "ratio", "ratio_q25", "ratio_q75", "rounds", "noisy",
                                           "verdict")})
    return {"size": side, "threads": threads, "spinning": spinning, "settings": AUTO_TIMING.to_dict(),
            "input": [1, ctx.in_channels, side, side]}


def choose(rows: list[dict], max_dice_drop: float) -> tuple[dict, str]:
    """The fastest timed row (best median ratio vs ONNX Runtime FP32) and why, in words."""
    timed = sorted((r for r in rows if "ratio" in r), key=lambda r: -r["ratio"])
    best = timed[0]
    drop = "undefined (no foreground)" if best["dice_drop"] is None else f"{best['dice_drop']:.4f}"
    why = (f"fastest of {len(timed)} verified candidates: x{best['ratio']:.2f} (x{best['ratio_q25']:.2f}-"
           f"x{best['ratio_q75']:.2f}) vs onnxruntime fp32 ({best['verdict']}), Dice drop {drop} within "
           f"{max_dice_drop:g}")
    if len(timed) > 1:
        runner = timed[1]
        why += (f"; next {runner['candidate']} x{runner['ratio']:.2f}, so x{best['ratio'] / runner['ratio']:.2f} "
                "vs the fastest other")
    return best, why


@dataclass
class AutoResult:
    """What ``--formats auto`` adds to export.json: ``auto`` (the comparison), ``shipped`` and the files kept."""

    record: dict
    shipped: str
    artifacts: list[ArtifactFacts]


def run_auto(ctx: FormatContext) -> AutoResult:
    """Makes, verifies and times the candidates; returns the comparison, the file shipped and the files kept."""
    o, out = ctx.options, ctx.out
    start, made, rows = time.perf_counter(), {}, []
    for candidate in CANDIDATES:
        row = {"candidate": candidate.name, "format": candidate.fmt, "precision": candidate.precision,
               "hint": candidate.hint}
        rows.append(row)
        if reason := skip_reason(candidate, o, time.perf_counter() - start):
            row.update(status="skipped", reason=reason)
            continue
        ctx.progress.say(f"auto: {candidate.name}")
        try:
            record = make_candidate(ctx, candidate, made)
        except Exception as exc:  # a converter or a check failing rejects this candidate only
            if candidate.fmt == "onnx" and candidate.precision == "fp32":
                raise
            logger.warning("auto: %s rejected: %s: %s", candidate.name, type(exc).__name__, exc)
            row.update(status="rejected", reason=f"{type(exc).__name__}: {exc}")
            continue
        details = record.details
        row.update(file=record.file, dice=details["dice"], dice_drop=details["dice_drop"],
                   argmax_agreement=details["parity"]["argmax_agreement"], record=record)
        if details["dice_check"] == "failed":
            row.update(status="rejected", reason=f"Dice drop {details['dice_drop']:.4f} > --max-dice-drop "
                                                 f"{o.max_dice_drop:g}")
        else:
            row["status"] = "verified"
    verified = [r for r in rows if r["status"] == "verified"]
    timing = time_candidates(ctx, verified)
    best, why = choose(verified, o.max_dice_drop)
    for row in rows:
        row["verdict_auto"] = "shipped" if row is best else row["status"]
    _remove_rejected(out, rows, verified)
    records = {r["record"].file: r.pop("record") for r in reversed(rows) if "record" in r}
    artifacts = [rec for name, rec in records.items() if rec.format != "onnx" and (out / name).is_file()]
    record = {"candidates": rows, "chosen": best["candidate"], "file": best["file"], "hint": best["hint"],
              "reason": why, "seconds": round(time.perf_counter() - start, 1), **timing, "where": where_note(o)}
    return AutoResult(record, best["file"], artifacts)


def _remove_rejected(out, rows: list[dict], verified: list[dict]) -> None:
    """Deletes the files of rejected candidates (and their companions) that no verified candidate uses."""
    keep = {name for r in verified for name in r["record"].details["files"]}
    for row in rows:
        record = row.get("record")
        for name in record.details["files"] if record else []:
            if name not in keep and row["format"] != "onnx":
                (out / name).unlink(missing_ok=True)

