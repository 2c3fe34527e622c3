"""TensorRT backend: a serialized engine (TensorRT 10/11 name-based tensor API) on an NVIDIA GPU.

An engine carries no metadata of its own, so ``edgeunet build-engine`` writes a sidecar
``<engine>.json`` next to it (``sidecar_path``) whose ``"metadata"`` entry holds the same
``metadata_props`` strings as the ONNX file it was built from. Device memory and the CUDA stream
come from cuda-python; both it and TensorRT are in the ``trt`` extra and imported only when an
engine is opened.

One call of ``run``: ``set_input_shape`` -> ``set_tensor_address`` (input, output) -> copy in ->
``execute_async_v3(stream)`` -> copy out -> stream synchronize, all on one stream.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from ..errors import DeviceError, UserError
from .sidecar import metadata_from_facts, read_sidecar, read_sidecar_facts, sidecar_path  # noqa: F401  (re-exported)
from .trt_support import cuda_call, import_cudart, import_tensorrt

logger = logging.getLogger(__name__)

REBUILD = "rebuild the engine on this device with `edgeunet build-engine MODEL.onnx`"


class TrtBackend:
    """Runs an edgeunet TensorRT engine; same interface as ``OrtBackend``.

    One execution context serves all calls; a lock serializes them, so a Segmenter on an
    engine is safe to share between threads (calls run one at a time on the GPU).

    Attributes:
        metadata: From the sidecar JSON.
        name: ``"tensorrt"``.   providers: ``["TensorRT"]``.
        input_dtype: numpy dtype of the engine's input tensor.
        max_batch: Largest batch of the engine's optimization profile.
        fixed_size: (H, W) when the profile allows only one size, else None.
        min_size / max_size: (H, W) bounds of the profile ((D, H, W) for 3-D models).

    Raises:
        MissingExtraError: TensorRT or cuda-python is not installed.
        UserError: No sidecar, a TensorRT outside the supported range, or an engine that is not edgeunet's.
        DeviceError: The engine does not load on this GPU / TensorRT version, or a CUDA call fails.
    """

    name = "tensorrt"
    providers = ["TensorRT"]

    def __init__(self, path: str | Path):
        trt = import_tensorrt()
        self._cudart = import_cudart()
        path = Path(path)
        facts = read_sidecar_facts(path)
        self.metadata = metadata_from_facts(facts, path)
        self._engine_bytes = path.stat().st_size
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            built = facts.get("tensorrt_version") or "an unknown TensorRT"
            raise DeviceError(f"TensorRT {trt.__version__} could not load {path} (built with TensorRT {built} on "
                              f"{facts.get('gpu') or 'an unknown GPU'}): an engine runs only with the TensorRT version "
                              f"and GPU it was built for; {REBUILD}")
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise DeviceError(f"TensorRT could not create an execution context for {path} (GPU out of memory?): "
                              "free GPU memory, or rebuild the engine with smaller --shapes")
        self._names = (self.metadata.input_name, self.metadata.output_name)
        self._check_tensors(trt, path)
        dtypes = [np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in self._names]
        self.input_dtype, self._output_dtype = dtypes
        self._read_profile()
        self._stream = cuda_call(self._cudart, self._cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        self._lock = threading.Lock()
        logger.info("loaded engine %s (batch <= %s, sizes %s..%s)", path, self.max_batch, self.min_size, self.max_size)

    def _check_tensors(self, trt, path: Path) -> None:
        present = {self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)}
        if not set(self._names) <= present:
            raise UserError(f"{path} has tensors {sorted(present)}, not {list(self._names)}: "
                            "rebuild it from an edgeunet ONNX file")
        modes = [self._engine.get_tensor_mode(n) for n in self._names]
        if modes != [trt.TensorIOMode.INPUT, trt.TensorIOMode.OUTPUT]:
            raise UserError(f"{path}: {self._names[0]!r} must be the input and {self._names[1]!r} the output: "
                            "rebuild it from an edgeunet ONNX file")

    def _read_profile(self) -> None:
        name = self.metadata.input_name
        shape = tuple(self._engine.get_tensor_shape(name))
        if all(d > 0 for d in shape):
            low = high = shape
        else:
            low, _, high = (tuple(s) for s in self._engine.get_tensor_profile_shape(name, 0))
        self._low, self._high = tuple(int(d) for d in low), tuple(int(d) for d in high)
        self.max_batch = self._high[0]
        spatial = slice(2, 2 + self.metadata.spatial_dims)  # (H, W), or (D, H, W) for 3-D models
        self.min_size, self.max_size = self._low[spatial], self._high[spatial]
        self.fixed_size = self.max_size if self.min_size == self.max_size else None

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        axes = "H, W" if self.metadata.spatial_dims == 2 else "D, H, W"
        if len(shape) != 2 + self.metadata.spatial_dims or shape[1] != self.metadata.in_channels:
            raise UserError(f"input of shape {shape}: the engine takes (B, {self.metadata.in_channels}, {axes})")
        if not all(lo <= s <= hi for lo, s, hi in zip(self._low, shape, self._high)):
            raise UserError(f"input shape {shape} is outside the engine's profile {self._low}..{self._high} "
                            f"(batch <= {self.max_batch}, sizes {self.min_size}..{self.max_size}): "
                            "rebuild it with `edgeunet build-engine --shapes` covering it")

    def _device_buffer(self, name: str, nbytes: int) -> int:
        """A device buffer of at least ``nbytes`` for tensor ``name``; buffers grow and are reused."""
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                self._buffers.pop(name)
                cuda_call(self._cudart, self._cudart.cudaFree(ptr), "cudaFree")
            ptr = int(cuda_call(self._cudart, self._cudart.cudaMalloc(nbytes), f"cudaMalloc({nbytes} bytes)"))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def _bind(self, name: str, ptr: int) -> None:
        if not self._context.set_tensor_address(name, ptr):
            raise DeviceError(f"TensorRT refused the device address of {name!r}: see the TensorRT log above")

    def run(self, x: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 -> (B, K, H, W) float32 logits."""
        cudart = self._cudart
        kinds = cudart.cudaMemcpyKind
        host_in = np.ascontiguousarray(x, dtype=self.input_dtype)
        self._check_shape(host_in.shape)
        in_name, out_name = self._names
        with self._lock:
            if not self._context.set_input_shape(in_name, host_in.shape):
                raise UserError(f"the engine does not take input shape {host_in.shape} (batch <= {self.max_batch}, "
                                f"sizes {self.min_size}..{self.max_size}): rebuild it with a wider profile")
            host_out = np.empty(tuple(self._context.get_tensor_shape(out_name)), self._output_dtype)
            in_ptr = self._device_buffer(in_name, host_in.nbytes)
            out_ptr = self._device_buffer(out_name, host_out.nbytes)
            self._bind(in_name, in_ptr)
            self._bind(out_name, out_ptr)
            cuda_call(cudart, cudart.cudaMemcpyAsync(in_ptr, host_in.ctypes.data, host_in.nbytes,
                                                     kinds.cudaMemcpyHostToDevice, self._stream), "copy to the GPU")
            if not self._context.execute_async_v3(int(self._stream)):
                raise DeviceError("TensorRT failed to enqueue the engine (execute_async_v3): "
                                  "see the TensorRT log above")
            cuda_call(cudart, cudart.cudaMemcpyAsync(host_out.ctypes.data, out_ptr, host_out.nbytes,
                                                     kinds.cudaMemcpyDeviceToHost, self._stream), "copy from the GPU")
            cuda_call(cudart, cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return host_out.astype(np.float32, copy=False)

    def gpu_peak_mb(self) -> float | None:
        """GPU memory this engine holds at its peak (MB): weights + activations + I/O buffers; None when unknown.

        An estimate from what TensorRT reports, not a measurement: the weights are counted as the
        engine file's size, the activations as the execution context's device memory
        (``device_memory_size_v2``, TensorRT 10.1+; ``device_memory_size`` before), the I/O buffers
        exactly (they only grow, so what they hold now is their peak).
        """
        activations = getattr(self._engine, "device_memory_size_v2", None)
        if activations is None:
            activations = getattr(self._engine, "device_memory_size", None)
        if activations is None:
            return None
        buffers = sum(size for _, size in self._buffers.values())
        return (self._engine_bytes + int(activations) + buffers) / 2**20

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
