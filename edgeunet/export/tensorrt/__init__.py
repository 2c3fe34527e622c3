"""TensorRT engines: ``build_engine`` turns an edgeunet ONNX file into an engine on the device that runs it.

``facts`` reads what the ONNX file says, ``shapes`` makes and checks the optimization profile, ``plan``
decides options, flags and the equivalent trtexec line (no TensorRT needed), ``engine_build`` calls
TensorRT, and ``build`` runs them and writes the files.
"""

from .build import build_engine
from .plan import EngineOptions

__all__ = ["EngineOptions", "build_engine"]
