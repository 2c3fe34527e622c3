"""``--formats auto``: make the runtimes' files that can run here, time them side by side, ship the fastest.

The candidates are made in the order below (fast exports first) from the libraries installed; the
slow exports (LiteRT, ExecuTorch: minutes) are not started once ``--search-time`` is spent. Each is
verified like any format file (``formats_stage.verify_made``): a candidate whose Dice drops more than
``--max-dice-drop`` below PyTorch's on the verification images, or whose argmax disagrees, is
rejected and its file removed. The rest run interleaved (``timing.time_interleaved``, ONNX Runtime
threads spinning within a call only, as the runtime ships, so no session steals the others' cores)
through the runtime backends on one
(1, C, side, side) input at the search side; the one with the best median per-round ratio against
ONNX Runtime FP32 ships (export.json ``shipped``), and the whole comparison is kept under ``auto``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from ..timing import TimingSettings, time_interleaved
from .formats_stage import FormatJob, make_file, missing, verify_made

logger = logging.getLogger(__name__)

AUTO_TIMING = TimingSettings(warmup=3, min_time=1.0, min_rounds=15)
SLOW = ("litert", "executorch")  # exports of minutes: not started once --search-time is spent


@dataclass(frozen=True)
class Candidate:
    """One runtime and precision: ``name``, the ``fmt`` of its file, ``precision`` and OpenVINO's ``hint``."""

    name: str
    fmt: str
    precision: str
    hint: str | None = None


CANDIDATES = (
    Candidate("onnxruntime fp32", "onnx", "fp32"),
    Candidate("onnxruntime int8", "onnx", "int8"),
    Candidate("openvino fp32", "openvino", "fp32", "f32"),
    Candidate("openvino bf16", "openvino", "fp32", "bf16"),
    Candidate("openvino int8", "openvino", "int8"),
    Candidate("litert int8", "litert", "int8"),
    Candidate("executorch int8", "executorch", "int8"),
    Candidate("litert fp32", "litert", "fp32"),
)


def skip_reason(candidate: Candidate, options, elapsed: float) -> str | None:
    """Why a candidate is not made here, None when it is."""
    from ..env import has_bf16

    if candidate.precision == "int8" and not options.int8:
        return "needs --int8"
    if options.target == "arm" and candidate.fmt == "openvino":
        return "--target arm: phones and ARM boards run ONNX Runtime, ExecuTorch or LiteRT files"
    if candidate.hint == "bf16" and not has_bf16():
        return "this CPU has no bfloat16 arithmetic"
    if candidate.fmt != "onnx" and (reason := missing(candidate.fmt, candidate.precision)):
        return reason
    if candidate.fmt in SLOW and elapsed > options.search_time:
        return f"--search-time {options.search_time:g} s spent ({elapsed:.0f} s): a slow export was not started"
    return None


def make_candidate(job: FormatJob, candidate: Candidate, made: dict) -> dict:
    """The verified record of a candidate's file (made once per format and precision; bf16 reuses model.xml)."""
    from .pipeline import file_facts
    from .stages import ONNX_NAMES

    key = (candidate.fmt, candidate.precision)
    if key not in made:
        if candidate.fmt == "onnx":
            path = job.stages.out / ONNX_NAMES[candidate.precision]
            facts = file_facts(path)
            made[key] = {"format": "onnx", "precision": candidate.precision, "file": path.name, "files": [facts],
                         "size_bytes": facts["size_bytes"]}
        else:
            made[key] = make_file(job, candidate.fmt, candidate.precision)
    return verify_made(job, made[key], candidate.hint)


