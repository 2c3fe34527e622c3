"""``run_bench``: latency, throughput, memory, size and accuracy of models on this machine.

Every model is opened once, scored once on the data set (batch 1, full images), then timed at
every (size, batch). A model that cannot be opened, scored or run at a shape gets rows with
status ``failed`` and the reason; a missing backend (TensorRT, GPU) gives ``skipped``; the
rest of the run goes on. Afterwards reduced-precision models are checked against their FP32
sibling (same model config): Dice lower by more than ``max_dice_drop`` sets the status
``accuracy-gate``, and being slower than FP32 at the same shape adds a ``note``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from ..env import cpu_info, environment
from ..errors import MissingExtraError, UserError
from .accuracy import evaluate_runner, model_cost_at
from .memory import RssPeak, current_rss_mb
from .runners import BACKENDS, Runner, backend_for, open_runner, precision_from_name
from .siblings import apply_sibling_checks
from .timing import check_timing_settings, time_callable

logger = logging.getLogger(__name__)

_EXPECTED = (UserError, MissingExtraError, FileNotFoundError, ValueError)


def check_settings(models: Sequence, sizes: Sequence[int], batches: Sequence[int], n_images: int,
                   backends: Sequence[str] | None, threads: int | None, device: str) -> None:
    """Raises ValueError naming the fix for settings no model could run with."""
    if not models:
        raise UserError("no models given: pass checkpoints (.pt), ONNX files (.onnx) or engines (.engine)")
    if not sizes or any(int(s) < 1 for s in sizes):
        raise UserError(f"sizes {list(sizes)}: give positive image sides in pixels, e.g. --sizes 256,512")
    if not batches or any(int(b) < 1 for b in batches):
        raise UserError(f"batches {list(batches)}: give positive batch sizes, e.g. --batch 1,8")
    if n_images < 1:
        raise UserError(f"--n-images {n_images}: score on at least 1 image (default 16)")
    unknown = sorted(set(backends or ()) - set(BACKENDS))
    if unknown:
        raise UserError(f"unknown backend(s) {', '.join(unknown)}: use some of {', '.join(BACKENDS)}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads}: use 1 or more (default: all usable cores)")
    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"device {device!r}: use auto, cpu or cuda")


def model_labels(paths: Sequence[Path]) -> list[str]:
    """Short unique names: the file name, with parent folders added only where file names repeat."""
    labels = [p.name for p in paths]
    depth = 1
    while len(set(labels)) < len(labels) and depth < 8:
        depth += 1
        labels = [p.name if [q.name for q in paths].count(p.name) == 1 else "/".join(p.parts[-depth:]) for p in paths]
    return labels


def _resolve_device(device: str, needs_torch: bool) -> str:
    """"auto" -> "cuda" when the GPU is usable (through torch when torch runs models, else ONNX Runtime's providers)."""
    if device != "auto":
        return device
    if not needs_torch:
        import onnxruntime as ort

        return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def _torch_threads(threads: int, needed: bool):
    """Sets PyTorch's intra-op threads for the run and restores them afterwards."""
    if not needed:
        yield
        return
    try:
        import torch
    except ImportError:  # the .pt rows will say what to install
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, _EXPECTED) and text else f"{type(exc).__name__}: {text}"


def _new_row(base: dict, size: int, batch: int) -> dict:
    """A row in schema order, with nothing measured yet."""
    head = {k: base[k] for k in ("model", "path", "precision", "backend", "device")}
    return {**head, "size": int(size), "batch": int(batch), "latency_ms": None, "iterations": 0, "throughput_ips": None,
            "peak_rss_mb": None, "gpu_mem_mb": None, "file_mb": base["file_mb"], "parameters": None, "macs": None,
            "dice": None, "iou": None, "mean_dice": None, "mean_iou": None, "status": "ok", "reason": "", "note": "",
            **({"_group": base["_group"]} if "_group" in base else {})}


def _time_row(runner: Runner, batch: int, size: int, settings: dict) -> tuple[dict, int]:
    """Latency statistics of ``runner`` on one prepared input; the input is freed on return."""
    x = runner.prepare(batch, size)
    return time_callable(lambda: runner.run(x), settings["warmup"], settings["min_time"], settings["min_iters"])


def _measure(runner: Runner, row: dict, settings: dict, rss_before: float | None) -> None:
    """Times one (size, batch) and fills latency, throughput, memory and cost in ``row``."""
    size, batch = row["size"], row["batch"]
    runner.reset_gpu_peak()
    with RssPeak() as probe:
        stats, iterations = _time_row(runner, batch, size, settings)
    row.update(latency_ms=stats, iterations=iterations, throughput_ips=batch * 1000.0 / stats["mean"], gpu_mem_mb=runner.gpu_peak_mb())
    if probe.peak_mb is not None and rss_before is not None:
        row["peak_rss_mb"] = max(0.0, probe.peak_mb - rss_before)
    row["parameters"], row["macs"] = model_cost_at(runner.meta.model_config, size)


