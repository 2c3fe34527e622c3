"""One benchmarked model before timing: opened, scored, and warmed up at every shape.

``prepare_model`` never raises for a problem of the model itself: a file that cannot be opened
gives rows with status ``failed`` (or ``skipped`` when its backend is not installed) and the
reason; a shape the model cannot run gives that shape's row the reason. GPU memory is read here,
one model at a time, during the warm-up calls at each shape, because the timing that follows
interleaves all models and could not tell whose memory is whose. Host memory is measured
afterwards, in a fresh process per row (``memory.process_peak_rss_mb``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MissingExtraError, UserError
from ..sizes import check_multiple
from .accuracy import evaluate_backend
from .models import close, device_of, display_name, open_model, precision_from_name
from .settings import BenchSettings

logger = logging.getLogger(__name__)
HINT_PRECISIONS = {"bf16": "bf16", "f16": "fp16"}  # OpenVINO inference precision -> the row's precision

_EXPECTED = (UserError, MissingExtraError, FileNotFoundError, ValueError)
_SEED = 0


def reason_of(exc: BaseException) -> str:
    """First line of an error; prefixed with its type when it is not one of the expected kinds (a bug)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, _EXPECTED) and text else f"{type(exc).__name__}: {text}"


def random_input(batch: int, channels: int, size: int, spatial_dims: int = 2) -> np.ndarray:
    """(batch, channels, size, size) float32 standard normal values ((batch, channels, size, size, size) for 3-D
    models), the same for every model (latency does not depend on them)."""
    shape = (batch, channels) + (size,) * spatial_dims
    return np.random.default_rng(_SEED).standard_normal(shape).astype(np.float32)


def _dims(backend) -> int:
    return int(getattr(backend.metadata, "spatial_dims", 2))


class FixedSizeElsewhere(UserError):
    """A fixed-size file (LiteRT, ``--img-size`` exports) asked for another size: its row is skipped, not failed
    (``Segmenter`` tiles larger images at the file's size)."""


def check_shape(backend, size: int, batch: int) -> None:
    """Raises UserError naming the fix when the opened model cannot take a (batch, C, size, size) input
    ((batch, C, size, size, size): a cube, for 3-D models)."""
    meta = backend.metadata
    ndim = _dims(backend)
    check_multiple(size, meta.size_multiple, "size")
    low, high = getattr(backend, "min_size", None), getattr(backend, "max_size", None)
    max_batch, fixed = backend.max_batch, backend.fixed_size
    shape = "x".join(map(str, (batch, meta.in_channels) + (size,) * ndim))
    inside = low and high and all(lo <= size <= hi for lo, hi in zip(low, high))
    if low and high and not (inside and batch <= (max_batch or batch)):
        raise UserError(f"shape {shape} is outside the engine's profile (batch <= {max_batch}, sizes "
                        f"{'x'.join(map(str, low))}..{'x'.join(map(str, high))}): rebuild it with "
                        f"`edgeunet build-engine --shapes` covering {shape}")
    if fixed and tuple(fixed) != (size,) * ndim:
        raise FixedSizeElsewhere(f"the model was exported for {'x'.join(map(str, fixed))} "
                        f"{'images' if ndim == 2 else 'volumes'} only: bench it with --img-size {fixed[0]}")
    if max_batch and batch > max_batch:
        raise UserError(f"batch {batch} is above the model's largest batch {max_batch}: "
                        f"bench it with --batch-size {max_batch}, or export it with a dynamic batch")


@dataclass
class ShapeState:
    """What the warm-up of one model at one (size, batch) left: the input, or why it cannot run."""

    x: np.ndarray | None = None
    reason: str = ""
    skipped: bool = False  # the file takes another fixed size by design (``FixedSizeElsewhere``)
    gpu_mem_mb: float | None = None


