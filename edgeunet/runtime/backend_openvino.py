"""OpenVINO backend: an edgeunet OpenVINO IR (model file + weights file), FP32 or INT8, on the CPU.

The IR carries the edgeunet metadata in its ``rt_info`` under ``"edgeunet"`` (the same key/value
strings as ONNX ``metadata_props``; ``export.formats.openvino`` writes them). OpenVINO also reads
an edgeunet ``.onnx`` file directly, whose ``metadata_props`` it puts under ``rt_info["framework"]``.

Precision: on CPUs with bfloat16 (AVX512-BF16, AMX) OpenVINO runs FP32 layers in bfloat16 unless
``INFERENCE_PRECISION_HINT`` says ``f32``. This backend asks for ``f32`` by default, so an FP32
file computes in FP32 as verified; ``precision="bf16"`` (or None: OpenVINO's own choice) trades
accuracy for speed. INT8 layers of an INT8 file run in INT8 whatever the hint. ``openvino`` is
imported only when a file is opened (``pip install 'edgeunet[openvino]'``).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from ..errors import UserError, require
from ..formats import BY_NAME
from .metadata import ModelMetadata

logger = logging.getLogger(__name__)

RT_INFO_KEY = "edgeunet"  # rt_info section of an edgeunet IR
ONNX_RT_INFO_KEY = "framework"  # where OpenVINO puts the metadata_props of an ONNX file it reads
PRECISIONS = ("f32", "bf16", "f16")
OPENVINO = BY_NAME["openvino"]


def rt_info_props(model, key: str) -> dict[str, str]:
    """The string entries of ``rt_info[key]`` of an ``ov.Model`` (empty when absent)."""
    if not model.has_rt_info([key]):
        return {}
    section = model.get_rt_info()[key]
    section = section.astype(dict) if hasattr(section, "astype") else section
    return {str(name): value.astype(str) if hasattr(value, "astype") else str(value) for name, value in section.items()}


def read_metadata(model, source: str) -> ModelMetadata:
    """The edgeunet metadata of an ``ov.Model``: its ``rt_info["edgeunet"]``, else the ONNX props it was read from."""
    props = rt_info_props(model, RT_INFO_KEY) or rt_info_props(model, ONNX_RT_INFO_KEY)
    return ModelMetadata.from_props(props, source=source)


def _bound(dim) -> int | None:
    """A static ``ov.Dimension`` as an int, None when dynamic."""
    return dim.get_length() if dim.is_static else None


def compile_config(threads: int | None, precision: str | None) -> dict:
    """The CPU plugin properties: latency hint, thread count and inference precision."""
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if threads is not None:
        if int(threads) < 1:
            raise UserError(f"threads must be >= 1, got {threads}: or leave it unset for the OpenVINO default")
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if precision is not None:
        if precision not in PRECISIONS:
            raise UserError(f"unknown OpenVINO precision {precision!r}: use one of {', '.join(PRECISIONS)} "
                            "(or None for OpenVINO's default, bf16 on CPUs that have it)")
        config["INFERENCE_PRECISION_HINT"] = precision
    return config


class OpenVinoBackend:
    """Runs an edgeunet model with OpenVINO; same interface as ``OrtBackend``.

    Each calling thread gets its own infer request, so one backend serves several threads.

    Args:
        path: An IR (with its weights beside it) from ``export.formats.openvino``, or an edgeunet ONNX file.
        threads: ``INFERENCE_NUM_THREADS`` (None: OpenVINO's default, one per physical core).
        precision: ``INFERENCE_PRECISION_HINT``: ``"f32"`` (default), ``"bf16"``, ``"f16"`` or None
            (OpenVINO's choice: bfloat16 on CPUs that have it).
        device: OpenVINO device name.

    Attributes:
        metadata, providers (``["OpenVINO:CPU"]``), max_batch, fixed_size (as OrtBackend),
        inference_precision (what the compiled model reports, e.g. ``"f32"``).
    """

    name = "openvino"

    def __init__(self, path: str | os.PathLike, threads: int | None = None, precision: str | None = "f32",
                 device: str = "CPU"):
        ov = require("openvino", "openvino")
        path = Path(path)
        config = compile_config(threads, precision)
        weights = path.with_suffix(OPENVINO.companions[0])
        if path.suffix.lower() == OPENVINO.suffix and not weights.is_file():
            raise UserError(f"{path} has no weights file {weights.name} beside it: copy the {OPENVINO.suffix} and "
                            f"{weights.suffix} together")
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError and its own classes
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise UserError(f"OpenVINO cannot read {path} ({reason}): give an {OPENVINO.suffix} from "
                            f"{OPENVINO.made_by}") from None
        self.metadata = read_metadata(model, str(path))
        names = {name for port in model.inputs for name in port.get_names()}
        if self.metadata.input_name not in names:
            raise UserError(f"{path} has no input {self.metadata.input_name!r} (it has {', '.join(sorted(names))}): "
                            "re-export it")
        shape = model.input(self.metadata.input_name).get_partial_shape()
        self.max_batch = _bound(shape[0])
        height, width = _bound(shape[2]), _bound(shape[3])
        self.fixed_size = (height, width) if height and width else None
        self._compiled = core.compile_model(model, device, config)
        self._output = self._compiled.output(self.metadata.output_name)
        hint = self._compiled.get_property("INFERENCE_PRECISION_HINT")  # an ov.Type
        self.inference_precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)
        self.providers = [f"OpenVINO:{device}"]
        self._local = threading.local()
        logger.info("loaded %s with OpenVINO %s on %s (%s)", path, ov.__version__, device, self.inference_precision)

    def _request(self):
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return request

    def run(self, x: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 -> (B, K, H, W) float32 logits."""
        feed = {self.metadata.input_name: np.ascontiguousarray(x, dtype=np.float32)}
        results = self._request().infer(feed, share_outputs=False)
        return np.asarray(results[self._output], dtype=np.float32)
