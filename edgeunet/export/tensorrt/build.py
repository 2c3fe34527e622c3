"""``build_engine``: an edgeunet ONNX file -> a TensorRT engine + its sidecar, built on the device where
it will run (engines are tied to a GPU and a TensorRT version), plus the equivalent ``trtexec``
command for devices without Python TensorRT.

The steps live in modules with one job each: ``facts`` (what the ONNX file says),
``shapes`` (the profile), ``plan`` (options, flags, trtexec line) and ``engine_build``
(the TensorRT calls); this module runs them and writes the files, all atomically.
"""

from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path

from ...atomic import write_bytes, write_json, write_text
from ...errors import MissingExtraError, UserError
from ...formats import model_file_name
from ...runtime.sidecar import sidecar_path
from ...runtime.trt_support import (
    INSTALL,
    TENSORRT_BELOW,
    TENSORRT_MIN,
    TENSORRT_RANGE,
    check_tensorrt_version,
    tensorrt_major,
)
from .engine_build import build_serialized, device_info
from .facts import check_int8_flavour, read_onnx_facts
from .plan import (
    BuildPlan,
    EngineOptions,
    build_mode,
    trtexec_command,
    trtexec_path,
)
from .shapes import check_shapes, default_shapes, parse_shapes

logger = logging.getLogger(__name__)


def _installed_tensorrt():
    try:
        import tensorrt
    except ImportError:
        return None
    return tensorrt


def _planned_major(trt) -> int:
    """The TensorRT major version to plan for: the installed one, else 10 (what JetPack 6.1+ ships)."""
    if trt is None:
        return TENSORRT_MIN
    major = tensorrt_major(trt.__version__)
    if not TENSORRT_MIN <= major < TENSORRT_BELOW:
        logger.warning("TensorRT %s is outside %s: the trtexec line is planned for TensorRT %d",
                       trt.__version__, TENSORRT_RANGE, TENSORRT_MIN)
        return TENSORRT_MIN
    return major


def _engine_path(onnx_path: Path, engine_path, precision: str) -> Path:
    path = Path(engine_path) if engine_path else onnx_path.with_name(model_file_name("tensorrt", precision))
    if path.is_dir():
        example = path / model_file_name("tensorrt", precision)
        raise UserError(f"--out {path} is a folder: give the engine's file path, e.g. {example}")
    return path


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike | None = None,
                 options: EngineOptions | None = None, **fields) -> dict:
    """Builds a TensorRT engine from an edgeunet ONNX file on this machine's GPU.

    Always writes ``<engine>.trtexec.txt`` (the equivalent trtexec command) first, so a device
    without Python TensorRT can build with trtexec; with ``dry_run`` that is all it does.

    Args:
        onnx_path: edgeunet ONNX file (fp32, fp16 or the ``tensorrt`` flavour of int8).
        engine_path: Output engine; default ``formats.model_file_name("tensorrt", precision)`` next to the ONNX
            file.
        options: An ``EngineOptions``; or give its fields as keywords (``shapes=``, ``dry_run=``, ...).

    Returns:
        Dict with ``engine``, ``trtexec`` (command string), ``trtexec_file``, ``strongly_typed``,
        ``flags``, and after a build ``sidecar`` (path of ``<engine>.json``: GPU, TensorRT version,
        profile, metadata) and ``size_bytes``.

    Raises:
        UserError: Bad file, cpu-flavour INT8, bad shapes or options, TensorRT outside the supported range.
        MissingExtraError: A build was asked for and TensorRT is not installed.
        DeviceError: TensorRT failed to build the engine.
    """
    if options is None:
        options = EngineOptions(**fields)
    elif fields:
        raise TypeError("give either options or its fields as keywords, not both")
    onnx_path = Path(onnx_path)
    facts = read_onnx_facts(onnx_path)
    check_int8_flavour(onnx_path, facts)
    meta = facts.metadata
    engine_path = _engine_path(onnx_path, engine_path, meta.precision)
    if options.shapes:
        profile = parse_shapes(options.shapes)
    else:
        profile = default_shapes(meta.in_channels, meta.size_multiple, facts.static_hw, meta.size_multiples)
    check_shapes(profile, meta.in_channels, meta.size_multiple, facts.static_hw, meta.size_multiples)
    trt = _installed_tensorrt()
    if trt is not None and not options.dry_run:
        check_tensorrt_version(trt.__version__)
    mode = build_mode(_planned_major(trt), meta.precision, options.fp16, options.int8)
    names = (onnx_path.name, engine_path.name) if options.relative else (onnx_path, engine_path)
    cmd = shlex.join(trtexec_command(*names, profile, mode, options.workspace_mb, options.timing_cache,
                                     meta.input_name))
    trtexec_file = write_text(trtexec_path(engine_path), cmd + "\n")
    result = {"engine": str(engine_path), "trtexec": cmd, "trtexec_file": str(trtexec_file),
              "strongly_typed": mode["strongly_typed"], "flags": mode["flags"]}
    if options.dry_run:
        return result
    if trt is None:
        raise MissingExtraError(f"TensorRT is not installed: run `{INSTALL}` on the device the engine will run on "
                                f"(engines must be built on the target device), or build there with: {cmd}")
    plan = BuildPlan(onnx_path=onnx_path, input_name=meta.input_name, profile=profile,
                     strongly_typed=mode["strongly_typed"], flags=tuple(mode["flags"]),
                     workspace_mb=options.workspace_mb,
                     timing_cache=Path(options.timing_cache) if options.timing_cache else None)
    return {**result, **_build_and_write(trt, plan, engine_path, facts, cmd)}


def _build_and_write(trt, plan: BuildPlan, engine_path: Path, facts, cmd: str) -> dict:
    serialized = build_serialized(trt, plan)
    write_bytes(engine_path, serialized)
    profile = {"min": list(plan.profile[0]), "opt": list(plan.profile[1]), "max": list(plan.profile[2])}
    sidecar = write_json(sidecar_path(engine_path), {
        "engine": engine_path.name, "onnx": plan.onnx_path.name, "tensorrt_version": trt.__version__,
        **device_info(), "strongly_typed": plan.strongly_typed, "builder_flags": list(plan.flags),
        "workspace_mb": plan.workspace_mb, "profile": {plan.input_name: profile},
        "precision": facts.metadata.precision, "metadata": facts.props, "trtexec": cmd})
    logger.info("built %s (%.1f MB) with TensorRT %s", engine_path, len(serialized) / 1e6, trt.__version__)
    return {"sidecar": str(sidecar), "size_bytes": len(serialized)}
