"""``run_bench``: latency, throughput, memory, size and accuracy of models on this machine.

Every model is opened once with the backend that ships it (``models.open_model``), scored once
through ``Segmenter`` on the data set, and warmed up at every (size, batch) (``prepare.prepare_model``).
Then, for each (size, batch), the rows of all models are timed in interleaved rounds
(``edgeunet.timing.time_interleaved``: shuffled each round), so drift of a busy machine hits every row
alike, and each row gets its speed ratio to the reference row (median of per-round ratios, with
quartiles). Last, with the models closed, each CPU row's memory is measured in a fresh process that
runs the file at the row's shape (``memory.process_peak_rss_mb``), one process at a time. A model that
cannot be opened, scored or run at a shape gets rows with status ``failed`` and the reason; a missing
backend gives ``skipped``; the rest of the run goes on. Afterwards reduced-precision models are checked
against their FP32 sibling (``siblings``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from ..env import cpu_info, environment, provenance
from ..errors import UserError
from .accuracy import model_cost_at
from .interleave import CallFailed, recorded, row_stats, run_rounds
from .memory import process_peak_rss_mb
from .models import Chosen, check_models, model_labels
from .prepare import PreparedModel, prepare_model, reason_of
from .settings import TORCH, BenchSettings
from .siblings import apply_sibling_checks

logger = logging.getLogger(__name__)

__all__ = ["model_labels", "run_bench"]  # model_labels: part of the bench's API since 0.1


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


def resolve_reference(chosen: list[Chosen], wanted: str | None) -> str | None:
    """The label of the ``--reference`` model (by label, path or file name); None when not given.

    Raises:
        UserError: ``wanted`` names none of the models.
    """
    from ..errors import UserError

    if wanted is None:
        return None
    for label, path, *_ in chosen:
        if wanted == label or Path(wanted) == path or os.path.abspath(wanted) == os.path.abspath(path):
            return label
    names = [label for label, path, *_ in chosen if path.name == Path(wanted).name]
    if len(names) == 1:
        return names[0]
    raise UserError(f"--reference {wanted} is none of the benchmarked models: give one of "
                    f"{', '.join(c.label for c in chosen)}")


def _reference_index(ready: list[PreparedModel], wanted: str | None) -> int:
    """The wanted model when it ran at this shape, else the first FP32 ONNX Runtime model, else the first."""
    labels = [m.label for m in ready]
    if wanted in labels:
        return labels.index(wanted)
    return next((i for i, m in enumerate(ready) if m.backend_name == "onnxruntime" and m.precision == "fp32"), 0)


def _time_group(models: list[PreparedModel], size: int, batch: int, settings: BenchSettings,
                reference: str | None) -> dict[str, dict]:
    """Interleaved timing of every model that is ready at (size, batch): label -> row fields (or a failure)."""
    ready = [m for m in models if m.ready(size, batch)]
    out: dict[str, dict] = {}
    while ready:
        stores: list[list[int]] = [[] for _ in ready]
        fns = [recorded(i, m.backend.run, m.shapes[(size, batch)].x, s) for i, (m, s) in enumerate(zip(ready, stores))]
        try:
            run_rounds(fns, stores, settings.timing)
        except CallFailed as failed:  # drop the model that failed and time the others again
            logger.debug("%s failed while timed", ready[failed.index].label, exc_info=True)
            out[ready[failed.index].label] = {"status": "failed", "reason": reason_of(failed.exc)}
            del ready[failed.index]
            continue
        ref = _reference_index(ready, reference)
        for model, stats in zip(ready, row_stats(stores, ref)):
            out[model.label] = {**stats, "throughput_ips": batch * 1000.0 / stats["latency_ms"]["mean"],
                                "reference": ready[ref].label}
        break
    return out


def _memory_jobs(prepared: list[PreparedModel], chosen: list[Chosen], groups: list[tuple[int, int]],
                 timed: dict[tuple, dict]) -> list[tuple[PreparedModel, Chosen, int, int]]:
    """The rows whose memory a fresh process measures: CPU rows that ran and were timed (GPU rows report
    ``gpu_mem_mb``; a failed row has no figure to add)."""
    return [(m, c, s, b) for m, c in zip(prepared, chosen) for s, b in groups
            if m.device == "cpu" and m.ready(s, b) and "status" not in timed.get((m.label, s, b), {"status": ""})]


def _row(model: PreparedModel, size: int, batch: int, timed: dict, peak_rss_mb: float | None) -> dict:
    """One row in schema order (see ``edgeunet.bench``)."""
    state = model.shapes.get((size, batch))
    row = {"model": model.label, "path": str(model.path), "precision": model.precision, "backend": model.backend_name,
           "device": model.device, "size": int(size), "batch": int(batch), "latency_ms": None, "iterations": 0,
           "throughput_ips": None, "reference": None, "ratio": None, "ratio_q25": None, "ratio_q75": None,
           "rounds": 0, "noisy": False, "verdict": "", "vs_fp32": None, "round_ms": None,
           "peak_rss_mb": peak_rss_mb, "gpu_mem_mb": state.gpu_mem_mb if state else None,
           "file_mb": model.path.stat().st_size / 2**20 if model.path.is_file() else None,
           "parameters": None, "macs": None, "dice": None, "iou": None, "mean_dice": None, "mean_iou": None,
           "status": "ok", "reason": "", "note": ""}
    if model.accuracy:
        row.update(model.accuracy)
    row["parameters"], row["macs"] = model_cost_at(model.model_config, size)
    row.update(timed)
    if int(model.model_config.get("spatial_dims", 2)) == 3 and row.get("throughput_ips"):
        row["patch_voxels_per_s"] = row["throughput_ips"] * size ** 3  # --img-size 64 times 64^3 patches
    shape_reason = state.reason if state else ""
    if model.status != "ok" and row["status"] == "ok":
        row.update(status=model.status, reason=model.reason)
    elif shape_reason and row["status"] == "ok":
        row.update(status="skipped" if state.skipped else "failed", reason=shape_reason)
    row["_group"] = json.dumps(model.model_config, sort_keys=True)  # for the sibling checks; dropped by them
    return row


def run_bench(models: Sequence[str | os.PathLike], settings: BenchSettings | None = None, *,
              progress: bool = True) -> dict:
    """Benchmarks models on this machine.

    Args:
        models: ``.pt`` checkpoints (PyTorch), ``.onnx`` files (ONNX Runtime), TensorRT engines, and any other
            file of ``edgeunet.formats`` that ``edgeunet.runtime.backends.open_backend`` opens.
        settings: What to measure and how; None: ``BenchSettings()``.
        progress: Show a progress bar on stderr.

    Returns:
        ``{"environment": provenance + GPU, "settings": {...}, "rows": [...]}``; see ``edgeunet.bench`` for the
        row fields.

    Raises:
        UserError, MissingFileError: Bad models, options or data, before any model runs.
    """
    from tqdm.auto import tqdm

    settings = settings or BenchSettings()
    chosen = check_models(list(models), settings)
    reference = resolve_reference(chosen, settings.reference)
    threads = int(settings.threads or cpu_info()["usable_cores"] or 1)
    samples_for = _sample_loader(settings)
    prepared: list[PreparedModel] = []
    groups = [(s, b) for s in settings.sizes for b in settings.batches]
    inputs: dict = {}
    timed: dict[tuple, dict] = {}
    needs_torch = any(c.backend == TORCH for c in chosen)
    memory: dict[tuple, float | None] = {}
    steps = len(chosen) + len(groups) + (len(chosen) * len(groups) if settings.memory else 0)
    with _torch_threads(threads, needs_torch), tqdm(total=steps, desc="bench", unit="step",
                                                    disable=None if progress else True) as bar:
        try:
            for label, path, name, hint in chosen:
                prepared.append(prepare_model(label, path, name, settings, threads, samples_for, inputs, hint))
                bar.update(1)
            for size, batch in groups:
                for label, fields in _time_group(prepared, size, batch, settings, reference).items():
                    timed[(label, size, batch)] = fields
                bar.update(1)
            jobs = _memory_jobs(prepared, chosen, groups, timed) if settings.memory else []
        finally:
            for model in prepared:
                model.close()
        for model, how, size, batch in jobs:
            memory[(model.label, size, batch)] = process_peak_rss_mb(
                model.path, how.backend, size, batch, threads=threads, spinning=settings.spinning, precision=how.hint)
            bar.update(1)
        bar.update(steps - bar.n)
    rows = [_row(m, s, b, timed.get((m.label, s, b), {}), memory.get((m.label, s, b)))
            for m in prepared for s, b in groups]
    apply_sibling_checks(rows, settings.max_dice_drop)
    return {"environment": {**environment(), **provenance(threads)},
            "settings": {**settings.to_dict(), "threads": threads},
            "rows": rows}


def _sample_loader(settings: BenchSettings):
    """``(num_classes, spatial_dims) -> samples``: one set of validation images at the largest size (volumes for
    3-D models, read when first asked for: ``volumes.bench_volumes``); bad 2-D data fails here, first."""
    from ..data.sources import is_synthetic, load_samples
    from .volumes import bench_volumes

    size = max(settings.sizes)
    deferred: list[Exception] = []
    try:
        cache = {2: load_samples(settings.data, settings.num_images, size=size, split="val")}
    except UserError as exc:  # a folder of volumes is no 2-D data set: only 2-D models need to hear of it
        if not _holds_volumes(settings.data):
            raise
        cache, deferred = {}, [exc]

    def samples_for(num_classes: int, spatial_dims: int = 2):
        if spatial_dims == 3:
            key = ("3d", num_classes)
            if key not in cache:
                cache[key] = bench_volumes(settings.data, settings.num_images, num_classes)
            return cache[key]
        if deferred:
            raise deferred[0]
        if not is_synthetic(settings.data):  # folder masks are what they are; the class check is in evaluate_backend
            return cache[2]
        if num_classes not in cache:
            cache[num_classes] = load_samples(settings.data, settings.num_images, size=size, split="val",
                                              num_classes=num_classes)
        return cache[num_classes]

    return samples_for


def _holds_volumes(data) -> bool:
    """Whether ``data`` is a folder of paired volumes (``export.samples.volume_pairs``)."""
    from ..data.sources import dataset_folder
    from ..export.samples import volume_pairs

    for folder in (Path(data), dataset_folder(data, "val")):
        try:
            volume_pairs(folder)
            return True
        except UserError:
            continue
    return False
