"""Choosing and opening a backend by file type.

Which backend opens which file, and the extra that installs it, is the format table
(``edgeunet.formats``): ONNX and ORT-format files open with ONNX Runtime (base install), TensorRT
engines with TensorRT (``edgeunet[trt]``, an NVIDIA GPU), OpenVINO IR with OpenVINO (which also reads
ONNX; ``edgeunet[openvino]``), ExecuTorch programs with ExecuTorch and LiteRT files with LiteRT
(XNNPACK delegate; ``edgeunet[mobile]``). ``_MAKE`` below constructs each backend.

Every backend has the same small interface: ``metadata`` (ModelMetadata), ``name``,
``providers``, ``max_batch`` and ``fixed_size`` (None when unbounded) and
``run((B, C, H, W) float32) -> (B, K, H, W) float32 logits``; bounded ones add ``min_size`` and
``max_size``. Each library is imported only when a file of its kind is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MissingFileError, UserError
from ..formats import BY_NAME, ENGINE_SUFFIXES, FORMATS, backend_suffixes
from .backend_executorch import ExecuTorchBackend
from .backend_litert import LiteRtBackend
from .backend_openvino import OpenVinoBackend
from .backend_ort import OrtBackend
from .backend_trt import TrtBackend
from .session import DEFAULT_SPINNING

# The file types each backend reads; "auto" picks the backend by the first match.
SUFFIXES = backend_suffixes()
ONNX = BY_NAME["onnx"].suffix
BACKENDS = ("auto", *SUFFIXES)


# Backend name (``formats.Format.backend``) -> its constructor from (path, threads, providers, precision, spinning);
# each backend imports its library only when a file is opened.
_MAKE = {
    "onnxruntime": lambda path, threads, providers, precision, spinning: OrtBackend(
        path, threads=threads, providers=providers, spinning=spinning),
    "tensorrt": lambda path, threads, providers, precision, spinning: TrtBackend(path),
    "openvino": lambda path, threads, providers, precision, spinning: OpenVinoBackend(
        path, threads=threads, precision=precision),
    "executorch": lambda path, threads, providers, precision, spinning: ExecuTorchBackend(path, threads=threads),
    "litert": lambda path, threads, providers, precision, spinning: LiteRtBackend(path, threads=threads),
}


def _auto(suffix: str) -> str:
    """The backend of a file type; ONNX Runtime for anything unknown (it names the problem itself)."""
    return next((name for name, suffixes in SUFFIXES.items() if suffix in suffixes), "onnxruntime")


def _how_to_make(backend: str) -> str:
    """How to get a file ``backend`` reads, from the format table, for the error when a file does not fit."""
    rows = [f for f in FORMATS if f.backend == backend]
    return "give " + " or ".join(f"a {f.suffix} file from {f.made_by}" for f in rows)


def choose_backend(path: str | os.PathLike, backend: str = "auto") -> str:
    """The backend that runs ``path``: one of ``BACKENDS`` other than ``"auto"``.

    ``"auto"`` picks by file type (``edgeunet.formats``): TensorRT for serialized engines, OpenVINO,
    ExecuTorch and LiteRT for their own files, and ONNX Runtime otherwise (ONNX Runtime itself uses
    CUDA when its GPU build is installed).

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
                        "or give the ONNX model")
    if backend == "tensorrt" and suffix not in ENGINE_SUFFIXES:
        raise UserError(f"{path} is not a TensorRT engine: build one with `edgeunet build-engine`, "
                        "or run the ONNX file with backend 'onnxruntime'")
    if backend != "onnxruntime" and suffix not in SUFFIXES[backend]:
        raise UserError(f"backend {backend!r} cannot read {path} (it reads {', '.join(SUFFIXES[backend])}): "
                        f"{_how_to_make(backend)}, or use backend 'auto' ({_auto(suffix)} for this file)")
    return backend


def open_backend(path: str | os.PathLike, backend: str = "auto", threads: int | None = None,
                 providers: list[str] | None = None, precision: str | None = "f32",
                 spinning: str | bool = DEFAULT_SPINNING):
    """Opens a model file with the chosen backend.

    Args:
        path: An edgeunet model file (``edgeunet.formats``); TensorRT engines and LiteRT files with their
            ``<file>.json`` sidecar.
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
        raise MissingFileError(f"{path} does not exist: give an {ONNX} model from `edgeunet export` "
                               f"or a TensorRT engine ({', '.join(ENGINE_SUFFIXES)}) from `edgeunet build-engine`")
    chosen = choose_backend(path, backend)
    if providers and chosen != "onnxruntime":
        raise UserError(f"providers apply to ONNX Runtime only: leave them unset for backend {chosen!r}")
    return _MAKE[chosen](path, threads, providers, precision, spinning)
