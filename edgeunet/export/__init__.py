"""Export stage: checkpoint -> ONNX (FP32, FP16, INT8 QDQ) -> other formats -> TensorRT engine, each verified.

``export_model(checkpoint, out_dir, ExportOptions(...))`` runs the whole stage (``pipeline``, read top
to bottom) and returns the export.json content; ``export_onnx`` writes one FP32 ONNX file;
``build_engine`` builds a TensorRT engine on the target device. Calibration, the INT8 search and
verification use disjoint images (``roles``). The steps live in ``int8/`` (quantization, the search),
``formats/`` (the exporters of ``edgeunet.formats`` and the ``--formats`` step) and ``tensorrt/``;
what ``--target`` decides is ``targets``. torch, onnx and tensorrt are imported by the functions that
need them.
"""

from .onnx import export_onnx, read_metadata
from .options import ExportOptions
from .pipeline import export_model
from .recipes import load_recipe
from .tensorrt import build_engine
from .verify import DiceDropError, ExportCheckError, ParityError

__all__ = ["DiceDropError", "ExportCheckError", "ExportOptions", "ParityError", "build_engine", "export_model",
           "export_onnx", "load_recipe", "read_metadata"]
