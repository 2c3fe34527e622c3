"""The one ONNX Runtime session factory: the runtime, verification, the INT8 search, the bench
and the engine tools all open ONNX files here, so what is verified and timed is what ships.

Options are those of ``OrtBackend`` (``ORT_ENABLE_ALL``, warnings silenced, one inter-op
thread when the intra-op count is set). ``spinning`` (``SPINNING``) says when intra-op threads
busy-wait for work instead of sleeping:

* ``"run"`` (default): between the nodes of one call, and no longer: they stop when the call
  returns (``session.force_spinning_stop``). A call then wakes its threads once, not at every
  node, and a finished call leaves the cores to the application's own pre- and post-processing
  and to the other sessions of a side-by-side timing (``benchmarks/spinning.py`` measures each mode).
* ``"always"``: ONNX Runtime's default; the threads also spin for a while after each call, a little
  faster for back-to-back calls of a lone session, and they steal the cores of whatever runs next.
* ``"off"``: they never spin; every node's parallel section wakes them.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MissingFileError, UserError

CPU = "CPUExecutionProvider"
# Execution providers tried by default, best first. ONNX Runtime's TensorRT provider is left
# out: it builds a new engine for every new input shape, which stalls a runtime fed images
# of varying sizes; use a TensorRT engine file (backend "tensorrt") for TensorRT, or name it.
DEFAULT_PROVIDERS = ("CUDAExecutionProvider", CPU)
SPINNING = ("run", "always", "off")
DEFAULT_SPINNING = "run"  # the default of every session, backend and Segmenter (see the module)


def spinning_mode(spinning: str | bool) -> str:
    """One of ``SPINNING``; the booleans of earlier versions read as ``"always"`` (True) and ``"off"``."""
    if isinstance(spinning, bool):
        return "always" if spinning else "off"
    if spinning not in SPINNING:
        raise UserError(f"spinning {spinning!r}: use {', '.join(SPINNING)} (default {DEFAULT_SPINNING}: "
                        "intra-op threads spin within a call and stop when it returns)")
    return spinning


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def default_providers() -> list[str]:
    """The DEFAULT_PROVIDERS this onnxruntime build has (CPU always)."""
    available = set(available_providers())
    return [p for p in DEFAULT_PROVIDERS if p in available] or [CPU]


def check_providers(providers: list[str]) -> list[str]:
    """``providers`` when this onnxruntime build has all of them; UserError naming the ones it has."""
    available = available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        raise UserError(f"execution provider(s) {', '.join(missing)} are not in this onnxruntime build: "
                        f"use some of {', '.join(available)} (or install onnxruntime-gpu for CUDA)")
    return list(providers)


def providers_for_device(device: str) -> list[str]:
    """Providers for ``"cpu"``, ``"cuda"`` or ``"auto"``; a CUDA device that is missing is a UserError."""
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available_providers():
            raise UserError("--device cuda: this onnxruntime build has no CUDAExecutionProvider: "
                            "install onnxruntime-gpu on a machine with an NVIDIA GPU, or use --device cpu")
        return ["CUDAExecutionProvider", CPU]
    if device == "auto":
        return default_providers()
    raise UserError(f"unknown device {device!r}: use auto, cpu or cuda")


def session_options(threads: int | None = None, spinning: str | bool = DEFAULT_SPINNING):
    """``onnxruntime.SessionOptions`` as every edgeunet session uses them (``spinning``: see the module)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads is not None:
        if int(threads) < 1:
            raise UserError(f"threads must be >= 1, got {threads}: or leave it unset for the ONNX Runtime default")
        options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
    mode = spinning_mode(spinning)
    if mode == "off":
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    elif mode == "run":
        options.add_session_config_entry("session.force_spinning_stop", "1")
    return options


def ort_session(model: str | os.PathLike | bytes, *, threads: int | None = None, providers: list[str] | None = None,
                spinning: str | bool = DEFAULT_SPINNING):
    """Opens an ONNX model (a path or serialized bytes) with ONNX Runtime.

    Args:
        model: The ``.onnx`` file, or a serialized ModelProto.
        threads: Intra-op threads; None keeps ONNX Runtime's default (one per physical core).
        providers: Execution providers, best first; None: CUDA when present, else CPU.
        spinning: When intra-op threads busy-wait: ``"run"`` (within a call), ``"always"`` (ONNX Runtime's
            default: after calls too) or ``"off"`` (see the module).

    Raises:
        MissingFileError: ``model`` is a path that does not exist.
        UserError: The file is not a loadable ONNX model, or a provider is missing.
    """
    import onnxruntime as ort

    options = session_options(threads, spinning)
    providers = check_providers(providers) if providers else default_providers()
    if not isinstance(model, bytes):
        path = Path(model)
        if not path.is_file():
            raise MissingFileError(f"{path} does not exist: give an .onnx model from `edgeunet export`")
        model = str(path)
    try:
        return ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        name = model if isinstance(model, str) else "the ONNX model"
        raise UserError(f"{name} is not a loadable ONNX model ({reason[:300]}): "
                        "give an .onnx file written by `edgeunet export`") from None
