"""Which tensors lose most to INT8: per-tensor FP32 vs QDQ comparison (ONNX Runtime qdq_loss_debug).

Every quantized tensor gets a signal-to-quantization-noise ratio (SQNR, dB; higher is better):

* activations: ``sqnr_db`` compares the tensor of the FP32 model with the same tensor of the
  INT8 model after its Q/DQ (noise accumulated from the input up to there);
  ``local_sqnr_db`` compares it before and after its own Q/DQ inside the INT8 model.
  The local figure is only indicative: where ONNX Runtime folded a ReLU into an asymmetric
  Q/DQ (cpu target), "before" is the pre-ReLU tensor.
* weights: the FP32 weight vs its dequantized INT8 copy.

Tensors are ranked by ``sqnr_db``, the FP32 vs INT8 comparison.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .quantize import make_reader

DEBUG_IMAGES = 4  # intermediate tensors of every layer are held in memory: a few images suffice


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _flat(tensors) -> np.ndarray:
    """One float64 vector of a tensor or a list of tensors."""
    parts = tensors if isinstance(tensors, (list, tuple)) else [tensors]
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in parts])


def sqnr_db(reference, quantized) -> float:
    """10 log10(signal power / noise power) over one tensor or a list of them (dB); inf when exact.

    A tensor that is all zeros and stays so counts as exact (ORT's own function gives 0 dB).
    """
    ref, out = _flat(reference), _flat(quantized)
    noise = float(np.sum((ref - out) ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(max(float(np.sum(ref**2)), 1e-30) / noise)


def tensor_sqnr(float_model: str | os.PathLike, qdq_model: str | os.PathLike, images: list[np.ndarray],
                input_name: str = "images") -> list[dict]:
    """SQNR of every quantized activation and weight.

    Args:
        float_model: The FP32 model that was quantized (same tensor names as ``qdq_model``).
        qdq_model: The QDQ INT8 model.
        images: (C, H, W) float32 inputs; the first ``DEBUG_IMAGES`` are used.
        input_name: Graph input name.

    Returns:
        One dict per tensor: ``tensor``, ``kind`` (``activation``/``weight``), ``sqnr_db`` and
        for activations ``local_sqnr_db``; None stands for infinite (exact).
    """
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        compute_weight_error,
        create_activation_matching,
        create_weight_matching,
        modify_model_output_intermediate_tensors,
    )

    images = images[:DEBUG_IMAGES]
    with tempfile.TemporaryDirectory(prefix="edgeunet-qdq-debug-") as tmp:
        float_aug, qdq_aug = Path(tmp, "float.onnx"), Path(tmp, "qdq.onnx")
        modify_model_output_intermediate_tensors(str(float_model), str(float_aug))
        modify_model_output_intermediate_tensors(str(qdq_model), str(qdq_aug))
        float_acts = collect_activations(str(float_aug), make_reader(images, input_name))
        qdq_acts = collect_activations(str(qdq_aug), make_reader(images, input_name))
    rows = []
    matched = {k: v for k, v in create_activation_matching(qdq_acts, float_acts).items() if "float" in v}
    for name, err in compute_activation_error(matched, sqnr_db).items():
        rows.append({"tensor": name, "kind": "activation", "sqnr_db": _finite(err["xmodel_err"]),
                     "local_sqnr_db": _finite(err["qdq_err"])})
    for name, err in compute_weight_error(create_weight_matching(str(float_model), str(qdq_model)), sqnr_db).items():
        rows.append({"tensor": name, "kind": "weight", "sqnr_db": _finite(err)})
    return rows


def worst_tensors(rows: list[dict], top: int = 5) -> list[dict]:
    """The ``top`` rows with the lowest SQNR (exact tensors, None, come last)."""
    ranked = sorted(rows, key=lambda r: math.inf if r["sqnr_db"] is None else r["sqnr_db"])
    return ranked[:top]
