"""ExecuTorch program (XNNPACK delegate) from a checkpoint; INT8 through PT2E.

* FP32: ``torch.export.export`` with dynamic batch, H and W (multiples of the size multiple, up to
  ``max_batch`` and ``max_size``: ExecuTorch plans memory for the largest input), then
  ``to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])`` and ``to_executorch``.
* INT8: PT2E post-training quantization: ``prepare_pt2e`` with the ``XNNPACKQuantizer``
  (``get_symmetric_quantization_config(is_per_channel=True)``: int8 per-channel symmetric weights,
  int8 per-tensor activations), the calibration images run through the observed model,
  ``convert_pt2e``, then the same lowering; XNNPACK runs the quantized convolutions in int8.

The metadata travels inside the program, as the constant method ``edgeunet_metadata``
(``runtime.backend_executorch``). The executorch wheel does not check the torch version it is
used with: this was made with executorch 1.5.1 next to torch 2.13.0.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...atomic import write_bytes
from ...errors import UserError, require
from ...formats import BY_NAME
from ...runtime.backend_executorch import METADATA_METHOD
from ...sizes import check_multiple
from ..quiet import quiet
from .common import checkpoint_props, fit_images, load_model, made_facts, versions
from .options import FormatOptions
from .pt2e import export_program, quantize_pt2e

logger = logging.getLogger(__name__)

EXECUTORCH = BY_NAME["executorch"]


def program_shapes(in_channels: int, multiple: int, options: FormatOptions) -> tuple[list[int], list[int]]:
    """([B, C, H, W] smallest, [B, C, H, W] largest) input the program takes."""
    if options.img_size is not None:
        check_multiple(options.img_size, multiple, "img_size")
        side = options.img_size
        return [1, in_channels, side, side], [options.max_batch, in_channels, side, side]
    largest = options.max_size // multiple * multiple
    if largest < multiple:
        raise UserError(f"max_size {options.max_size} is below this model's size multiple {multiple}: "
                        f"use {multiple * 64} or another multiple of {multiple}")
    return [1, in_channels, multiple, multiple], [options.max_batch, in_channels, largest, largest]


def export_executorch(checkpoint, out_path: str | os.PathLike, calibration: Sequence[np.ndarray] | None = None,
                      options: FormatOptions = FormatOptions()) -> dict:
    """Writes an ExecuTorch program (XNNPACK) of a checkpoint.

    Args:
        checkpoint: ``best.pt`` path or checkpoint dict (a pruned model keeps its widths).
        out_path: The program file to write (``formats.BY_NAME["executorch"].suffix``), atomically.
        calibration: Preprocessed (C, H, W) float32 images for INT8 (fitted to the program's sizes here).
        options: ``precision``, ``img_size`` (static program), ``max_size`` and ``max_batch`` apply.

    Returns:
        Facts: ``format``, ``file``, ``files``, ``size_bytes``, ``precision``, ``versions``,
        ``min_shape`` / ``max_shape`` ([B, C, H, W]) and ``quantization`` (None for FP32).
    """
    torch = require("torch", "train")
    require("executorch", "mobile")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    out_path = Path(out_path)
    if out_path.suffix.lower() != EXECUTORCH.suffix:
        raise UserError(f"{out_path} must end in {EXECUTORCH.suffix}")
    model, ckpt = load_model(checkpoint)
    cfg = model.current_config()
    low, high = program_shapes(cfg.in_channels, cfg.size_multiple, options)
    quantization, module = None, model
    with quiet("executorch export"):
        if options.precision == "int8":
            images = fit_images(calibration or [], cfg.size_multiple, exact=options.img_size, largest=high[2])
            module = quantize_pt2e(torch, model, images, low, high, cfg.size_multiple)
            quantization = {"tool": "torchao pt2e", "quantizer": "XNNPACKQuantizer", "per_channel": True,
                            "calibration_images": len(images)}
        program = export_program(torch, module, low, high, cfg.size_multiple)
        embedded = {"metadata": checkpoint_props(model, ckpt, options.precision), "min_shape": low, "max_shape": high}
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                              constant_methods={METADATA_METHOD: json.dumps(embedded, sort_keys=True)})
        buffer = lowered.to_executorch().buffer
    write_bytes(out_path, buffer)
    logger.info("wrote %s (%s ExecuTorch program, inputs %s..%s)", out_path, options.precision, low, high)
    return made_facts("executorch", [out_path], options.precision, versions("executorch", "torch", "torchao"),
                      min_shape=low, max_shape=high, quantization=quantization)
