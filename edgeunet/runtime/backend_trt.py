"""TensorRT backend: a serialized ``.engine`` (TensorRT 10+ name-based tensor API) on an NVIDIA GPU.

An engine carries no metadata of its own, so ``edgeunet build-engine`` writes a sidecar
``<engine>.json`` next to it whose ``"metadata"`` entry holds the same ``metadata_props``
strings as the ONNX file it was built from. Device memory and the CUDA stream come from
cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` in older releases); both it and
TensorRT are in the ``trt`` extra. ``tensorrt`` is imported only when an engine is opened.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from ..errors import MissingExtraError, UserError, require
from .sidecar import read_sidecar, sidecar_path  # noqa: F401 (moved to sidecar.py; re-exported)

logger = logging.getLogger(__name__)


def _cudart():
    """The CUDA runtime module of cuda-python (new and old import paths)."""
    try:
        from cuda.bindings import runtime

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart

        return cudart
    except ImportError as exc:
        raise MissingExtraError(f"cuda-python is not installed: run `pip install 'edgeunet[trt]'` ({exc})") from exc


def _check(result):
    """Unpacks a cuda-python ``(error, *values)`` tuple; raises on a CUDA error."""
    err, *values = result
    if int(getattr(err, "value", err)) != 0:  # cudaSuccess is 0
        raise UserError(f"CUDA call failed ({err}): check the GPU and driver with `nvidia-smi`, "
                        "or run the .onnx model with backend='onnxruntime'")
    return values[0] if len(values) == 1 else values


class TrtBackend:
    """Runs an edgeunet TensorRT engine; same interface as ``OrtBackend``.

    One execution context serves all calls; a lock serializes them, so a Segmenter on an
    engine is safe to share between threads (calls run one at a time on the GPU).

    Attributes:
        metadata: From the sidecar JSON.
        providers: ``["TensorRT"]``.
        max_batch: Largest batch of the engine's optimization profile.
        fixed_size: (H, W) when the profile allows only one size, else None.
        min_size / max_size: (H, W) bounds of the profile.
    """

    name = "tensorrt"
    providers = ["TensorRT"]

    def __init__(self, path: str | Path):
        trt = require("tensorrt", "trt")
        self._cudart = _cudart()
        path = Path(path)
        self.metadata = read_sidecar(path)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise UserError(f"TensorRT could not load {path}: an engine runs only with the TensorRT version and GPU "
                            "it was built for; rebuild it on this device with `edgeunet build-engine`")
        self._context = self._engine.create_execution_context()
        self._names = (self.metadata.input_name, self.metadata.output_name)
        present = {self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)}
        if not set(self._names) <= present:
            raise UserError(f"{path} has tensors {sorted(present)}, not {list(self._names)}: rebuild it from an edgeunet ONNX file")
        self._dtypes = [np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in self._names]
        self._read_profile()
        self._stream = _check(self._cudart.cudaStreamCreate())
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        self._lock = threading.Lock()
        logger.info("loaded engine %s (batch <= %s, sizes %s..%s)", path, self.max_batch, self.min_size, self.max_size)

    def _read_profile(self) -> None:
        name = self.metadata.input_name
        shape = tuple(self._engine.get_tensor_shape(name))
        if all(d > 0 for d in shape):
            low = high = shape
        else:
            low, _, high = (tuple(s) for s in self._engine.get_tensor_profile_shape(name, 0))
        self.max_batch = int(high[0])
        self.min_size, self.max_size = (int(low[2]), int(low[3])), (int(high[2]), int(high[3]))
        self.fixed_size = self.max_size if self.min_size == self.max_size else None

    def _device_buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self._cudart.cudaFree(ptr))
            ptr = int(_check(self._cudart.cudaMalloc(nbytes)))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def run(self, x: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 -> (B, K, H, W) float32 logits."""
        cudart, kinds = self._cudart, self._cudart.cudaMemcpyKind
        host_in = np.ascontiguousarray(x, dtype=self._dtypes[0])
        in_name, out_name = self._names
        with self._lock:
            if not self._context.set_input_shape(in_name, host_in.shape):
                raise UserError(f"the engine does not take input shape {host_in.shape} (batch <= {self.max_batch}, "
                                f"sizes {self.min_size}..{self.max_size}): rebuild it with a wider profile")
            host_out = np.empty(tuple(self._context.get_tensor_shape(out_name)), self._dtypes[1])
            in_ptr = self._device_buffer(in_name, host_in.nbytes)
            out_ptr = self._device_buffer(out_name, host_out.nbytes)
            self._context.set_tensor_address(in_name, in_ptr)
            self._context.set_tensor_address(out_name, out_ptr)
            _check(cudart.cudaMemcpyAsync(in_ptr, host_in.ctypes.data, host_in.nbytes, kinds.cudaMemcpyHostToDevice, self._stream))
            if not self._context.execute_async_v3(stream_handle=int(self._stream)):
                raise UserError("TensorRT failed to run the engine: see the TensorRT log above")
            _check(cudart.cudaMemcpyAsync(host_out.ctypes.data, out_ptr, host_out.nbytes, kinds.cudaMemcpyDeviceToHost, self._stream))
            _check(cudart.cudaStreamSynchronize(self._stream))
        return host_out.astype(np.float32, copy=False)

    def close(self) -> None:
        """Frees the device buffers and the stream (also done when garbage-collected)."""
        with self._lock:
            for ptr, _ in self._buffers.values():
                self._cudart.cudaFree(ptr)
            self._buffers.clear()
            if self._stream is not None:
                self._cudart.cudaStreamDestroy(self._stream)
                self._stream = None

    def __del__(self):
        if getattr(self, "_lock", None) is None:
            return  # construction failed before any CUDA resource existed
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn down cuda-python already
            pass
