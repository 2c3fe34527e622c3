"""TensorRT runner for ``edgeunet bench``: a ``.engine`` through the TensorRT 10+ name-based API.

Buffers are ``torch.cuda`` tensors (torch is part of the toolkit that benchmarks), bound with
``set_tensor_address``; inference is ``execute_async_v3`` on a torch CUDA stream followed by a
synchronize, so each timed call covers the whole inference. Metadata comes from the engine's
sidecar ``<engine>.json`` written by ``edgeunet build-engine``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MissingExtraError, UserError, require
from ..runtime.backend_trt import read_sidecar
from .runners import Runner, check_size, random_input


TRT_MISSING = "TensorRT not installed: run `pip install 'edgeunet[trt]'` on an NVIDIA GPU device to bench .engine files"


def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise MissingExtraError(TRT_MISSING) from None
    return trt


class TensorRTRunner(Runner):
    """A serialized TensorRT engine with one optimization profile, on CUDA device 0."""

    backend = "tensorrt"
    device = "cuda"

    def __init__(self, path: Path):
        trt = _import_tensorrt()
        self.torch = require("torch", "train")
        if not self.torch.cuda.is_available():
            raise MissingExtraError("no CUDA GPU visible to torch: TensorRT engines run on an NVIDIA GPU with a CUDA build of torch")
        self.trt, self.path = trt, path
        self.meta = read_sidecar(path)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise UserError(f"TensorRT {trt.__version__} could not load {path}: engines are tied to a GPU and TensorRT version; rebuild it here with `edgeunet build-engine`")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        for name in (self.meta.input_name, self.meta.output_name):
            if name not in names:
                raise UserError(f"{path} has no tensor {name!r} (it has {', '.join(names)}): rebuild it from an edgeunet ONNX file")
        self.context = self.engine.create_execution_context()
        self.stream = self.torch.cuda.Stream()
        self._buffers: dict[str, object] = {}

    def _torch_dtype(self, name: str):
        return self.torch.from_numpy(np.zeros(1, dtype=self.trt.nptype(self.engine.get_tensor_dtype(name)))).dtype

    def _check_profile(self, shape: tuple[int, ...]) -> None:
        low, _, high = (tuple(s) for s in self.engine.get_tensor_profile_shape(self.meta.input_name, 0))
        if not all(lo <= s <= hi for lo, s, hi in zip(low, shape, high)):
            text = "x".join(map(str, shape))
            raise ValueError(f"shape {text} is outside the engine's profile {'x'.join(map(str, low))} .. {'x'.join(map(str, high))}: "
                             f"rebuild it with `edgeunet build-engine --shapes` covering {text}")

    def _bind(self, shape: tuple[int, ...]) -> tuple:
        """Allocates and binds (input, output) tensors for an input of ``shape`` (B, C, H, W)."""
        self._check_profile(shape)
        if not self.context.set_input_shape(self.meta.input_name, shape):
            raise ValueError(f"TensorRT refused input shape {shape} for {self.path}: rebuild the engine with a profile that covers it")
        out_shape = tuple(self.context.get_tensor_shape(self.meta.output_name))
        x = self.torch.empty(shape, dtype=self._torch_dtype(self.meta.input_name), device="cuda")
        y = self.torch.empty(out_shape, dtype=self._torch_dtype(self.meta.output_name), device="cuda")
        self.context.set_tensor_address(self.meta.input_name, x.data_ptr())
        self.context.set_tensor_address(self.meta.output_name, y.data_ptr())
        self._buffers = {"input": x, "output": y}  # keep them alive while bound
        return x, y

    def prepare(self, batch: int, size: int):
        check_size(size, self.meta)
        x, y = self._bind((batch, self.meta.in_channels, size, size))
        x.copy_(self.torch.from_numpy(random_input(batch, self.meta.in_channels, size)))
        self.torch.cuda.synchronize()
        return x, y

    def run(self, buffers) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError(f"TensorRT execution failed for {self.path}")
        self.stream.synchronize()

    def predict(self, x: np.ndarray) -> np.ndarray:
        x_gpu, y_gpu = self._bind(tuple(int(d) for d in x.shape))
        x_gpu.copy_(self.torch.from_numpy(np.ascontiguousarray(x)))
        self.torch.cuda.synchronize()
        self.run((x_gpu, y_gpu))
        return y_gpu.float().cpu().numpy()

    def reset_gpu_peak(self) -> None:
        self.torch.cuda.reset_peak_memory_stats()

    def gpu_peak_mb(self) -> float | None:
        """I/O buffers (torch allocator peak) + the context's activation memory + the engine's weights (about its file size)."""
        activations = getattr(self.engine, "device_memory_size_v2", None) or getattr(self.engine, "device_memory_size", 0)
        total = self.torch.cuda.max_memory_allocated() + int(activations) + self.path.stat().st_size
        return total / 2**20

    def close(self) -> None:
        self._buffers, self.context, self.engine = {}, None, None
        self.torch.cuda.empty_cache()
