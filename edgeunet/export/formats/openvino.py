"""OpenVINO IR (the model file and its weights file) from the FP32 ONNX file; INT8 through NNCF.

* FP32: ``ov.convert_model`` of the ONNX file, saved with ``compress_to_fp16=False`` (the default
  would store FP16 weights). The runtime asks for f32 inference so the file computes what was verified.
* INT8: ``nncf.quantize`` (symmetric per-channel weights and activations, fast bias correction)
  calibrated on the calibration images; with ``accuracy_control``,
  ``nncf.quantize_with_accuracy_control`` measures mean Dice on the verification images and puts the
  layers that cost the most back to float until the drop is within ``max_dice_drop``.
  Given an INT8 (QDQ) ONNX file instead, its Q/DQ pairs become the IR's FakeQuantize as they are.

The edgeunet metadata goes into the IR's ``rt_info["edgeunet"]`` (``runtime.backend_openvino``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...atomic import atomic_path, staging_dir
from ...errors import UserError, require
from ...formats import BY_NAME
from ...runtime.backend_openvino import ONNX_RT_INFO_KEY, RT_INFO_KEY, rt_info_props
from ...runtime.metadata import ModelMetadata
from ..quiet import quiet
from ..samples import fit_to_multiple
from ..verify import scores
from .common import fit_images, made_facts, versions
from .options import FormatOptions

logger = logging.getLogger(__name__)

OPENVINO = BY_NAME["openvino"]


def _dice_validation(num_classes: int, output_name: str):
    """NNCF's ``validation_fn``: (compiled model, (image, mask) items) -> (mean Dice, Dice of each item)."""

    def validate(compiled, items) -> tuple[float, list[float]]:
        per_item = []
        for image, mask in items:
            logits = compiled(image[None])[compiled.output(output_name)][0]
            dice = scores([logits], [mask], num_classes)["mean_dice"]
            per_item.append(1.0 if dice is None else float(dice))  # no foreground in either: a perfect match
        return float(np.mean(per_item)), per_item

    return validate


def _quantize(nncf, model, calibration: list[np.ndarray], options: FormatOptions, meta: ModelMetadata,
              validation: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None):
    """The NNCF-quantized ``ov.Model`` and what was done, for the facts."""
    dataset = nncf.Dataset(calibration, lambda x: x[None])
    settings = {"tool": "nncf", "calibration_images": len(calibration), "preset": "performance",
                "fast_bias_correction": True}
    if not options.accuracy_control:
        with quiet("nncf.quantize"):
            quantized = nncf.quantize(model, dataset, preset=nncf.QuantizationPreset.PERFORMANCE,
                                      subset_size=len(calibration))
        return quantized, {**settings, "method": "quantize"}
    if validation is None:
        raise UserError("accuracy control needs verification images with masks: pass validation=(images, masks)")
    images, masks = validation
    items = [fit_to_multiple(np.asarray(x, np.float32), np.asarray(m), meta.size_multiple)
             for x, m in zip(images, masks, strict=True)]
    val = nncf.Dataset(items, lambda item: item[0][None])
    with quiet("nncf.quantize_with_accuracy_control"):
        quantized = nncf.quantize_with_accuracy_control(
            model, dataset, val, _dice_validation(meta.num_classes, meta.output_name),
            max_drop=options.max_dice_drop, drop_type=nncf.DropType.ABSOLUTE,
            preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(calibration))
    return quantized, {**settings, "method": "quantize_with_accuracy_control", "max_dice_drop": options.max_dice_drop,
                       "validation_images": len(items)}


def save_ir(ov, model, out_path: Path) -> list[Path]:
    """Saves ``model`` as ``out_path`` and its weights file, each appearing whole through ``edgeunet.atomic``
    (the model file last, so a model file always has its weights beside it)."""
    tmp = staging_dir(out_path)
    files = [out_path.with_suffix(suffix) for suffix in OPENVINO.companions] + [out_path]
    try:
        ov.save_model(model, str(tmp / out_path.name), compress_to_fp16=False)
        for path in files:
            with atomic_path(path) as part:
                shutil.move(tmp / path.name, part)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files[::-1]


def export_openvino(onnx_path: str | os.PathLike, out_path: str | os.PathLike,
                    calibration: Sequence[np.ndarray] | None = None, options: FormatOptions = FormatOptions(),
                    validation: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None) -> dict:
    """Writes an OpenVINO IR of an edgeunet ONNX file.

    Args:
        onnx_path: The FP32 ``model.onnx`` (or, for ``precision="int8"``, an INT8 QDQ ``.onnx`` to convert as is).
        out_path: The IR's model file to write (``formats.BY_NAME["openvino"].suffix``); the weights go beside it.
        calibration: Preprocessed (C, H, W) float32 images for INT8 (cropped to the size multiple here).
        options: ``precision``, ``accuracy_control`` and ``max_dice_drop`` apply.
        validation: ``(images, masks)`` ((C, H, W) float32, (H, W) int) for accuracy control.

    Returns:
        Facts: ``format``, ``file``, ``files``, ``size_bytes``, ``precision``, ``versions``,
        ``quantization`` (None for FP32) and ``source`` (the ONNX file name).
    """
    ov = require("openvino", "openvino")
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if out_path.suffix.lower() != OPENVINO.suffix:
        raise UserError(f"{out_path} must end in {OPENVINO.suffix} (OpenVINO writes the weights beside it as "
                        f"{OPENVINO.companions[0]})")
    if not onnx_path.is_file():
        raise UserError(f"{onnx_path} does not exist: export the ONNX model first with `edgeunet export`")
    model = ov.convert_model(str(onnx_path))
    props = rt_info_props(model, ONNX_RT_INFO_KEY)
    meta = ModelMetadata.from_props(props, source=str(onnx_path))
    quantization = None
    if meta.precision == "int8":
        if options.precision != "int8":
            raise UserError(f"{onnx_path} is INT8: give the FP32 model.onnx for an FP32 OpenVINO file")
        quantization = {"tool": "onnxruntime", "method": "QDQ ONNX converted as is"}
    elif meta.precision != "fp32":
        raise UserError(f"{onnx_path} is {meta.precision}: give the FP32 model.onnx")
    elif options.precision == "int8":
        nncf = require("nncf", "openvino")
        images = fit_images(calibration or [], meta.size_multiple)
        model, quantization = _quantize(nncf, model, images, options, meta, validation)
    props = {**props, "precision": options.precision}
    for key, value in props.items():
        model.set_rt_info(value, [RT_INFO_KEY, key])
    files = save_ir(ov, model, out_path)
    logger.info("wrote %s (%s OpenVINO IR) from %s", out_path, options.precision, onnx_path)
    return made_facts("openvino", files, options.precision, versions("openvino", "nncf"),
                      quantization=quantization, source=onnx_path.name)
