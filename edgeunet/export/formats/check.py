"""Verification of any exported file through the runtime backend users embed (``open_backend(...).run``).

The figures come from ``export.verify`` (``parity``, ``scores``); only the way logits are produced is
new: every format runs in its own runtime, as it will on the device.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ...runtime.backends import open_backend
from ..verify import ParityError, parity, scores

# Argmax agreement with PyTorch below which a file fails (FP32: float arithmetic in another order;
# INT8: quantization noise at class boundaries).
MIN_AGREEMENT = {"fp32": 0.999, "int8": 0.97}


def backend_logits(path: str | os.PathLike, images: Sequence[np.ndarray], threads: int | None = None,
                   **backend_options) -> list[np.ndarray]:
    """Runs a model file through ``open_backend`` on each (C, H, W) image: (K, H, W) float32 logits.

    Args:
        path: Any file ``open_backend`` opens (``edgeunet.formats.MODEL_SUFFIXES``).
        images: Preprocessed images of sizes the file takes (fixed-size files: exactly its size).
        threads: Backend threads (None: the library's default).
        backend_options: ``backend``, ``precision`` (OpenVINO) or ``providers`` (ONNX Runtime).
    """
    backend = open_backend(path, threads=threads, **backend_options)
    return [backend.run(np.ascontiguousarray(x[None], dtype=np.float32))[0] for x in images]


def verify_file(path: str | os.PathLike, precision: str, reference: Sequence[np.ndarray],
                images: Sequence[np.ndarray], masks: Sequence[np.ndarray] | None = None,
                threads: int | None = None, min_agreement: float | None = None, hint: str | None = None) -> dict:
    """Checks a file against reference logits (PyTorch's, from ``verify.torch_logits``).

    Args:
        path: The exported file.
        precision: ``"fp32"`` or ``"int8"`` (picks the bound).
        reference: (K, H, W) logits of the same images by the reference model.
        images: The (C, H, W) images ``reference`` was computed on.
        masks: (H, W) ground truth; adds ``scores`` (Dice/IoU of the file and of the reference).
        threads: Backend threads.
        min_agreement: Bound on argmax agreement; None: ``MIN_AGREEMENT[precision]``.
        hint: OpenVINO's inference precision (``open_backend``'s ``precision``, e.g. ``"bf16"``); None: f32.

    Returns:
        ``parity`` (``max_abs_diff``, ``argmax_agreement``, ``pixels``), ``min_agreement`` and, with
        masks, ``scores`` and ``reference_scores``.

    Raises:
        ParityError: Argmax agreement below the bound.
    """
    logits = backend_logits(path, images, threads=threads, **({"precision": hint} if hint else {}))
    figures = parity(list(reference), logits)
    bound = MIN_AGREEMENT[precision] if min_agreement is None else min_agreement
    result = {"parity": figures, "min_agreement": bound}
    if masks is not None:
        num_classes = logits[0].shape[0]
        result["scores"] = scores(logits, list(masks), num_classes)
        result["reference_scores"] = scores(list(reference), list(masks), num_classes)
    if figures["argmax_agreement"] < bound:
        raise ParityError(f"{path} ({precision}) agrees with PyTorch on {figures['argmax_agreement']:.4%} of pixels, "
                          f"below {bound:.2%} (max |logit diff| {figures['max_abs_diff']:.3g}): "
                          "check the converter's warnings, or keep this format at FP32")
    return result
