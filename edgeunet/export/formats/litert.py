"""LiteRT file from a checkpoint, at one fixed size; INT8 through PT2E.

* FP32: ``litert_torch.convert(model, (example,))`` (litert-torch is the renamed ai-edge-torch).
  Its converter does not take dynamic H and W, so a file has one (B, C, H, W): ``img_size``
  (default 256) and ``max_batch``; a Segmenter tiles larger images at that size.
* INT8: the PT2E model of ``pt2e.quantize_pt2e`` (calibrated on the calibration images, fitted to
  the file's size) converted with a static ``QuantConfig``: int8 kernels, and int8 input and output
  tensors, which ``runtime.backend_litert`` quantizes and dequantizes with their scale and zero point.

The metadata goes into the sidecar ``<file>.json`` (``runtime.sidecar``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...atomic import atomic_path
from ...errors import UserError, require
from ...formats import BY_NAME
from ...runtime.sidecar import write_sidecar
from ...sizes import check_multiple
from ..quiet import quiet
from .common import checkpoint_props, environment_set, fit_images, load_model, made_facts, versions
from .options import FormatOptions
from .pt2e import quantize_pt2e

logger = logging.getLogger(__name__)

LITERT = BY_NAME["litert"]


def static_quant_config():
    """The litert-torch ``QuantConfig`` that tells its converter the Q/DQ graph is static INT8."""
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    return QuantConfig(pt2e_quantizer=PT2EQuantizer().set_global(config))


def export_litert(checkpoint, out_path: str | os.PathLike, calibration: Sequence[np.ndarray] | None = None,
                  options: FormatOptions = FormatOptions()) -> dict:
    """Writes a fixed-size LiteRT file of a checkpoint and its metadata sidecar (``<file>.json``).

    Args:
        checkpoint: ``best.pt`` path or checkpoint dict.
        out_path: The LiteRT file to write (``formats.BY_NAME["litert"].suffix``), atomically.
        calibration: Preprocessed (C, H, W) float32 images for INT8 (cropped or padded to the file's size here).
        options: ``precision``, ``img_size`` (the fixed side, default 256) and ``max_batch`` apply.

    Returns:
        Facts: ``format``, ``file``, ``files`` (the LiteRT file and its sidecar), ``size_bytes``,
        ``precision``, ``versions``, ``input_shape`` ([B, C, H, W]) and ``quantization`` (None for FP32).
    """
    torch = require("torch", "train")
    litert_torch = require("litert_torch", "mobile", package="litert-torch")
    out_path = Path(out_path)
    if out_path.suffix.lower() != LITERT.suffix:
        raise UserError(f"{out_path} must end in {LITERT.suffix}")
    model, ckpt = load_model(checkpoint)
    cfg = model.current_config()
    side = options.fixed_size
    check_multiple(side, cfg.size_multiple, "img_size")
    shape = [options.max_batch, cfg.in_channels, side, side]
    module, quant_config, quantization = model, None, None
    with environment_set("LITERT_TORCH_SHOW_PROGRESS", "n"), quiet("litert-torch"):
        if options.precision == "int8":
            images = fit_images(calibration or [], cfg.size_multiple, exact=side)
            module = quantize_pt2e(torch, model, images, shape, shape, cfg.size_multiple, fold_quantize=False)
            from torchao.quantization.pt2e import move_exported_model_to_eval

            module = move_exported_model_to_eval(module)
            quant_config = static_quant_config()
            quantization = {"tool": "torchao pt2e", "quantizer": "XNNPACKQuantizer", "per_channel": True,
                            "calibration_images": len(images), "io": "int8"}
        edge_model = litert_torch.convert(module, (torch.zeros(shape),), quant_config=quant_config)
        with atomic_path(out_path) as tmp:
            edge_model.export(str(tmp))
    props = checkpoint_props(model, ckpt, options.precision)
    sidecar = write_sidecar(out_path, props, {"format": "litert", "file": out_path.name, "input_shape": shape,
                                             "precision": options.precision})
    logger.info("wrote %s (%s LiteRT, input %s)", out_path, options.precision, shape)
    return made_facts("litert", [out_path, sidecar], options.precision,
                      versions("litert-torch", "ai-edge-litert", "torch", "torchao", "executorch"),
                      input_shape=shape, quantization=quantization)
