"""Deployment formats beyond ONNX: the exporters of the rows of ``edgeunet.formats`` and the ``--formats`` step.

Every exporter has one signature, ``export_X(source, out_path, calibration, options) -> facts``; its
source is the table's ``made_from`` (the checkpoint, the FP32 ONNX file, or the ONNX file of the same
precision):

==========================  ======================  =======================================
function                    source                  INT8 by
==========================  ======================  =======================================
``export_openvino``         the FP32 ONNX file      NNCF (optionally with accuracy control)
``export_executorch``       checkpoint              PT2E, XNNPACK quantizer
``export_litert``           checkpoint              PT2E, XNNPACK quantizer (one fixed size)
``export_ort_format``       the ONNX file           (the INT8 ONNX file's own)
==========================  ======================  =======================================

``calibration`` is a list of preprocessed (C, H, W) float32 images (``export.samples.load_inputs``);
``options`` a ``FormatOptions``. Each file opens with ``Segmenter(path)``; ``verify_file`` checks it
through that same runtime backend. ``step`` runs the explicit ``--formats`` list, ``auto`` the
``--formats auto`` comparison. The libraries come with the extras the table names.
"""

from .check import MIN_AGREEMENT, backend_logits, verify_file
from .executorch import export_executorch
from .litert import export_litert
from .openvino import export_openvino
from .options import FormatOptions
from .ort_format import export_ort_format

# Format name (``edgeunet.formats``) -> its exporter; onnx and tensorrt have their own (export_onnx, build_engine).
EXPORTERS = {"openvino": export_openvino, "executorch": export_executorch, "litert": export_litert,
             "ort": export_ort_format}

__all__ = ["EXPORTERS", "MIN_AGREEMENT", "FormatOptions", "backend_logits", "export_executorch", "export_litert",
           "export_openvino", "export_ort_format", "verify_file"]
