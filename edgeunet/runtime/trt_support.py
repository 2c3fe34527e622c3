"""TensorRT and cuda-python as edgeunet uses them: the supported TensorRT range (one constant for the
engine builder and the runtime), imports that name the ``trt`` extra, and CUDA calls whose errors
become ``DeviceError``.

TensorRT 10 and 11 share the name-based tensor API edgeunet calls (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``, ``build_serialized_network``). TensorRT 11 removed
the weak-typing builder flags (``BuilderFlag.FP16`` / ``INT8``): networks are always strongly typed.
Nothing here imports tensorrt or cuda-python until asked.
"""

from __future__ import annotations

import re
from types import ModuleType

from ..errors import DeviceError, MissingExtraError, UserError, require

TENSORRT_MIN, TENSORRT_BELOW = 10, 12  # supported: TensorRT >= 10, < 12 (10.x and 11.x)
TENSORRT_RANGE = f">={TENSORRT_MIN},<{TENSORRT_BELOW}"
INSTALL = "pip install 'edgeunet[trt]'"


def tensorrt_major(version: str) -> int:
    """``"10.3.0.26"`` -> 10; UserError when the version string has no leading number."""
    match = re.match(r"\s*(\d+)", str(version))
    if not match:
        raise UserError(f"cannot read the TensorRT version {version!r}: "
                        f"reinstall TensorRT {TENSORRT_RANGE} ({INSTALL})")
    return int(match.group(1))


def check_tensorrt_version(version: str) -> int:
    """The major version of ``version`` when edgeunet supports it; UserError naming the supported range otherwise."""
    major = tensorrt_major(version)
    if not TENSORRT_MIN <= major < TENSORRT_BELOW:
        raise UserError(f"TensorRT {version} is not supported: edgeunet takes TensorRT {TENSORRT_RANGE} "
                        f"(`{INSTALL}`; on a Jetson, JetPack 6.1 or newer)")
    return major


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, checked against the supported range.

    Raises:
        MissingExtraError: TensorRT is not installed (names the ``trt`` extra).
        UserError: The installed TensorRT is outside ``TENSORRT_RANGE``.
    """
    trt = require("tensorrt", "trt")
    check_tensorrt_version(getattr(trt, "__version__", ""))
    return trt


def import_cudart() -> ModuleType:
    """The CUDA runtime module of cuda-python: ``cuda.bindings.runtime`` (12.6+) or ``cuda.cudart`` (older)."""
    try:
        from cuda.bindings import runtime

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart

        return cudart
    except ImportError as exc:
        raise MissingExtraError(f"cuda-python is not installed: run `{INSTALL}` ({exc})") from exc


def _error_name(cudart: ModuleType, err) -> str:
    name = getattr(err, "name", None)
    if name:
        return str(name)
    try:
        _, text = cudart.cudaGetErrorName(err)
        return text.decode() if isinstance(text, bytes) else str(text)
    except Exception:  # an unknown code: its number is all there is
        return f"error {int(getattr(err, 'value', err))}"


def cuda_call(cudart: ModuleType, result, what: str):
    """Unpacks a cuda-python ``(cudaError_t, *values)`` tuple: the value(s), or DeviceError on a CUDA error.

    Args:
        cudart: The cuda-python runtime module (for the error name).
        result: What the cuda-python call returned.
        what: The call, for the message (``"cudaMalloc(4194304 bytes)"``).
    """
    err, *values = result
    if int(getattr(err, "value", err)) != 0:  # cudaSuccess is 0
        raise DeviceError(f"CUDA {what} failed ({_error_name(cudart, err)}): check the GPU and its driver "
                          "(nvidia-smi, or tegrastats on a Jetson), or run the .onnx model with ONNX Runtime")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)