@dataclass
class PreparedModel:
    """An opened (or failed) model with its accuracy and per-shape warm-up state."""

    label: str
    path: Path
    backend_name: str
    backend: object | None = None
    status: str = "ok"
    reason: str = ""
    precision: str = "fp32"
    device: str = "cpu"
    model_config: dict = field(default_factory=dict)
    accuracy: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)

    def ready(self, size: int, batch: int) -> bool:
        state = self.shapes.get((size, batch))
        return self.backend is not None and state is not None and state.x is not None

    def close(self) -> None:
        """Frees the backend and the inputs; the measured facts stay."""
        if self.backend is not None:
            close(self.backend)
            self.backend = None
        for state in self.shapes.values():
            state.x = None


def _warm(model: PreparedModel, size: int, batch: int, settings: BenchSettings, inputs: dict) -> ShapeState:
    """Warm-up calls at one shape, reading the GPU memory at the peak where the backend reports it."""
    backend = model.backend
    try:
        check_shape(backend, size, batch)
        key = (batch, backend.metadata.in_channels, size, _dims(backend))
        x = inputs[key] if key in inputs else inputs.setdefault(key, random_input(*key))
        reset = getattr(backend, "reset_gpu_peak", None)
        if callable(reset):
            reset()
        for _ in range(max(1, settings.timing.warmup)):
            backend.run(x)
    except Exception as exc:
        logger.debug("%s at %d px batch %d failed", model.label, size, batch, exc_info=True)
        return ShapeState(reason=reason_of(exc), skipped=isinstance(exc, FixedSizeElsewhere))
    gpu_peak = getattr(backend, "gpu_peak_mb", None)
    return ShapeState(x=x, gpu_mem_mb=gpu_peak() if callable(gpu_peak) else None)


def prepare_model(label: str, path: Path, backend_name: str, settings: BenchSettings, threads: int,
                  samples_for, inputs: dict, hint: str | None = None) -> PreparedModel:
    """Opens, scores and warms up one model at every (size, batch) of ``settings``.

    Args:
        label, path, backend_name: From ``models.check_models``.
        settings: The run's settings.
        threads: CPU threads (resolved).
        samples_for: ``(num_classes, spatial_dims) -> samples`` to score on (volumes for 3-D models).
        inputs: Shared cache of random inputs, keyed by (batch, channels, size, spatial dims).
        hint: OpenVINO's inference precision (``models.Chosen.hint``): an FP32 file OpenVINO compiled in
            ``bf16`` or ``f16`` is a ``bf16`` or ``fp16`` row, checked against its FP32 sibling like other
            reduced precisions.
    """
    model = PreparedModel(label, path, backend_name, precision=precision_from_name(path),
                          device="cuda" if backend_name == "tensorrt" else "cpu")
    try:
        model.backend = open_model(path, backend_name, settings, threads, hint)
    except Exception as exc:  # one bad model must not stop the others
        skipped = isinstance(exc, MissingExtraError)
        model.status = "skipped" if skipped else "failed"
        prefix = "not installed" if skipped else "could not be loaded by"
        text = f"{display_name(backend_name)} {prefix}" if skipped else f"{prefix} {display_name(backend_name)}"
        model.reason = f"{text}: {reason_of(exc)}"
        logger.warning("%s: %s: %s", label, model.status, model.reason)
        return model
    meta = model.backend.metadata
    model.backend_name = getattr(model.backend, "name", backend_name)
    model.precision, model.device, model.model_config = meta.precision, device_of(model.backend), meta.model_config
    if meta.precision == "fp32" and hint is not None:  # what OpenVINO compiled, not what was asked: a CPU
        # without bfloat16 arithmetic runs a bf16 hint in f32, and the row says fp32
        model.precision = HINT_PRECISIONS.get(str(getattr(model.backend, "inference_precision", "")), "fp32")
    try:
        samples = samples_for(meta.num_classes, getattr(meta, "spatial_dims", 2))
        model.accuracy = evaluate_backend(model.backend, samples)
    except Exception as exc:
        logger.debug("accuracy of %s failed", label, exc_info=True)
        model.status, model.reason = "failed", f"accuracy: {reason_of(exc)}"
    for size in settings.sizes:
        for batch in settings.batches:
            model.shapes[(size, batch)] = _warm(model, size, batch, settings, inputs)
    return model
