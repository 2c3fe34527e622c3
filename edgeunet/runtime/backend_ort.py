"""ONNX Runtime backend: an edgeunet ``.onnx`` file (FP32, FP16 or INT8) on CPU or CUDA."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .metadata import ModelMetadata

logger = logging.getLogger(__name__)

# Execution providers tried by default, best first. ONNX Runtime's TensorRT provider is left
# out: it builds a new engine for every new input shape, which stalls a runtime fed images
# of varying sizes; use a TensorRT ``.engine`` (backend "tensorrt") for TensorRT, or name
# the provider explicitly.
DEFAULT_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def default_providers() -> list[str]:
    """The DEFAULT_PROVIDERS this onnxruntime build has (CPU always)."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    return [p for p in DEFAULT_PROVIDERS if p in available] or ["CPUExecutionProvider"]


def _check_providers(providers: list[str]) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        raise ValueError(f"execution provider(s) {', '.join(missing)} are not in this onnxruntime build: "
                         f"use some of {', '.join(available)} (or install onnxruntime-gpu for CUDA)")
    return list(providers)


def _fixed(dim) -> int | None:
    """A graph dimension as an int when it is fixed, None when it is symbolic."""
    return dim if isinstance(dim, int) and dim > 0 else None


class OrtBackend:
    """Runs an edgeunet ONNX model with ONNX Runtime.

    ``run`` is safe to call from several threads at once (``InferenceSession.run`` is).

    Attributes:
        metadata: What the file says about itself.
        providers: Execution providers in use, best first.
        max_batch: Largest batch the graph takes (None: any).
        fixed_size: (H, W) when the graph fixes them, else None.
    """

    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None, providers: list[str] | None = None):
        import onnxruntime as ort

        path = Path(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            if int(threads) < 1:
                raise ValueError(f"threads must be >= 1, got {threads}: or leave it unset for the ONNX Runtime default")
            options.intra_op_num_threads = int(threads)
        providers = _check_providers(providers) if providers else default_providers()
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{path} is not a loadable ONNX model ({reason}): give an .onnx file written by `edgeunet export`") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ModelMetadata.from_props(props, source=str(path))
        self.providers = self.session.get_providers()
        inputs = {i.name: i for i in self.session.get_inputs()}
        if self.metadata.input_name not in inputs:
            raise ValueError(f"{path} has no input {self.metadata.input_name!r} (it has {', '.join(inputs)}): re-export it with `edgeunet export`")
        graph_input = inputs[self.metadata.input_name]
        self.input_dtype = _NUMPY_TYPES.get(graph_input.type, np.float32)
        batch, _, height, width = (list(graph_input.shape) + [None] * 4)[:4]
        self.max_batch = _fixed(batch)
        h, w = _fixed(height), _fixed(width)
        self.fixed_size = (h, w) if h and w else None
        logger.info("loaded %s with %s", path, ", ".join(self.providers))

    def run(self, x: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 -> (B, K, H, W) float32 logits."""
        feed = {self.metadata.input_name: np.ascontiguousarray(x, dtype=self.input_dtype)}
        (logits,) = self.session.run([self.metadata.output_name], feed)
        return logits.astype(np.float32, copy=False)
