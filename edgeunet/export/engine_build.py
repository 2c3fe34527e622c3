"""The TensorRT builder calls (TensorRT 10 and 11 Python API) and the GPU facts of the sidecar.

Kept apart from ``tensorrt.py`` so the planning there (shapes, flags, trtexec line) is
testable without TensorRT.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import UserError

logger = logging.getLogger(__name__)


def _network(trt, builder, strongly_typed: bool):
    flags = 0
    creation = getattr(trt, "NetworkDefinitionCreationFlag", None)
    # TensorRT 11 is always strongly typed and deprecates the flag; TensorRT 10 needs it.
    if strongly_typed and int(trt.__version__.split(".")[0]) < 11 and hasattr(creation, "STRONGLY_TYPED"):
        flags |= 1 << int(creation.STRONGLY_TYPED)
    return builder.create_network(flags)


def _parse(trt, network, logger_trt, onnx_path: Path):
    parser = trt.OnnxParser(network, logger_trt)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"TensorRT could not parse {onnx_path}: {errors}: re-export with another --opset or report the op")
    return parser


def build_serialized(trt, onnx_path: Path, profile: tuple, mode: dict, workspace_mb: int, timing_cache, input_name: str) -> bytes:
    """Builds and serializes an engine; returns the plan bytes.

    Args:
        trt: The imported ``tensorrt`` module.
        onnx_path: ONNX file.
        profile: (min, opt, max) (B, C, H, W) shapes of ``input_name``.
        mode: ``tensorrt.build_mode`` result.
        workspace_mb: Workspace pool limit (MB).
        timing_cache: Timing cache path or None; loaded when it exists, saved after the build.
        input_name: Graph input.
    """
    logger_trt = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger_trt)
    network = _network(trt, builder, mode["strongly_typed"])
    _parser = _parse(trt, network, logger_trt, onnx_path)  # the parser must outlive the build
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    for flag in mode["flags"]:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(input_name, *profile)
    config.add_optimization_profile(opt_profile)
    cache_path = Path(timing_cache) if timing_cache else None
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise UserError(f"TensorRT failed to build an engine from {onnx_path}: see the TensorRT log above; try a larger --workspace or smaller --shapes")
    if cache_path:
        tmp = cache_path.with_name(f".{cache_path.name}.tmp{os.getpid()}")
        tmp.write_bytes(memoryview(config.get_timing_cache().serialize()))
        os.replace(tmp, cache_path)
    return bytes(memoryview(plan))


def device_info() -> dict:
    """GPU name and compute capability (``"8.7"``), from nvidia-smi or torch; None when unknown."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"], capture_output=True, text=True, timeout=20, check=True)
            name, cap = [p.strip() for p in out.stdout.splitlines()[0].split(",")[:2]]
            return {"gpu": name, "compute_capability": cap}
        except (subprocess.SubprocessError, OSError, IndexError, ValueError):
            logger.info("nvidia-smi gave no GPU facts")
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return {"gpu": torch.cuda.get_device_name(0), "compute_capability": f"{major}.{minor}"}
    except ImportError:
        pass
    return {"gpu": None, "compute_capability": None}
