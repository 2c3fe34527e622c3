"""ORT format from an edgeunet ONNX file (FP32 or INT8), for ONNX Runtime's mobile and minimal builds.

``onnxruntime.tools.convert_onnx_models_to_ort`` optimizes the graph (``ORT_ENABLE_ALL``, the
``Fixed`` style) and saves the result as a FlatBuffer that loads without protobuf. Its
``target_platform`` changes what is saved:

* ``arm`` (the tool's own default; phones): the NCHWc layout transformer is left out and int8
  QDQ groups may become int8 kernels (``session.qdqisint8allowed``). On x86 such a file runs
  1.4-1.7x slower than the ONNX file.
* ``amd64`` (x86): keeps the NCHWc layout, whose block size follows the converting CPU's vector
  width (AVX-512 here): convert on the kind of machine that will run the file.

The ``metadata_props`` survive the conversion, so the runtime's ``OrtBackend`` opens a ``.ort``
like an ONNX file (``Segmenter("model.ort")``).
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...atomic import atomic_path, staging_dir
from ...errors import UserError
from ...formats import BY_NAME
from ...runtime.metadata import ModelMetadata
from ...runtime.session import ort_session
from ..quiet import quiet
from .common import environment_set, made_facts, versions
from .options import FormatOptions

logger = logging.getLogger(__name__)

ORT = BY_NAME["ort"]
LEVEL_VARIABLE = "ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL"  # the tool's switch; edgeunet ships 'all'


def host_platform() -> str:
    """``"arm"`` on ARM machines, ``"amd64"`` elsewhere (x86)."""
    return "arm" if platform.machine().lower() in ("aarch64", "arm64", "armv7l", "armv8l") else "amd64"


def export_ort_format(onnx_path: str | os.PathLike, out_path: str | os.PathLike,
                      calibration: Sequence[np.ndarray] | None = None,
                      options: FormatOptions = FormatOptions()) -> dict:
    """Converts an edgeunet ONNX file to ORT format.

    Args:
        onnx_path: ``model.onnx`` (``precision="fp32"``) or ``model.int8.onnx`` (``precision="int8"``).
        out_path: The ORT-format file to write, atomically.
        calibration: Unused (the ONNX file is already quantized or not); accepted so every exporter has one signature.
        options: ``precision`` (must match the ONNX file's) and ``target_platform`` (None: this machine's) apply.

    Returns:
        Facts: ``format``, ``file``, ``files``, ``size_bytes``, ``precision``, ``versions``,
        ``target_platform``, ``optimization_style`` and ``source``.
    """
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if out_path.suffix.lower() != ORT.suffix:
        raise UserError(f"{out_path} must end in {ORT.suffix}")
    if not onnx_path.is_file():
        raise UserError(f"{onnx_path} does not exist: export the ONNX model first with `edgeunet export`")
    props = ort_session(onnx_path, threads=1).get_modelmeta().custom_metadata_map
    meta = ModelMetadata.from_props(props, source=str(onnx_path))
    if meta.precision != options.precision:
        raise UserError(f"{onnx_path} is {meta.precision}, not {options.precision}: give the ONNX file of that "
                        "precision (model.onnx or model.int8.onnx)")
    target = options.target_platform or host_platform()
    tmp = staging_dir(out_path)
    try:
        source = tmp / "source" / onnx_path.name  # the tool converts every .onnx in a folder: give it only this one
        source.parent.mkdir()
        shutil.copyfile(onnx_path, source)
        with quiet("convert_onnx_models_to_ort"), environment_set(LEVEL_VARIABLE, "all"):
            convert_onnx_models_to_ort(source, output_dir=tmp / "converted",
                                       optimization_styles=[OptimizationStyle.Fixed], target_platform=target)
        with atomic_path(out_path) as part:
            shutil.move(tmp / "converted" / source.with_suffix(ORT.suffix).name, part)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote %s (%s ORT format for %s) from %s", out_path, options.precision, target, onnx_path)
    return made_facts("ort", [out_path], options.precision, versions("onnxruntime"), target_platform=target,
                      optimization_style="Fixed", source=onnx_path.name)
