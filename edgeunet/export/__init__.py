"""Export stage: checkpoint -> ONNX (FP32, FP16, INT8 QDQ) -> TensorRT engine, each verified.

``export_model(checkpoint, out_dir, ExportOptions(...))`` runs the whole stage and returns the
export.json content; ``export_onnx`` writes one FP32 ONNX file; ``build_engine`` builds a TensorRT
engine on the target device. Calibration, the INT8 search and verification use disjoint images
(``roles``). torch, onnx and tensorrt are imported by the functions that need them.
"""

from .onnx import export_onnx, read_metadata
from .options import ExportOptions
from .pipeline import export_model
from .recipes import load_recipe
from .tensorrt import build_engine
from .verify import DiceDropError, ExportCheckError, ParityError

__all__ = ["DiceDropError", "ExportCheckError", "ExportOptions", "ParityError", "build_engine", "export_model",
           "export_onnx", "load_recipe", "read_metadata"]
