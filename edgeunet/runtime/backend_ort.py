"""ONNX Runtime backend: an edgeunet ``.onnx`` file (FP32, FP16 or INT8) on CPU or CUDA."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import UserError
from .metadata import ModelMetadata
from .session import DEFAULT_SPINNING, ort_session

logger = logging.getLogger(__name__)

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


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
        fixed_size: (H, W) ((D, H, W) for 3-D models) when the graph fixes them, else None.
    """

    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None, providers: list[str] | None = None,
                 spinning: str | bool = DEFAULT_SPINNING):
        path = Path(path)
        self.session = ort_session(path, threads=threads, providers=providers, spinning=spinning)
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ModelMetadata.from_props(props, source=str(path))
        self.providers = self.session.get_providers()
        inputs = {i.name: i for i in self.session.get_inputs()}
        if self.metadata.input_name not in inputs:
            raise UserError(f"{path} has no input {self.metadata.input_name!r} (it has {', '.join(inputs)}): "
                            "re-export it with `edgeunet export`")
        graph_input = inputs[self.metadata.input_name]
        self.input_dtype = _NUMPY_TYPES.get(graph_input.type, np.float32)
        shape = list(graph_input.shape) + [None] * 4
        self.max_batch = _fixed(shape[0])
        spatial = [_fixed(d) for d in shape[2:2 + self.metadata.spatial_dims]]
        self.fixed_size = tuple(spatial) if all(spatial) else None
        logger.info("loaded %s with %s", path, ", ".join(self.providers))

    def run(self, x: np.ndarray) -> np.ndarray:
        """(B, C, *spatial) float32 -> (B, K, *spatial) float32 logits."""
        feed = {self.metadata.input_name: np.ascontiguousarray(x, dtype=self.input_dtype)}
        (logits,) = self.session.run([self.metadata.output_name], feed)
        return logits.astype(np.float32, copy=False)
