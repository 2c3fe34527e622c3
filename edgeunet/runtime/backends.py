"""Choosing and opening a backend: ONNX Runtime for ``.onnx`` files, TensorRT for ``.engine`` files.

Every backend has the same small interface: ``metadata`` (ModelMetadata), ``name``,
``providers``, ``max_batch`` and ``fixed_size`` (None when unbounded) and
``run((B, C, H, W) float32) -> (B, K, H, W) float32 logits``.
"""

from __future__ import annotations

import os
from pathlib import Path

BACKENDS = ("auto", "onnxruntime", "tensorrt")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
from ..errors import MissingFileError, UserError


def choose_backend(path: str | os.PathLike, backend: str = "auto") -> str:
    """The backend that runs ``path``: ``"onnxruntime"`` or ``"tensorrt"``.

    ``"auto"`` picks TensorRT for serialized engines (``.engine``, ``.plan``, ``.trt``) and
    ONNX Runtime otherwise (ONNX Runtime itself uses CUDA when its GPU build is installed).

    Raises:
        ValueError: Unknown backend, or a backend that cannot read this kind of file.
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    is_engine = Path(path).suffix.lower() in ENGINE_SUFFIXES
    if backend == "auto":
        return "tensorrt" if is_engine else "onnxruntime"
    if backend == "onnxruntime" and is_engine:
        raise UserError(f"{path} is a TensorRT engine: run it with backend 'tensorrt' (or 'auto'), or give the .onnx model")
    if backend == "tensorrt" and not is_engine:
        raise UserError(f"{path} is not a TensorRT engine: build one with `edgeunet build-engine`, "
                         "or run the .onnx file with backend 'onnxruntime'")
    return backend


def open_backend(path: str | os.PathLike, backend: str = "auto", threads: int | None = None,
                 providers: list[str] | None = None):
    """Opens a model file with the chosen backend.

    Args:
        path: An edgeunet ``.onnx`` model or a TensorRT ``.engine`` with its ``.engine.json`` sidecar.
        backend: ``"auto"``, ``"onnxruntime"`` or ``"tensorrt"``.
        threads: ONNX Runtime intra-op threads (None: its default, one per physical core).
        providers: ONNX Runtime execution providers, best first (None: CUDA if present, else CPU).

    Returns:
        An ``OrtBackend`` or ``TrtBackend``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not an edgeunet model or the options do not fit it.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist: give an .onnx model from `edgeunet export` "
                                "or an .engine from `edgeunet build-engine`")
    chosen = choose_backend(path, backend)
    if chosen == "tensorrt":
        if providers:
            raise UserError("providers apply to ONNX Runtime only: leave them unset for a TensorRT engine")
        from .backend_trt import TrtBackend

        return TrtBackend(path)
    from .backend_ort import OrtBackend

    return OrtBackend(path, threads=threads, providers=providers)