def _bench_model(label: str, path: Path, settings: dict, samples_for, bar) -> list[dict]:
    """All rows of one model; never raises for a problem of this model alone."""
    base = {"model": label, "path": str(path), "precision": precision_from_name(path), "backend": backend_for(path),
            "device": "cuda" if path.suffix == ".engine" else settings["device"],
            "file_mb": path.stat().st_size / 2**20 if path.is_file() else None}
    shapes = [(s, b) for s in settings["sizes"] for b in settings["batches"]]
    rss_before = current_rss_mb()
    try:
        runner = open_runner(path, settings["device"], settings["threads"])
    except Exception as exc:  # one bad model must not stop the others
        status = "skipped" if isinstance(exc, MissingExtraError) else "failed"
        logger.warning("%s: %s: %s", label, status, _reason(exc))
        bar.update(len(shapes))
        return [{**_new_row(base, s, b), "status": status, "reason": _reason(exc)} for s, b in shapes]
    rows = []
    try:
        base.update(precision=runner.meta.precision, device=runner.device, _group=json.dumps(runner.meta.model_config, sort_keys=True))
        try:
            accuracy, accuracy_error = evaluate_runner(runner, samples_for(runner.meta.num_classes)), ""
        except Exception as exc:
            logger.debug("accuracy of %s failed", label, exc_info=True)
            accuracy, accuracy_error = {}, f"accuracy: {_reason(exc)}"
        for size, batch in shapes:
            row = {**_new_row(base, size, batch), **accuracy}
            try:
                _measure(runner, row, settings, rss_before)
            except Exception as exc:
                logger.debug("%s at %d px batch %d failed", label, size, batch, exc_info=True)
                row.update(status="failed", reason=_reason(exc))
            if accuracy_error and row["status"] == "ok":
                row.update(status="failed", reason=accuracy_error)
            rows.append(row)
            bar.update(1)
    finally:
        runner.close()
    return rows


def run_bench(models: Sequence[str | os.PathLike], *, data: str | os.PathLike = "synthetic", n_images: int = 16,
              sizes: Sequence[int] = (256,), batches: Sequence[int] = (1,), threads: int | None = None,
              backends: Sequence[str] | None = None, warmup: int = 5, min_time: float = 1.0, min_iters: int = 10,
              max_dice_drop: float = 0.01, device: str = "auto", progress: bool = True) -> dict:
    """Benchmarks models on this machine.

    Args:
        models: ``.pt`` checkpoints (PyTorch), ``.onnx`` files (ONNX Runtime), ``.engine`` files (TensorRT).
        data: ``"synthetic"`` or a data set folder; the same ``n_images`` validation images score every model.
        n_images: Images for Dice/IoU.
        sizes: Square input sides (px) to time; synthetic images are made at the largest.
        batches: Batch sizes to time.
        threads: CPU threads for PyTorch and ONNX Runtime; None means all usable cores.
        backends: Only models of these backends run (``torch``, ``onnxruntime``, ``tensorrt``); None: all.
        warmup: Untimed iterations per row.
        min_time: Each row is timed for at least this many seconds ...
        min_iters: ... and at least this many iterations.
        max_dice_drop: Largest mean Dice loss of an FP16/INT8 model against its FP32 sibling.
        device: "auto" (CUDA when torch sees a GPU), "cpu" or "cuda".
        progress: Show a progress bar on stderr.

    Returns:
        ``{"environment": {...}, "settings": {...}, "rows": [...]}``; see ``edgeunet.bench`` for the row fields.
    """
    from tqdm.auto import tqdm

    from ..data.sources import is_synthetic, load_samples

    check_settings(models, sizes, batches, n_images, backends, threads, device)
    check_timing_settings(warmup, min_time, min_iters)
    if max_dice_drop < 0:
        raise UserError(f"--max-dice-drop {max_dice_drop} is negative: give a Dice difference such as 0.01")
    paths = [Path(m) for m in models]
    for path in paths:
        backend_for(path)  # an unknown file type is a typo in the command, not a model problem
    chosen = [(label, p) for label, p in zip(model_labels(paths), paths) if backends is None or backend_for(p) in backends]
    if not chosen:
        raise UserError(f"none of the models runs on backend(s) {', '.join(backends or ())}: widen --backends")
    threads = int(threads or cpu_info()["usable_cores"] or 1)
    needs_torch = any(p.suffix != ".onnx" for _, p in chosen)
    settings = {"data": str(data), "n_images": int(n_images), "sizes": sorted({int(s) for s in sizes}),
                "batches": sorted({int(b) for b in batches}), "threads": threads, "backends": list(backends or BACKENDS),
                "warmup": int(warmup), "min_time": float(min_time), "min_iters": int(min_iters),
                "max_dice_drop": float(max_dice_drop), "device": _resolve_device(device, needs_torch)}
    cache = {2: load_samples(data, n_images, size=max(settings["sizes"]), split="val")}  # bad data fails before any model

    def samples_for(num_classes: int):
        if not is_synthetic(data):  # folder masks are what they are; the class check is in evaluate_runner
            return cache[2]
        if num_classes not in cache:
            cache[num_classes] = load_samples(data, n_images, size=max(settings["sizes"]), split="val", num_classes=num_classes)
        return cache[num_classes]

    rows: list[dict] = []
    total = len(chosen) * len(settings["sizes"]) * len(settings["batches"])
    with _torch_threads(threads, needs_torch), tqdm(total=total, desc="bench", unit="row", disable=None if progress else True) as bar:
        for label, path in chosen:
            rows += _bench_model(label, path, settings, samples_for, bar)
    apply_sibling_checks(rows, max_dice_drop)
    return {"environment": {**environment(), "threads": threads}, "settings": settings, "rows": rows}
