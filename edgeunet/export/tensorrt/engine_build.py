"""The TensorRT builder calls (TensorRT 10.x and 11.x Python API) and the GPU facts of the sidecar.

Builder -> network (STRONGLY_TYPED on 10.x; 11.x is always strongly typed) -> OnnxParser ->
config (workspace pool, FP16/INT8 flags on 10.x weakly typed builds) -> one optimization profile
-> timing cache (loaded, attached, saved back) -> ``build_serialized_network``. Kept apart from
the planning (``plan``) so that is testable without TensorRT.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from ...atomic import write_bytes
from ...errors import DeviceError, UserError
from ...runtime.trt_support import cuda_call, import_cudart, tensorrt_major
from .plan import BuildPlan

logger = logging.getLogger(__name__)


def _network(trt, builder, strongly_typed: bool):
    flags = 0
    # TensorRT 11 is always strongly typed and keeps the flag only as a deprecated no-op; 10.x needs it.
    if strongly_typed and tensorrt_major(trt.__version__) < 11:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    if network is None:
        raise DeviceError("TensorRT could not create a network definition: see the TensorRT log above")
    return network


def _parse(trt, network, logger_trt, plan: BuildPlan):
    parser = trt.OnnxParser(network, logger_trt)
    if not parser.parse_from_file(str(plan.onnx_path)):
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors)) or "no details"
        raise UserError(f"TensorRT could not parse {plan.onnx_path}: {errors}: re-export it with another --opset, "
                        "or report the operator")
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    if plan.input_name not in names:
        raise UserError(f"{plan.onnx_path} has inputs {names}, not {plan.input_name!r}: "
                        "re-export it with `edgeunet export`")
    return parser


def _config(trt, builder, plan: BuildPlan):
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(plan.workspace_mb) << 20)
    for flag in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    profile = builder.create_optimization_profile()
    profile.set_shape(plan.input_name, *plan.profile)
    if config.add_optimization_profile(profile) < 0:
        raise UserError(f"TensorRT refused the profile {plan.profile} for {plan.input_name!r}: "
                        "check --shapes against the model's input")
    return config


def _attach_timing_cache(config, path: Path | None):
    """Loads ``path`` (a new cache when absent) and attaches it; returns it (None without a path)."""
    if path is None:
        return None
    try:
        blob = path.read_bytes() if path.is_file() else b""
    except OSError as exc:
        raise UserError(f"cannot read timing cache {path} ({exc.strerror}): fix its permissions or delete it") from None
    cache = config.create_timing_cache(blob)
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        raise UserError(f"timing cache {path} does not fit this GPU and TensorRT version: delete it, "
                        "and the build writes a new one")
    return cache


def build_serialized(trt, plan: BuildPlan) -> bytes:
    """Builds and serializes an engine; returns the plan bytes and saves the timing cache back.

    Args:
        trt: The imported ``tensorrt`` module (10.x or 11.x).
        plan: What to build (``plan.BuildPlan``).

    Raises:
        UserError: TensorRT cannot parse the file, refuses the profile, or the timing cache does not fit.
        DeviceError: The build itself fails (``build_serialized_network`` returns None).
    """
    logger_trt = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger_trt)
    network = _network(trt, builder, plan.strongly_typed)
    _parser = _parse(trt, network, logger_trt, plan)  # the parser owns the weights: it must outlive the build
    config = _config(trt, builder, plan)
    cache = _attach_timing_cache(config, plan.timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise DeviceError(f"TensorRT failed to build an engine from {plan.onnx_path}: see the TensorRT log above; "
                          "try a larger --workspace or smaller --shapes")
    if cache is not None:
        write_bytes(plan.timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(serialized))


def device_info() -> dict:
    """GPU name and compute capability (``"8.7"``) of device 0, from cuda-python or nvidia-smi; None when unknown."""
    try:
        cudart = import_cudart()
        props = cuda_call(cudart, cudart.cudaGetDeviceProperties(0), "cudaGetDeviceProperties")
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return {"gpu": name.split("\0")[0].strip(), "compute_capability": f"{props.major}.{props.minor}"}
    except (ImportError, DeviceError, AttributeError):
        logger.info("cuda-python gave no GPU facts")
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=20, check=True)
            name, cap = [p.strip() for p in out.stdout.splitlines()[0].split(",")[:2]]
            return {"gpu": name, "compute_capability": cap}
        except (subprocess.SubprocessError, OSError, IndexError, ValueError):
            logger.info("nvidia-smi gave no GPU facts")
    return {"gpu": None, "compute_capability": None}
