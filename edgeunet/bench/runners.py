"""One runner per backend: PyTorch for ``.pt``, ONNX Runtime for ``.onnx``, TensorRT for ``.engine``.

A runner loads a model once, then for each (batch, size) ``prepare`` makes an input in the
backend's own memory (random values: latency does not depend on them) and ``run`` does one
synchronous inference on it, so the timing loop measures the same thing for every backend.
``predict`` takes a numpy (1, C, H, W) float32 batch and returns (1, K, H, W) float32 logits,
for accuracy. Heavy imports (torch, onnxruntime, tensorrt) happen when a runner is opened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from ..errors import UserError, require
from ..runtime.metadata import ModelMetadata


BACKENDS = ("torch", "onnxruntime", "tensorrt")
BACKEND_OF_SUFFIX = {".pt": "torch", ".pth": "torch", ".onnx": "onnxruntime", ".engine": "tensorrt"}
PRECISIONS = ("fp32", "fp16", "int8")
_SEED = 0


def backend_for(path: str | Path) -> str:
    """The backend that runs a model file, from its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in BACKEND_OF_SUFFIX:
        raise UserError(f"{path}: unknown model file type {suffix!r}: give a checkpoint (.pt), an ONNX model (.onnx) or a TensorRT engine (.engine)")
    return BACKEND_OF_SUFFIX[suffix]


def precision_from_name(path: str | Path) -> str:
    """Precision guessed from a file name (``model.int8.onnx`` -> int8), used before a file is opened."""
    parts = Path(path).name.lower().split(".")
    return next((p for p in PRECISIONS if p in parts[1:]), "fp32")


def check_size(size: int, meta: ModelMetadata, static_hw: tuple[int, int] | None = None) -> None:
    """Raises ValueError naming valid sizes when ``size`` does not fit the model."""
    multiple = meta.size_multiple
    if size < multiple or size % multiple:
        lower = max(multiple, size // multiple * multiple)
        raise ValueError(f"size {size} is not a multiple of {multiple} (this model's size multiple): use {lower} or {lower + multiple}")
    if static_hw and static_hw != (size, size):
        raise ValueError(f"the model was exported for {static_hw[0]}x{static_hw[1]} images only: bench it with --sizes {static_hw[0]}")


def random_input(batch: int, channels: int, size: int, dtype=np.float32) -> np.ndarray:
    """(batch, channels, size, size) standard normal values, the same for every backend."""
    return np.random.default_rng(_SEED).standard_normal((batch, channels, size, size)).astype(dtype)


class Runner(ABC):
    """Common interface; subclasses set ``backend``, ``device`` and ``meta`` in ``__init__``."""

    backend = ""
    device = "cpu"
    meta: ModelMetadata

    @abstractmethod
    def prepare(self, batch: int, size: int):
        """Input of shape (batch, C, size, size) held by the backend, ready for ``run``."""

    @abstractmethod
    def run(self, x) -> None:
        """One inference on a prepared input; returns when its results are ready."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """(1, C, H, W) float32 -> (1, K, H, W) float32 logits."""

    def reset_gpu_peak(self) -> None:
        """Starts a new GPU memory peak (no-op off the GPU)."""

    def gpu_peak_mb(self) -> float | None:
        """GPU memory in use at the peak since ``reset_gpu_peak`` (MB), or None where unknown."""
        return None

    def close(self) -> None:
        """Frees the model."""


class TorchRunner(Runner):
    """An edgeunet checkpoint in PyTorch eval mode, on CUDA when asked and available."""

    backend = "torch"

    def __init__(self, path: Path, device: str = "cpu"):
        self.torch = require("torch", "train")
        from ..checkpoint import model_from_checkpoint

        model, ckpt = model_from_checkpoint(path)
        cfg = model.cfg
        self.meta = ModelMetadata(in_channels=cfg.in_channels, num_classes=cfg.num_classes, size_multiple=cfg.size_multiple,
                                  preprocessing=ckpt["preprocessing"], class_names=ckpt["class_names"], precision="fp32",
                                  edgeunet_version=ckpt.get("edgeunet_version", ""), model_config=ckpt["model_config"])
        self.device = device
        self.model = model.to(device)

    def _sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def prepare(self, batch: int, size: int):
        check_size(size, self.meta)
        x = self.torch.from_numpy(random_input(batch, self.meta.in_channels, size)).to(self.device)
        self._sync()
        return x

    def run(self, x) -> None:
        with self.torch.inference_mode():
            self.model(x)
        self._sync()

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(x).to(self.device)).float().cpu().numpy()

    def reset_gpu_peak(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.reset_peak_memory_stats()

    def gpu_peak_mb(self) -> float | None:
        return self.torch.cuda.max_memory_allocated() / 2**20 if self.device == "cuda" else None

    def close(self) -> None:
        self.model = None
        if self.device == "cuda":
            self.torch.cuda.empty_cache()


class OrtRunner(Runner):
    """An edgeunet ONNX file in ONNX Runtime: CUDA provider when asked and present, else CPU.

    Inputs are numpy arrays, so on CUDA each timed call includes the host-to-device copy of the
    input and the copy of the logits back, as an application feeding numpy images would see.
    """

    backend = "onnxruntime"

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
        use_cuda = device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            raise UserError(f"{path} could not be loaded by ONNX Runtime ({type(exc).__name__}: {str(exc)[:200]}): re-export it") from None
        self.meta = ModelMetadata.from_props(dict(self.session.get_modelmeta().custom_metadata_map), source=str(path))
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        graph_input = self.session.get_inputs()[0]
        self.dtype = np.float16 if graph_input.type == "tensor(float16)" else np.float32
        h, w = graph_input.shape[2:]
        self.static_hw = (h, w) if isinstance(h, int) and isinstance(w, int) else None

    def prepare(self, batch: int, size: int):
        check_size(size, self.meta, self.static_hw)
        return random_input(batch, self.meta.in_channels, size, self.dtype)

    def run(self, x) -> None:
        self.session.run([self.meta.output_name], {self.meta.input_name: x})

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([self.meta.output_name], {self.meta.input_name: x.astype(self.dtype, copy=False)})[0]
        return out.astype(np.float32, copy=False)

    def close(self) -> None:
        self.session = None


def open_runner(path: str | Path, device: str = "cpu", threads: int | None = None) -> Runner:
    """Opens ``path`` with the runner of its backend.

    Args:
        path: ``.pt``, ``.onnx`` or ``.engine`` file.
        device: "cpu" or "cuda" (engines always run on CUDA).
        threads: ONNX Runtime intra-op threads (PyTorch threads are set process-wide by the caller).

    Raises:
        FileNotFoundError, UserError, MissingExtraError: naming the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    backend = backend_for(path)
    if backend == "torch":
        return TorchRunner(path, device)
    if backend == "onnxruntime":
        return OrtRunner(path, device, threads)
    from .runner_trt import TensorRTRunner

    return TensorRTRunner(path)