def time_candidates(job: FormatJob, rows: list[dict]) -> dict:
    """Times the verified rows interleaved; adds ``latency_ms``, ``ratio`` (+ q25/q75) and ``verdict`` to each."""
    from ..runtime.backends import open_backend
    from .stages import usable_threads

    side, threads, spinning = job.fixed_side, usable_threads(), "run"  # spinning: as the runtime ships
    x = np.random.default_rng(0).standard_normal((1, job.stages.cfg.in_channels, side, side)).astype(np.float32)
    backends = [open_backend(job.stages.out / row["file"], threads=threads, precision=row["hint"] or "f32",
                             spinning=spinning) for row in rows]
    fns = [lambda b=b: b.run(x) for b in backends]
    for row, timing in zip(rows, time_interleaved(fns, AUTO_TIMING, reference=0), strict=True):
        row.update({k: timing[k] for k in ("latency_ms", "ratio", "ratio_q25", "ratio_q75", "rounds", "noisy",
                                           "verdict")})
    return {"size": side, "threads": threads, "spinning": spinning, "settings": AUTO_TIMING.to_dict(),
            "input": [1, job.stages.cfg.in_channels, side, side]}


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


def run_auto(job: FormatJob) -> dict:
    """Makes, verifies and times the candidates; returns the export.json ``auto``, ``shipped`` and artifacts."""
    o, out = job.options, job.stages.out
    start, made, rows = time.perf_counter(), {}, []
    for candidate in CANDIDATES:
        row = {"candidate": candidate.name, "format": candidate.fmt, "precision": candidate.precision,
               "hint": candidate.hint}
        rows.append(row)
        if reason := skip_reason(candidate, o, time.perf_counter() - start):
            row.update(status="skipped", reason=reason)
            continue
        job.stages.progress.say(f"auto: {candidate.name}")
        try:
            record = make_candidate(job, candidate, made)
        except Exception as exc:  # a converter or a check failing rejects this candidate only
            if candidate.fmt == "onnx" and candidate.precision == "fp32":
                raise
            logger.warning("auto: %s rejected: %s: %s", candidate.name, type(exc).__name__, exc)
            row.update(status="rejected", reason=f"{type(exc).__name__}: {exc}")
            continue
        row.update(file=record["file"], dice=record["dice"], dice_drop=record["dice_drop"],
                   argmax_agreement=record["parity"]["argmax_agreement"], record=record)
        if record["dice_check"] == "failed":
            row.update(status="rejected", reason=f"Dice drop {record['dice_drop']:.4f} > --max-dice-drop "
                                                 f"{o.max_dice_drop:g}")
        else:
            row["status"] = "verified"
    verified = [r for r in rows if r["status"] == "verified"]
    timing = time_candidates(job, verified)
    best, why = choose(verified, o.max_dice_drop)
    for row in rows:
        row["verdict_auto"] = "shipped" if row is best else row["status"]
    _remove_rejected(out, rows, verified)
    records = {r["record"]["file"]: r.pop("record") for r in reversed(rows) if "record" in r}
    artifacts = [rec for name, rec in records.items() if rec["format"] != "onnx" and (out / name).is_file()]
    record = {"candidates": rows, "chosen": best["candidate"], "file": best["file"], "hint": best["hint"],
              "reason": why, "seconds": round(time.perf_counter() - start, 1), **timing,
              "where": where_note(o)}
    return {"formats": list(o.formats), "auto": record, "shipped": best["file"], "format_artifacts": artifacts}


def _remove_rejected(out, rows: list[dict], verified: list[dict]) -> None:
    """Deletes the files of rejected candidates (and their companions) that no verified candidate uses."""
    keep = {name for r in verified for name in r["record"]["files"]}
    for row in rows:
        for name in (row.get("record") or {}).get("files", []):
            if name not in keep and row["format"] != "onnx":
                (out / name).unlink(missing_ok=True)


def where_note(options) -> str:
    """Where the files were verified and timed, for the console and export.json (``where``)."""
    timed = "auto" in options.formats or (options.int8 and options.target == "cpu")
    if options.target == "cpu":
        return "verified and timed on this machine" if timed else "verified on this machine"
    return (f"written for --target {options.target}: verified here, " +
            ("but timed on this CPU only" if timed else "not timed here") +
            "; time them on the device with `edgeunet bench`")
