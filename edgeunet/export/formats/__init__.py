"""Deployment formats beyond ONNX: OpenVINO IR, ExecuTorch ``.pte``, LiteRT ``.tflite`` and ORT format.

Every exporter has one signature, ``export_X(source, out_path, calibration, options) -> facts``:

==========================  ===================  =====================  ===========================
function                    source               writes                 INT8 by
==========================  ===================  =====================  ===========================
``export_openvino``         FP32 ``model.onnx``  ``.xml`` + ``.bin``    NNCF (optionally with accuracy control)
``export_executorch``       checkpoint           ``.pte``               PT2E, XNNPACK quantizer
``export_litert``           checkpoint           ``.tflite`` + ``.json``  PT2E, XNNPACK quantizer
``export_ort_format``       ``model[.int8].onnx``  ``.ort``             (the INT8 ONNX file's own)
==========================  ===================  =====================  ===========================

``calibration`` is a list of preprocessed (C, H, W) float32 images (``export.samples.load_inputs``);
``options`` a ``FormatOptions``. Each file opens with ``Segmenter(path)``; ``verify_file`` checks it
through that same runtime backend. The libraries come with the ``openvino`` and ``mobile`` extras.
"""

from .check import MIN_AGREEMENT, backend_logits, verify_file
from .executorch import export_executorch
from .litert import export_litert
from .openvino import export_openvino
from .options import FormatOptions
from .ort_format import export_ort_format

EXPORTERS = {"openvino": export_openvino, "executorch": export_executorch, "litert": export_litert,
             "ort": export_ort_format}

__all__ = ["EXPORTERS", "MIN_AGREEMENT", "FormatOptions", "backend_logits", "export_executorch", "export_litert",
           "export_openvino", "export_ort_format", "verify_file"]
