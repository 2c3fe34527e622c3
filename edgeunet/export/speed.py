"""INT8 vs FP32 latency on this CPU, through the one timing harness (``edgeunet.timing``).

Both files run on ONNX Runtime sessions as the runtime opens them (``ort_session``), round-robin
on one (1, C, size, size) input; the speed-up is the median of per-round FP32 / INT8 time ratios
with its quartiles as the interval, and the harness's verdict says whether the interval is
clear of 1 (``faster``, ``slower``, ``same``) or too wide to tell (``no verdict``).
"""

from __future__ import annotations

import os

import numpy as np

from ..env import cpu_info
from ..runtime.session import CPU, ort_session
from ..timing import TimingSettings, time_interleaved

SEARCH_TIMING = TimingSettings(warmup=3, min_time=0.25, min_rounds=7)  # one INT8 search candidate
CONFIRM_TIMING = TimingSettings(warmup=3, min_time=0.75, min_rounds=21)  # the search's best, re-timed
EXPORT_TIMING = TimingSettings(warmup=3, min_time=1.0, min_rounds=15)  # an export without the search


def usable_threads() -> int:
    """The cores this process may use: the threads every timing of the export runs with."""
    return int(cpu_info()["usable_cores"] or 1)


def time_pair(fp32_path: str | os.PathLike, int8_path: str | os.PathLike, *, size: int, threads: int,
              in_channels: int = 1, settings: TimingSettings = SEARCH_TIMING, spatial_dims: int = 2) -> dict:
    """Times the FP32 and INT8 files interleaved on one (1, ``in_channels``, ``size``, ``size``) input
    ((1, C, size, size, size) with ``spatial_dims=3``).

    Returns:
        ``fp32_ms`` and ``int8_ms`` (medians, ms), ``speedup`` (median per-round FP32 / INT8 ratio; > 1: INT8
        is faster), ``speedup_q25`` / ``speedup_q75`` (its interval), ``rounds`` and ``verdict``.
    """
    return time_files(fp32_path, [int8_path], size=size, threads=threads, in_channels=in_channels,
                      settings=settings, spatial_dims=spatial_dims)[0]


def time_files(fp32_path: str | os.PathLike, int8_paths: list, *, size: int, threads: int, in_channels: int = 1,
               settings: TimingSettings = SEARCH_TIMING, spatial_dims: int = 2) -> list[dict]:
    """``time_pair`` for several INT8 files at once: the FP32 file and all of them in the same interleaved rounds,
    so their speed-ups are comparable with each other (one record per INT8 file, in order)."""
    sessions = [ort_session(path, threads=threads, providers=[CPU]) for path in (fp32_path, *int8_paths)]
    name = sessions[0].get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((1, in_channels) + (size,) * spatial_dims).astype(np.float32)
    fp32, *rows = time_interleaved([lambda s=s: s.run(None, {name: x}) for s in sessions], settings, reference=0)
    return [{"fp32_ms": fp32["latency_ms"]["p50"], "int8_ms": row["latency_ms"]["p50"], "speedup": row["ratio"],
             "speedup_q25": row["ratio_q25"], "speedup_q75": row["ratio_q75"], "rounds": row["rounds"],
             "verdict": row["verdict"]} for row in rows]


def interval(timing: dict) -> str:
    """``x1.23 (x1.10-x1.31)``: the speed-up and its interval."""
    return f"x{timing['speedup']:.2f} (x{timing['speedup_q25']:.2f}-x{timing['speedup_q75']:.2f})"


def speed_warning(speed: dict) -> str | None:
    """The warning an ``int8_speed`` record calls for, from the harness's verdict: None when INT8 is faster, or
    when the machine was too noisy for a verdict but INT8 won at least three rounds in four (q25 > 1)."""
    at = f"{interval(speed)} at {speed['size']} px"
    verdict = speed.get("verdict")
    if verdict == "slower":
        return (f"model.int8.onnx is SLOWER than model.onnx on this CPU ({at}): deploy model.onnx here, or use INT8 "
                "only where it measures faster (e.g. a CPU with VNNI)")
    if verdict == "same":
        return (f"model.int8.onnx is no faster than model.onnx on this CPU ({at}): keep INT8 for its size, "
                "or deploy model.onnx here")
    if verdict == "no verdict" and speed["speedup_q25"] <= 1.0:
        return (f"this CPU was too busy to tell whether model.int8.onnx is faster than model.onnx ({at}): "
                "time both with `edgeunet bench` on a quiet machine")
    return None
