"""LiteRT backend: an edgeunet LiteRT file (FP32 or INT8) with the XNNPACK delegate on the CPU.

LiteRT's converter fixes the input shape, so every LiteRT file takes one (B, C, H, W): the backend
reports it as ``fixed_size`` and a Segmenter tiles larger images at that size (and pads smaller
ones up to it). The metadata is in the sidecar ``<file>.json`` (``runtime.sidecar``).

An INT8 file takes int8 input and gives int8 output: ``run`` quantizes the float32 input with the
input tensor's scale and zero point (``q = round(x / scale) + zero_point``, clipped to int8) and
dequantizes the logits (``(q - zero_point) * scale``), so callers see float32 either way.
``ai_edge_litert`` is imported only when a file is opened (``pip install 'edgeunet[mobile]'``).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from ..errors import UserError, require
from .sidecar import read_sidecar

logger = logging.getLogger(__name__)

FIX = "export it with the litert exporter (edgeunet.export.formats.export_litert), which writes it"


def quantize(x: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    """float32 -> integer ``dtype`` with ``round(x / scale) + zero_point``, clipped to the dtype's range."""
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer tensor -> float32 ``(q - zero_point) * scale``."""
    return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32, copy=False)


class LiteRtBackend:
    """Runs an edgeunet LiteRT file with LiteRT's interpreter; same interface as ``OrtBackend``.

    A lock serializes calls (an interpreter owns its tensors), so a Segmenter on a LiteRT file is
    safe to share between threads; calls run one at a time.

    Args:
        path: A LiteRT file with its ``<file>.json`` sidecar.
        threads: Interpreter and XNNPACK threads (None: LiteRT's default).

    Attributes:
        metadata, providers (``["LiteRT:XNNPACK"]``), max_batch, fixed_size (as OrtBackend),
        input_dtype: float32, or int8 for an INT8 file.
        input_shape: The (B, C, H, W) the file takes.
    """

    name = "litert"
    providers = ["LiteRT:XNNPACK"]

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        interpreter_module = require("ai_edge_litert.interpreter", "mobile", package="ai-edge-litert")
        path = Path(path)
        if threads is not None and int(threads) < 1:
            raise UserError(f"threads must be >= 1, got {threads}: or leave it unset for the LiteRT default")
        self.metadata = read_sidecar(path, fix=FIX)
        try:  # the default op resolver applies the XNNPACK delegate, with the interpreter's threads
            self._interpreter = interpreter_module.Interpreter(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"LiteRT cannot load {path} ({str(exc)[:300]}): {FIX}") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"])  # (B, C, H, W)
        batch, _, height, width = self.input_shape
        self.max_batch, self.fixed_size = batch, (height, width)
        self.input_dtype = np.dtype(self._input["dtype"])
        self._lock = threading.Lock()
        logger.info("loaded %s with LiteRT (%s input, %dx%d)", path, self.input_dtype, height, width)

    def _one(self, x: np.ndarray) -> np.ndarray:
        """One (max_batch, C, H, W) float32 batch -> float32 logits (the lock held)."""
        scale, zero_point = self._input["quantization"]
        if self.input_dtype.kind == "f":
            feed = x.astype(self.input_dtype, copy=False)
        else:
            feed = quantize(x, self.input_dtype, scale, zero_point)
        self._interpreter.set_tensor(self._input["index"], feed)
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output["index"])
        if out.dtype.kind == "f":
            return out.astype(np.float32, copy=True)
        scale, zero_point = self._output["quantization"]
        return dequantize(out, scale, zero_point)

    def run(self, x: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 -> (B, K, H, W) float32 logits; H, W must be ``fixed_size``."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if tuple(x.shape[1:]) != self.input_shape[1:]:
            raise UserError(f"the LiteRT file takes inputs of shape {self.input_shape}, got {x.shape}: "
                            "tile or pad to its fixed size (Segmenter does), or export another size")
        outputs = []
        with self._lock:
            for first in range(0, len(x), self.max_batch):
                chunk = x[first:first + self.max_batch]
                short = self.max_batch - len(chunk)
                if short:  # a file made for batch B takes exactly B images: pad the last chunk
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], short, axis=0)])
                outputs.append(self._one(chunk)[:self.max_batch - short])
        return np.concatenate(outputs) if len(outputs) > 1 else outputs[0]
