"""Choosing and opening a backend by file type.

=====================  =================  ================================  ==================
file                   backend            library                           install
=====================  =================  ================================  ==================
``.onnx``, ``.ort``    ``onnxruntime``    ONNX Runtime                      (base install)
``.engine`` ``.plan``  ``tensorrt``       TensorRT (NVIDIA GPU)             ``edgeunet[trt]``
``.xml`` (+ ``.bin``)  ``openvino``       OpenVINO (also reads ``.onnx``)   ``edgeunet[openvino]``
``.pte``               ``executorch``     ExecuTorch, XNNPACK delegate      ``edgeunet[mobile]``
``.tflite``            ``litert``         LiteRT, XNNPACK delegate          ``edgeunet[mobile]``
=====================  =================  ================================  ==================

Every backend has the same small interface: ``metadata`` (ModelMetadata), ``name``,
``providers``, ``max_batch`` and ``fixed_size`` (None when unbounded) and
``run((B, C, H, W) float32) -> (B, K, H, W) float32 logits``; bounded ones add ``min_size`` and
``max_size``. Each library is imported only when a file of its kind is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MissingFileError, UserError

BACKENDS = ("auto", "onnxruntime", "tensorrt", "openvino", "executorch", "litert")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
# The file types each backend reads; "auto" picks the backend by the first match.
SUFFIXES = {
    "onnxruntime": (".onnx", ".ort"),
    "tensorrt": ENGINE_SUFFIXES,
    "openvino": (".xml", ".onnx"),
    "executorch": (".pte",),
    "litert": (".tflite",),
}
# How to make a file the backend reads, for the error when the two do not fit.
_MAKE = {
    "onnxruntime": "give an .onnx (or .ort) file from `edgeunet export`",
    "tensorrt": "build one with `edgeunet build-engine`",
    "openvino": "give an .xml (+ .bin) from the openvino export, or an .onnx file",
    "executorch": "give a .pte from the executorch export",
    "litert": "give a .tflite from the litert export",
}


def _auto(suffix: str) -> str:
    """The backend of a file type; ONNX Runtime for anything unknown (it names the problem itself)."""
    return next((name for name, suffixes in SUFFIXES.items() if suffix in suffixes), "onnxruntime")


def choose_backend(path: str | os.PathLike, backend: str = "auto") -> str:
    """The backend that runs ``path``: one of ``BACKENDS`` other than ``"auto"``.

    ``"auto"`` picks by file type (see the module table): TensorRT for serialized engines,
    OpenVINO for ``.xml``, ExecuTorch for ``.pte``, LiteRT for ``.tflite`` and ONNX Runtime
    otherwise (ONNX Runtime itself uses CUDA when its GPU build is installed).

    Raises:
        UserError: Unknown backend, or a backend that cannot read this kind of file.
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    suffix = Path(path).suffix.lower()
    if backend == "auto":
        return _auto(suffix)
    if backend == "onnxruntime" and suffix in ENGINE_SUFFIXES:
        raise UserError(f"{path} is a TensorRT engine: run it with backend 'tensorrt' (or 'auto'), "
                        "or give the .onnx model")
    if backend == "tensorrt" and suffix not in ENGINE_SUFFIXES:
        raise UserError(f"{path} is not a TensorRT engine: build one with `edgeunet build-engine`, "
                        "or run the .onnx file with backend 'onnxruntime'")
    if backend != "onnxruntime" and suffix not in SUFFIXES[backend]:
        raise UserError(f"backend {backend!r} cannot read {path} (it reads {', '.join(SUFFIXES[backend])}): "
                        f"{_MAKE[backend]}, or use backend 'auto' ({_auto(suffix)} for this file)")
    return backend


def open_backend(path: str | os.PathLike, backend: str = "auto", threads: int | None = None,
                 providers: list[str] | None = None, precision: str | None = "f32", spinning: str | bool = "run"):
    """Opens a model file with the chosen backend.

    Args:
        path: An edgeunet model file (see the module table); TensorRT engines and ``.tflite``
            files with their ``<file>.json`` sidecar.
        backend: ``"auto"`` (by file type) or one of ``BACKENDS``.
        threads: Intra-op threads of ONNX Runtime, OpenVINO, ExecuTorch or LiteRT (None: the
            library's default, about one per physical core).
        providers: ONNX Runtime execution providers, best first (None: CUDA if present, else CPU).
        precision: OpenVINO's inference precision hint: ``"f32"`` (default: FP32 files compute
            in FP32), ``"bf16"``, ``"f16"`` or None (OpenVINO's choice, bf16 on CPUs that have it).
            Ignored by the other backends.
        spinning: When ONNX Runtime's intra-op threads busy-wait: ``"run"`` (default: within a call, so
            a finished call leaves the cores to the next), ``"always"`` (ONNX Runtime's default) or ``"off"``
            (``runtime.session``). Ignored by the other backends.

    Returns:
        An ``OrtBackend``, ``TrtBackend``, ``OpenVinoBackend``, ``ExecuTorchBackend`` or ``LiteRtBackend``.

    Raises:
        MissingFileError: ``path`` does not exist.
        MissingExtraError: The backend's library is not installed (the message names the extra).
        UserError: The file is not an edgeunet model or the options do not fit it.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist: give an .onnx model from `edgeunet export` "
                               "or an .engine from `edgeunet build-engine`")
    chosen = choose_backend(path, backend)
    if providers and chosen != "onnxruntime":
        raise UserError(f"providers apply to ONNX Runtime only: leave them unset for backend {chosen!r}")
    if chosen == "tensorrt":
        from .backend_trt import TrtBackend

        return TrtBackend(path)
    if chosen == "openvino":
        from .backend_openvino import OpenVinoBackend

        return OpenVinoBackend(path, threads=threads, precision=precision)
    if chosen == "executorch":
        from .backend_executorch import ExecuTorchBackend

        return ExecuTorchBackend(path, threads=threads)
    if chosen == "litert":
        from .backend_litert import LiteRtBackend

        return LiteRtBackend(path, threads=threads)
    from .backend_ort import OrtBackend

    return OrtBackend(path, threads=threads, providers=providers, spinning=spinning)
