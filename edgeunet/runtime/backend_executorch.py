"""ExecuTorch backend: an edgeunet ExecuTorch program (XNNPACK delegate, FP32 or INT8) on the CPU.

The program carries its metadata itself: a constant method ``edgeunet_metadata`` returns one JSON
string ``{"metadata": <metadata_props strings>, "min_shape": [B, C, H, W], "max_shape": [...]}``
(``export.formats.executorch`` writes it; a C++ app reads it with ``module.execute("edgeunet_metadata")``).
ExecuTorch plans memory for the largest input when the program is made, so H, W and the batch are
bounded by ``max_shape``; tiles of a Segmenter stay within them.

ExecuTorch's Python runtime passes torch tensors, so opening a program here imports torch (the
``mobile`` extra brings both); on a phone the same file runs under ExecuTorch's C++ runtime.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from ..errors import UserError, require
from .metadata import ModelMetadata

logger = logging.getLogger(__name__)

METADATA_METHOD = "edgeunet_metadata"
FIX = "export it again with the executorch exporter (edgeunet.export.formats.export_executorch)"


def set_threads(threads: int | None) -> None:
    """Sets the size of ExecuTorch's (process-wide) XNNPACK thread pool; None leaves it as it is."""
    if threads is None:
        return
    if int(threads) < 1:
        raise UserError(f"threads must be >= 1, got {threads}: or leave it unset for the ExecuTorch default")
    from executorch.extension.pybindings import portable_lib

    if portable_lib._threadpool_get_thread_count() != int(threads):
        portable_lib._unsafe_reset_threadpool(int(threads))


def read_embedded(program, source: str) -> dict:
    """The JSON object the ``edgeunet_metadata`` method of a loaded program returns."""
    if METADATA_METHOD not in program.method_names:
        raise UserError(f"{source} is not an edgeunet model (no {METADATA_METHOD} method): {FIX}")
    (text,) = program.load_method(METADATA_METHOD).execute([])
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise UserError(f"{source} has broken edgeunet metadata ({exc}): {FIX}") from None
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        raise UserError(f"{source} has no edgeunet metadata object: {FIX}")
    return data


class ExecuTorchBackend:
    """Runs an edgeunet ExecuTorch program with ExecuTorch; same interface as ``OrtBackend``.

    A lock serializes calls (an ExecuTorch method owns its planned memory), so a Segmenter on a
    program is safe to share between threads; calls run one at a time.

    Args:
        path: A program from ``export.formats.export_executorch``.
        threads: XNNPACK threads. ExecuTorch has one thread pool per process: this sets it for all.

    Attributes:
        metadata, providers (``["ExecuTorch:XNNPACK"]``), max_batch, fixed_size (as OrtBackend),
        min_size / max_size: (H, W) bounds of the program.
    """

    name = "executorch"
    providers = ["ExecuTorch:XNNPACK"]

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        require("executorch", "mobile")
        self.torch = require("torch", "mobile")
        from executorch.runtime import Runtime

        path = Path(path)
        set_threads(threads)
        try:
            program = Runtime.get().load_program(path)
        except Exception as exc:  # the pybindings raise RuntimeError with ExecuTorch's error code
            raise UserError(f"ExecuTorch cannot load {path} ({str(exc)[:300]}): {FIX}") from None
        data = read_embedded(program, str(path))
        self.metadata = ModelMetadata.from_props({str(k): str(v) for k, v in data["metadata"].items()},
                                                 source=str(path))
        self._method = program.load_method("forward")
        self._program = program  # the method refers to the program's memory
        bounds = self._method.metadata.input_tensor_meta(0).sizes()
        multiple = self.metadata.size_multiple
        low = data.get("min_shape") or [1, self.metadata.in_channels, multiple, multiple]
        high = data.get("max_shape") or list(bounds)
        self.max_batch = int(high[0])
        self.min_size, self.max_size = (int(low[2]), int(low[3])), (int(high[2]), int(high[3]))
        self.fixed_size = self.max_size if self.min_size == self.max_size else None
        self._lock = threading.Lock()
        logger.info("loaded %s with ExecuTorch (batch <= %d, sizes %s..%s)", path, self.max_batch, self.min_size,
                    self.max_size)

    def run(self, x: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 -> (B, K, H, W) float32 logits."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        batch, _, height, width = x.shape
        low, high = self.min_size, self.max_size
        if batch > self.max_batch or not (low[0] <= height <= high[0] and low[1] <= width <= high[1]):
            raise UserError(f"the program does not take input shape {x.shape} (batch <= {self.max_batch}, sizes "
                            f"{low}..{high}): export it with a larger max_size or max_batch")
        with self._lock:
            (logits,) = self._method.execute([self.torch.from_numpy(x)])
            return logits.numpy().astype(np.float32, copy=True)  # the output lives in the method's planned memory
