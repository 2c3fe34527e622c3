"""INT8 ONNX by static post-training quantization with ONNX Runtime (QDQ format).

Two targets write different files:

* ``cpu``: uint8 activations (asymmetric), int8 per-channel weights; ``reduce_range`` (7-bit
  weights) on x86 CPUs without VNNI, where 8-bit products can saturate the 16-bit
  intermediate sums of the non-VNNI kernels. ONNX Runtime's CPU kernels run this fastest.
* ``tensorrt``: TensorRT's explicit quantization takes symmetric int8 only (zero points 0)
  for activations and per-channel weights. Q/DQ sit on the inputs of every Conv and not on
  its output, so TensorRT fuses DQ -> Conv -> ReLU -> Q into one int8 kernel; Concat is
  left to TensorRT, which moves the Q/DQ of the following Conv across it.

``quant_pre_process`` with symbolic shape inference fails on U-Nets with dynamic H and W
("Incomplete symbolic shape inference"): the skip Concat joins dims the symbolic engine
cannot prove equal. The ONNX shape inference and the ORT graph optimization it also runs
work, so the symbolic step is skipped; the result keeps dynamic batch, height and width.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import platform
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import UserError, require
from .onnx import save_onnx, set_metadata
from .options import CALIB_METHODS, TARGETS
from .qdq_graph import dequantize_after_depth_to_space, share_concat_scales

logger = logging.getLogger(__name__)

FLAVOUR_KEY = "int8_flavour"  # metadata_props key: the --target (build-engine takes "tensorrt" files only)
QUANT_FORMATS = ("QDQ", "QOperator")
WEIGHT_TYPES = ("QInt8", "QUInt8")
PERCENTILE = 99.999  # of |activation| for the percentile calibrator


def cpu_lacks_vnni(machine: str | None = None, cpuinfo: str | None = None) -> bool:
    """True on x86 CPUs without an 8-bit dot-product instruction (AVX512-VNNI or AVX-VNNI).

    Args:
        machine: ``platform.machine()`` value; read from this host when None.
        cpuinfo: Text of ``/proc/cpuinfo``; read from this host when None.
    """
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False  # ARM and others: no 16-bit saturation issue in ORT's int8 kernels
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return True  # unknown x86 CPU: the safe choice
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return not ({"avx512_vnni", "avx_vnni"} & flags)


def resolve_reduce_range(target: str, reduce_range: bool | None = None) -> bool:
    """The one place ``reduce_range`` is decided: None means on for ``cpu`` on x86 without VNNI; ``tensorrt`` is
    always off (asking for it there is a UserError)."""
    if target in ("tensorrt", "arm"):
        if reduce_range:
            raise UserError(f"reduce_range does not apply to --target {target} (7-bit weights work around x86 "
                            "CPUs without VNNI; this target uses full 8-bit ranges): drop it")
        return False
    return cpu_lacks_vnni() if reduce_range is None else bool(reduce_range)


def quant_settings(target: str, reduce_range: bool | None = None) -> dict:
    """The quantize_static options for a deployment target.

    Args:
        target: ``cpu`` or ``tensorrt``.
        reduce_range: 7-bit weights; None decides from this CPU for ``cpu`` (on when x86
            without VNNI) and is off for ``tensorrt``.

    Returns:
        Dict with ``activation_type`` / ``weight_type`` (``QUInt8``/``QInt8`` names),
        ``per_channel``, ``reduce_range`` and ``extra_options``.
    """
    if target not in TARGETS:
        raise UserError(f"unknown --target {target!r}: use one of {', '.join(TARGETS)}")
    reduce_range = resolve_reduce_range(target, reduce_range)
    if target in ("cpu", "arm"):
        return {
            # x86: u8s8, VNNI's fast path; ARM: s8s8, ONNX Runtime's and XNNPACK's (dot-product instructions)
            "activation_type": "QUInt8" if target == "cpu" else "QInt8",
            "weight_type": "QInt8",
            "per_channel": True,
            "reduce_range": reduce_range,
            "extra_options": {"WeightSymmetric": True},
        }
    return {
        "activation_type": "QInt8",
        "weight_type": "QInt8",
        "per_channel": True,
        "reduce_range": False,
        "extra_options": {
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            # Q/DQ only on the inputs of Conv (TensorRT's placement advice): no Q/DQ
            # between Conv and ReLU, so TensorRT fuses DQ -> Conv -> ReLU -> Q.
            "OpTypesToExcludeOutputQuantization": ["Conv", "ConvTranspose"],
        },
    }


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
    rewrites of ``int8_graph`` (``rewrite=False`` skips them: the profile's "before")."""
    onnx = require("onnx", "train")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .int8_graph import space_to_depth_stem

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
        target: ``cpu`` or ``tensorrt``.
        reduce_range: See ``quant_settings``.
        nodes_to_exclude: Node names left in float (the INT8 search's float groups).
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
    settings = {"quant_format": "QDQ", **quant_settings(target, reduce_range), **(overrides or {})}
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
    dst = Path(dst)
    raw = dst.with_name(f".{dst.name}.raw{os.getpid()}")
    chatter = io.StringIO()  # the histogram calibrators print progress to stdout; library code must not
    try:
        with contextlib.redirect_stdout(chatter):
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
                nodes_to_exclude=list(nodes_to_exclude),
                extra_options=extra,
                calibration_cache_path=calibration_cache,
            )
        model_proto = onnx.load(str(raw))
        rewrites = {"shared_concat_scales": share_concat_scales(model_proto),
                    "dequantize_after_depth_to_space": dequantize_after_depth_to_space(model_proto)}
    finally:
        raw.unlink(missing_ok=True)
        logger.debug("quantize_static said: %s", chatter.getvalue().strip())
    set_metadata(model_proto, {**props, FLAVOUR_KEY: target})
    save_onnx(model_proto, dst)
    logger.info("quantized %s for %s with %s calibration on %d images", dst, target, calib_method, len(inputs))
    return {"target": target, "calib_method": calib_method, **settings, "extra_options": extra,
            "nodes_to_exclude": sorted(nodes_to_exclude), "qdq_rewrites": rewrites}
