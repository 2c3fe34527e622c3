"""Which backend runs a benchmarked file, and opening it: the runtime's own backends, plus PyTorch for ``.pt``.

Every file that ``edgeunet.runtime.backends.open_backend`` opens is benchmarked through it, with
the session options the runtime ships (``ort_session``), so a figure of the bench is a figure of
what ``Segmenter`` runs. Checkpoints need PyTorch: ``TorchBackend`` has the same interface. A
new runtime backend becomes a bench row with no change here: its name comes from the opened
backend and its precision from the model's metadata.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from ..errors import MissingFileError, UserError
from ..formats import BY_NAME, ENGINE_SUFFIXES, FORMATS, format_of
from .settings import TORCH, BenchSettings

CHECKPOINT_SUFFIXES = (".pt", ".pth")
# The kinds of model file, for messages: "checkpoints (.pt), ONNX files (.onnx) or engines (...)".
KINDS = (f"checkpoints ({CHECKPOINT_SUFFIXES[0]}), ONNX files ({BY_NAME['onnx'].suffix}) or TensorRT engines "
         f"({', '.join(ENGINE_SUFFIXES)})")
PRECISIONS = ("fp32", "fp16", "int8")
DISPLAY_NAMES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "tensorrt": "TensorRT"}
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider", "TensorRT", "cuda")


def backend_name(path: str | os.PathLike) -> str:
    """The backend that runs a model file: ``"torch"`` for checkpoints, else what ``open_backend`` would pick.

    Raises:
        UserError: A file type no backend reads (the message lists the kinds).
    """
    from ..runtime.backends import choose_backend

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        return TORCH
    fmt = format_of(path)
    if fmt is None or not fmt.bench:  # open_backend would hand an unknown file to ONNX Runtime
        others = ", ".join(s for f in FORMATS if f.bench and f.name != "onnx" for s in f.suffixes)
        raise UserError(f"{path}: unknown model file type {suffix!r}: give a checkpoint ({CHECKPOINT_SUFFIXES[0]}), an "
                        f"ONNX model ({BY_NAME['onnx'].suffix}) or another model file of edgeunet.formats ({others})")
    return choose_backend(path)


def display_name(backend: str) -> str:
    """``"onnxruntime"`` -> ``"ONNX Runtime"``; unknown names are returned as they are."""
    return DISPLAY_NAMES.get(backend, backend)


def precision_from_name(path: str | os.PathLike) -> str:
    """Precision guessed from a file name (``model.int8.onnx`` -> int8), for rows of files that did not open."""
    parts = Path(path).name.lower().split(".")
    return next((p for p in PRECISIONS if p in parts[1:]), "fp32")


def model_labels(paths: list[Path]) -> list[str]:
    """Short unique names: the file name, with parent folders added only where file names repeat."""
    labels = [p.name for p in paths]
    depth = 1
    while len(set(labels)) < len(labels) and depth < 8:
        depth += 1
        labels = [p.name if [q.name for q in paths].count(p.name) == 1 else "/".join(p.parts[-depth:]) for p in paths]
    return labels


class Chosen(NamedTuple):
    """One row group of the bench: a file, the backend that runs it, and for OpenVINO the inference precision."""

    label: str
    path: Path
    backend: str
    hint: str | None = None  # OpenVINO's INFERENCE_PRECISION_HINT; None for the other backends


def _with_hints(label: str, path: Path, backend: str, settings: BenchSettings) -> list[Chosen]:
    """One entry per ``settings.openvino_precisions`` for an OpenVINO file (labelled ``<file>@bf16`` but
    for f32), else one entry."""
    if backend != "openvino":
        return [Chosen(label, path, backend)]
    return [Chosen(label if hint == "f32" else f"{label}@{hint}", path, backend, hint)
            for hint in settings.openvino_precisions]


def check_models(models: list, settings: BenchSettings) -> list[Chosen]:
    """The models to run (label, path, backend, hint); the command's own mistakes raise before any model runs.

    Raises:
        UserError: No models, an unknown file type, a missing file, a ``--backends`` filter that
            leaves nothing, or ``--device cuda`` on a machine without a GPU.
        MissingFileError: A model file does not exist.
    """
    if not models:
        raise UserError(f"no models given: pass {KINDS}")
    paths = [Path(m) for m in models]
    names = [backend_name(p) for p in paths]  # an unknown file type is a typo in the command, not a model problem
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MissingFileError(f"model file(s) not found: {', '.join(missing)}: give {KINDS} that exist")
    chosen = [c for label, p, n in zip(model_labels(paths), paths, names)
              if settings.backends is None or n in settings.backends for c in _with_hints(label, p, n, settings)]
    if not chosen:
        raise UserError(f"none of the models runs on backend(s) {', '.join(settings.backends or ())}: widen --backends")
    if settings.device == "cuda":
        check_cuda({c.backend for c in chosen})
    return chosen


def check_cuda(backends: set[str]) -> None:
    """UserError naming the fix when ``--device cuda`` cannot run these backends on a GPU."""
    from ..runtime.session import providers_for_device

    if "onnxruntime" in backends:
        providers_for_device("cuda")
    if TORCH in backends:
        from .torch_backend import torch_device

        torch_device("cuda")


def providers_for(backend: str, device: str) -> list[str] | None:
    """ONNX Runtime providers for ``device``; None for the other backends (they pick their own device)."""
    if backend != "onnxruntime":
        return None
    from ..runtime.session import providers_for_device

    return providers_for_device(device)


def open_model(path: Path, backend: str, settings: BenchSettings, threads: int, hint: str | None = None):
    """Opens ``path`` with its backend: ``TorchBackend`` for checkpoints, else ``runtime.backends.open_backend``
    (``hint``: OpenVINO's inference precision, f32 when None)."""
    if backend == TORCH:
        from .torch_backend import TorchBackend

        return TorchBackend(path, settings.device)
    from ..runtime.backends import open_backend

    return open_backend(path, threads=threads, providers=providers_for(backend, settings.device),
                        spinning=settings.spinning, precision=hint or "f32")


def device_of(backend) -> str:
    """``"cuda"`` when the opened backend runs on an NVIDIA GPU (its ``device`` or providers say so), else ``"cpu"``."""
    device = getattr(backend, "device", None)
    if device in ("cpu", "cuda"):
        return device
    providers = list(getattr(backend, "providers", []) or [])
    return "cuda" if providers and providers[0] in GPU_PROVIDERS else "cpu"


def close(backend) -> None:
    """Frees a backend that can be closed (``OrtBackend`` is freed by dropping it)."""
    closer = getattr(backend, "close", None)
    if callable(closer):
        closer()
