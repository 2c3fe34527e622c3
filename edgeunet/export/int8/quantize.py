"""INT8 ONNX by static post-training quantization with ONNX Runtime (QDQ format).

What each ``--target`` writes (activation type, symmetry, reduce_range, where Q/DQ go) is decided in
``export.targets``; this module runs ONNX Runtime's quantizer with those settings, then the exact QDQ
rewrites of ``qdq_graph``. Every INT8 file names its target in ``metadata_props["int8_flavour"]``.

``quant_pre_process`` with symbolic shape inference fails on U-Nets with dynamic H and W
("Incomplete symbolic shape inference"): the skip Concat joins dims the symbolic engine
cannot prove equal. The ONNX shape inference and the ORT graph optimization it also runs
work, so the symbolic step is skipped; the result keeps dynamic batch, height and width.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...errors import UserError, require
from ..graph_rewrites import space_to_depth_stem
from ..onnx import save_onnx, set_metadata
from ..options import CALIB_METHODS
from ..quiet import quiet
from ..targets import FLAVOUR_KEY, target_named
from .candidates import float_attention_nodes
from .qdq_graph import dequantize_after_depth_to_space, shape_before_dequantize, share_concat_scales

logger = logging.getLogger(__name__)

QUANT_FORMATS = ("QDQ", "QOperator")
WEIGHT_TYPES = ("QInt8", "QUInt8")
PERCENTILE = 99.999  # of |activation| for the percentile calibrator


def make_reader(inputs: list[np.ndarray], input_name: str):
    """A rewindable CalibrationDataReader yielding each (C, H, W) input as a (1, C, H, W) batch."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self.rewind()

        def get_next(self):
            x = next(self._items, None)
            return None if x is None else {input_name: x[None].astype(np.float32, copy=False)}

        def rewind(self):
            self._items = iter(inputs)

    return _Reader()


def prepare(src: str | os.PathLike, dst: str | os.PathLike, rewrite: bool = True) -> Path:
    """Runs ``quant_pre_process`` without symbolic shape inference (see module docstring), then the exact graph
    rewrites of ``graph_rewrites`` (``rewrite=False`` skips them: the profile's "before")."""
    onnx = require("onnx", "train")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    if rewrite:
        model_proto = onnx.load(str(dst))
        dims = model_proto.graph.input[0].type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value") and space_to_depth_stem(model_proto, dims[1].dim_value):
            onnx.checker.check_model(model_proto)
            onnx.save(model_proto, str(dst))
    return Path(dst)


def quantize_int8(
    prepared: str | os.PathLike,
    dst: str | os.PathLike,
    inputs: list[np.ndarray],
    props: dict[str, str],
    *,
    calib_method: str = "minmax",
    target: str = "cpu",
    reduce_range: bool | None = None,
    nodes_to_exclude: Sequence[str] = (),
    overrides: dict | None = None,
    calibration_cache: str | os.PathLike | None = None,
) -> dict:
    """Quantizes the prepared FP32 model (see ``prepare``) to an INT8 file (QDQ unless overridden).

    Args:
        prepared: Output of ``prepare``.
        dst: INT8 ONNX path; written atomically after ``onnx.checker``.
        inputs: Preprocessed calibration images, each (C, H, W) float32.
        props: ``metadata_props`` to write (``precision`` should be ``"int8"``); ``int8_flavour`` is set to
            ``target`` here, so every INT8 file says which flavour it is.
        calib_method: ``minmax``, ``entropy`` or ``percentile``.
        target: A ``--target`` value (``targets.TARGETS``).
        reduce_range: 7-bit weights; None decides for this CPU (``Target.reduce_range``).
        nodes_to_exclude: Node names left in float (the INT8 search's float groups); linear attention's
            summary and readout (``candidates.float_attention_nodes``) are always left in float too.
        overrides: Replaces ``quant_settings`` entries: ``per_channel``, ``reduce_range``,
            ``weight_type`` (``QInt8``/``QUInt8``) and ``quant_format`` (``QDQ``/``QOperator``).
        calibration_cache: JSON file of calibrated ranges: read when it exists, else written,
            so candidates of one search share one calibration.

    Returns:
        The settings used (JSON-able), for export.json.
    """
    onnx = require("onnx", "train")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if calib_method not in CALIB_METHODS:
        raise UserError(f"unknown --calib-method {calib_method!r}: use one of {', '.join(CALIB_METHODS)}")
    if not inputs:
        raise UserError("no calibration images: give --calib DIR with images, or --calib synthetic")
    settings = {"quant_format": "QDQ", **target_named(target).quant_settings(reduce_range), **(overrides or {})}
    if settings["quant_format"] not in QUANT_FORMATS or settings["weight_type"] not in WEIGHT_TYPES:
        raise UserError(f"unknown quantization override {overrides}: quant_format is one of {QUANT_FORMATS}, "
                        f"weight_type one of {WEIGHT_TYPES}")
    extra = dict(settings["extra_options"])
    if settings["weight_type"] == "QUInt8":
        extra.pop("WeightSymmetric", None)  # uint8 weights take an asymmetric zero point
    if calib_method == "percentile":
        extra["CalibPercentile"] = PERCENTILE
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}
    nodes_to_exclude = sorted(set(nodes_to_exclude) | float_attention_nodes(onnx.load(str(prepared))))
    dst = Path(dst)
    raw = dst.with_name(f".{dst.name}.raw{os.getpid()}")
    try:
        with quiet("quantize_static"):  # the histogram calibrators print progress; library code must not
            quantize_static(
                str(prepared),
                str(raw),
                make_reader(inputs, props.get("input_name", "images")),
                quant_format=getattr(QuantFormat, settings["quant_format"]),
                per_channel=settings["per_channel"],
                reduce_range=settings["reduce_range"],
                activation_type=getattr(QuantType, settings["activation_type"]),
                weight_type=getattr(QuantType, settings["weight_type"]),
                calibrate_method=method[calib_method],
                nodes_to_exclude=nodes_to_exclude,
                extra_options=extra,
                calibration_cache_path=calibration_cache,
            )
        model_proto = onnx.load(str(raw))
        rewrites = {"shared_concat_scales": share_concat_scales(model_proto),
                    "dequantize_after_depth_to_space": dequantize_after_depth_to_space(model_proto),
                    "shape_before_dequantize": shape_before_dequantize(model_proto)}
    finally:
        raw.unlink(missing_ok=True)
    set_metadata(model_proto, {**props, FLAVOUR_KEY: target})
    save_onnx(model_proto, dst)
    logger.info("quantized %s for %s with %s calibration on %d images", dst, target, calib_method, len(inputs))
    return {"target": target, "calib_method": calib_method, **settings, "extra_options": extra,
            "nodes_to_exclude": nodes_to_exclude, "qdq_rewrites": rewrites}
