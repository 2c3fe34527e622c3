"""``export_model``: checkpoint -> ONNX -> FP16 / INT8 -> other formats -> TensorRT engine -> export.json.

``export_model`` reads as the export does: the checks that need no work (libraries, output folder,
sizes, the images and their labels), then one step after another, each writing its files into a
staging folder beside ``out_dir`` (``edgeunet.atomic``) and its figures into the ``ExportReport``.
The folder is swapped into place only when every check passed, so a failed export leaves an earlier
one untouched; the staging folders of killed exports are removed by the next export into the same
place. Each step checks its files on the verification images, which neither calibration nor the INT8
search saw (``roles``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_dir, write_json
from ..checkpoint import model_from_checkpoint, training_facts
from ..env import provenance
from ..errors import MissingExtraError, UserError
from ..formats import AUTO, EXPORT_JSON, artifact_pattern, model_file_name
from ..sizes import check_multiple
from .formats.auto import run_auto
from .formats.step import FormatContext, check_libraries, write_formats
from .fp16 import convert_fp16
from .int8 import SearchJob, prepare, quantize_int8, search_int8, tensor_sqnr, worst_tensors
from .onnx import export_onnx, model_metadata
from .options import SIZE_FIELDS, ExportOptions
from .progress import Progress
from .quality import FAILED, int8_quality, search_scores
from .report import ExportReport, file_facts, onnx_facts, toolchain
from .roles import RoleImages, plan_roles, role_flags
from .samples import InputSpec, search_side_3d
from .speed import EXPORT_TIMING, speed_warning, time_pair, usable_threads
from .targets import where_note
from .tensorrt import build_engine
from .verify import check_dice_drop, check_parity, onnx_logits, parity, torch_logits

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def export_model(checkpoint, out_dir, options: ExportOptions | None = None, *, progress: bool = True) -> dict:
    """Exports a checkpoint to verified deployment files in ``out_dir``.

    Args:
        checkpoint: Checkpoint path (or dict) from ``edgeunet train`` / ``prune``.
        out_dir: Output folder: ``model.onnx``, ``model.fp16.onnx``, ``model.int8.onnx``, the ``--formats``
            files, a TensorRT engine (with its sidecar and trtexec line) and ``export.json``.
        options: What to write and check (``ExportOptions``); None: FP32 only, synthetic data.
        progress: Show a progress bar and the INT8 search's lines on stderr.

    Returns:
        The export.json content: artifacts (size, sha256, opset, precision, parity); ``data`` (the file
        stems of the calibration, search and verification images, with counts, sources and seed);
        calibration; verification scores; the INT8 check (``int8_quality.dice_check``); toolchain versions.

    Raises:
        ExportCheckError: A parity or Dice check failed; ``out_dir`` is left as it was.
        UserError: Bad options, data or paths (before anything is written).
    """
    options = ExportOptions() if options is None else options
    if not isinstance(options, ExportOptions):
        raise TypeError(f"options must be an ExportOptions, not {type(options).__name__}")
    check_environment(options)
    out_dir = Path(out_dir).absolute()
    check_out_dir(out_dir)
    model, ckpt = model_from_checkpoint(checkpoint)
    cfg = model.current_config()
    used = used_roles(options)
    plan = plan_roles(options, cfg.spatial_dims, used)
    check_sizes(options, cfg.size_multiple)
    spec = InputSpec(ckpt.get("preprocessing") or {}, cfg.in_channels, cfg.size_multiple, options.img_size,
                     cfg.num_classes, cfg.spatial_dims, tuple(cfg.size_multiples))
    images = RoleImages(plan, spec, options.img_size or training_facts(ckpt).crop, role_flags(options))
    images.read(used)  # bad images or labels fail here, before anything is written
    report = ExportReport(options, plan.to_dict(used), checkpoint=None if isinstance(checkpoint, dict) else
                          str(checkpoint))
    with atomic_dir(out_dir) as staging, tempfile.TemporaryDirectory(prefix="edgeunet-export-") as work, \
            Progress(step_count(options), progress) as bar:
        run = ExportRun(model, ckpt, options, staging, Path(work), images, bar)
        bar.say(f"data: {plan.summary(used)}")
        reference, fp32_logits = fp32_step(run, report)
        if options.fp16:
            fp16_step(run, report, reference)
        if options.int8:
            int8_step(run, report, fp32_logits)
        if options.formats != ("onnx",):
            formats_step(run, report, reference)
        if options.engine:
            engine_step(run, report)
        bar.step("done")
        report.where, report.toolchain = where_note(options), toolchain()
        report.provenance = provenance(usable_threads())
        write_json(staging / EXPORT_JSON, report.to_dict())
    logger.info("export written to %s", out_dir)
    return report.to_dict()


def check_environment(options: ExportOptions) -> None:
    """Raises MissingExtraError when a requested step needs a library this machine lacks (TensorRT, a format's)."""
    check_libraries(options)
    if not options.engine:
        return
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "--engine needs TensorRT: run `pip install 'edgeunet[trt]'` on the device the engine will run on "
            "(engines must be built on the target device), or export without --engine and run "
            "`edgeunet build-engine` there"
        ) from None


def check_sizes(options: ExportOptions, multiple: int) -> None:
    """Raises UserError naming the flag and the valid sizes when the model cannot run at an image side of the
    options (``--img-size``, ``--search-img-size``, ``--fixed-img-size``), whatever steps will run."""
    for name in SIZE_FIELDS:
        if getattr(options, name) is not None:
            check_multiple(getattr(options, name), multiple, options.flag(name))
    side = options.search_side(multiple)
    if AUTO in options.formats and options.fixed_img_size and options.fixed_img_size != side:
        hint = "" if options.img_size else f", or set --search-img-size {options.fixed_img_size}"
        raise UserError(f"--fixed-img-size {options.fixed_img_size} differs from the side --formats auto times every "
                        f"runtime at ({side} px; fixed-size files are made at it): drop --fixed-img-size{hint}")


def check_out_dir(out_dir: Path) -> None:
    """Refuses to replace a folder holding files an export did not write (e.g. a checkpoint)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file: give a folder")
    written = artifact_pattern()
    foreign = sorted(p.name for p in out_dir.iterdir() if not written.match(p.name)) if out_dir.is_dir() else []
    if foreign:
        raise UserError(f"--out {out_dir} holds files an export does not write ({', '.join(foreign[:3])}): "
                        "choose an empty or new folder")


def used_roles(options: ExportOptions) -> tuple[str, ...]:
    """The image roles the steps use: verification always, calibration for INT8, search when the search runs."""
    return ("verification",) + (("calibration",) if options.int8 else ()) + (("search",) if options.search_runs
                                                                             else ())


def step_count(options: ExportOptions) -> int:
    """Steps of the progress bar: FP32, the optional ones, done."""
    return 2 + int(options.fp16) + int(options.int8) + int(options.engine) + int(options.formats != ("onnx",))


@dataclass
class ExportRun:
    """One export in progress: the model, where its files go, its images and its console output.

    Attributes:
        model: The PyTorch model (eval mode).
        ckpt: Its checkpoint dict (preprocessing, class names, training facts).
        options: What to write and check.
        out: The staging folder (becomes ``out_dir``).
        work: Scratch folder for intermediate files.
        images: The images of each role.
        progress: The progress bar and lines.
    """

    model: torch.nn.Module
    ckpt: dict
    options: ExportOptions
    out: Path
    work: Path
    images: RoleImages
    progress: Progress

    @property
    def cfg(self):
        return self.model.current_config()

    @property
    def preprocessing(self) -> dict:
        return self.ckpt.get("preprocessing") or {}

    @property
    def class_names(self) -> list[str]:
        return list(self.ckpt.get("class_names") or [f"class{i}" for i in range(self.cfg.num_classes)])

    def props(self, precision: str) -> dict[str, str]:
        return model_metadata(self.cfg.to_dict(), self.preprocessing, self.class_names, precision).to_props()

    def onnx_path(self, precision: str) -> Path:
        return self.out / model_file_name("onnx", precision)

    def search_side(self) -> int:
        """Side of the INT8 timing input: ``ExportOptions.search_side``; 3-D models default to a 64^3 patch."""
        if self.cfg.spatial_dims == 3:
            return search_side_3d(self.options, self.cfg.size_multiple)
        return self.options.search_side(self.cfg.size_multiple)


def fp32_step(run: ExportRun, report: ExportReport) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The FP32 ONNX file, checked against PyTorch; returns (PyTorch logits, FP32 ONNX logits) of the verification
    images."""
    o = run.options
    run.progress.step("fp32 onnx")
    path = export_onnx(run.model, run.onnx_path("fp32"), run.preprocessing, run.class_names, opset=o.opset,
                       img_size=o.img_size)
    val = run.images["verification"]
    reference = torch_logits(run.model, val.images)
    fp32_logits = onnx_logits(path, val.images)
    figures = parity(reference, fp32_logits)
    check_parity("fp32", figures)
    report.add(onnx_facts(path, "fp32", figures))
    report.verification = {"images": val.names, "count": len(val.names), "fp32_vs_torch": figures}
    return reference, fp32_logits


def fp16_step(run: ExportRun, report: ExportReport, reference: list[np.ndarray]) -> None:
    """The FP16 ONNX file, checked against PyTorch."""
    run.progress.step("fp16 onnx")
    path = convert_fp16(run.onnx_path("fp32"), run.onnx_path("fp16"), run.props("fp16"))
    figures = parity(reference, onnx_logits(path, run.images["verification"].images))
    check_parity("fp16", figures)
    report.add(onnx_facts(path, "fp16", figures))
    report.verification["fp16_vs_torch"] = figures
    report.precisions.append("fp16")


def int8_step(run: ExportRun, report: ExportReport, fp32_logits: list[np.ndarray]) -> None:
    """Calibrates (and searches), then grades the INT8 file on the verification images; a Dice drop over the limit
    raises DiceDropError naming the tensors with the lowest SQNR."""
    o, val = run.options, run.images["verification"]
    run.progress.step("int8 onnx")
    calib = run.images["calibration"]
    prepared = prepare(run.onnx_path("fp32"), run.work / "prepared.onnx")
    path = run.onnx_path("int8")
    if o.search_runs:
        settings = int8_search_step(run, report, prepared, path)
    else:
        settings = quantize_int8(prepared, path, calib.images, run.props("int8"), calib_method=o.calib_method,
                                 target=o.target, reduce_range=o.resolved_reduce_range)
        if o.target_row.local:  # the export machine is the target: say whether INT8 pays off here
            report.int8_speed = int8_speed(run, path)
    record = int8_quality(fp32_logits, onnx_logits(path, val.images), val, run.cfg.num_classes, o.max_dice_drop)
    if record["dice_check"] == FAILED:
        culprits = worst_tensors(tensor_sqnr(prepared, path, val.images))
        check_dice_drop(record["dice_drop"], o.max_dice_drop, culprits)
    report.add(onnx_facts(path, "int8", record["int8_vs_fp32"]))
    report.calibration = {"source": run.images.plan.roles["calibration"].source, "count": len(calib.names),
                          "method": o.calib_method, "images": calib.names, "quantization": settings}
    report.int8_quality = record
    report.precisions.append("int8")


def int8_speed(run: ExportRun, path: Path) -> dict:
    """INT8 vs FP32 latency on this CPU (export.json ``int8_speed``); warns unless INT8 is faster."""
    size, threads = run.search_side(), usable_threads()
    timing = time_pair(run.onnx_path("fp32"), path, size=size, threads=threads, in_channels=run.cfg.in_channels,
                       settings=EXPORT_TIMING, spatial_dims=run.cfg.spatial_dims)
    speed = {"size": size, "threads": threads, **timing}
    if warning := speed_warning(speed):
        logger.warning(warning)
    return speed


def int8_search_step(run: ExportRun, report: ExportReport, prepared: Path, path: Path) -> dict:
    """Runs the latency- and accuracy-aware search on the search images and copies the chosen file to ``path``;
    sets ``int8_search`` and ``int8_speed`` and returns the quantization settings."""
    o, cfg = run.options, run.cfg
    search, fp32 = run.images["search"], run.onnx_path("fp32")
    fp32_scores = search_scores(onnx_logits(fp32, search.images), search, cfg.num_classes)
    job = SearchJob(prepared=prepared, fp32_path=fp32, calib_images=run.images["calibration"].images, search=search,
                    fp32_scores=fp32_scores, props=run.props("int8"), work=run.work, size=run.search_side(),
                    threads=usable_threads(), in_channels=cfg.in_channels, num_classes=cfg.num_classes,
                    spatial_dims=cfg.spatial_dims)
    result = search_int8(job, o, say=run.progress.say)
    shutil.copyfile(result.path, path)
    chosen, record = result.chosen, result.record
    float_nodes = sorted({n for group in chosen["float_groups"] for n in record["groups"][group]})
    timing = {k: chosen[k] for k in ("fp32_ms", "int8_ms", "speedup", "speedup_q25", "speedup_q75", "verdict")}
    report.int8_search = record
    report.int8_speed = {"size": job.size, "threads": record["threads"], **timing}
    if warning := speed_warning(report.int8_speed):
        logger.warning("INT8 search: best candidate %r: %s", chosen["name"], warning)
    return {"target": o.target, "calib_method": o.calib_method, "quant_format": "QDQ",
            **o.target_row.quant_settings(o.resolved_reduce_range), **chosen["options"],
            "float_groups": chosen["float_groups"], "nodes_to_exclude": float_nodes,
            "qdq_rewrites": chosen.get("qdq_rewrites")}


def formats_step(run: ExportRun, report: ExportReport, reference: list[np.ndarray]) -> None:
    """The ``--formats`` files (``formats.step``), or ``--formats auto``'s comparison (``formats.auto``)."""
    o, cfg = run.options, run.cfg
    run.progress.step("formats")
    ctx = FormatContext(out=run.out, checkpoint=run.ckpt, model=run.model, options=o, multiple=cfg.size_multiple,
                        in_channels=cfg.in_channels, images=run.images, reference=reference, progress=run.progress)
    report.formats = list(o.formats)
    if AUTO in o.formats:
        result = run_auto(ctx)
        report.auto, report.shipped = result.record, result.shipped
        report.artifacts.extend(result.artifacts)
    else:
        report.artifacts.extend(write_formats(ctx))


def engine_step(run: ExportRun, report: ExportReport) -> None:
    """The TensorRT engine of the lowest precision written, its sidecar and trtexec line."""
    run.progress.step("tensorrt engine")
    precision = report.precisions[-1]
    result = build_engine(run.onnx_path(precision), run.out / model_file_name("tensorrt", precision), relative=True)
    files = ("engine", "sidecar", "trtexec_file")
    for key in files:
        report.add(file_facts(run.out / Path(result[key]).name))
    report.engine = {k: (Path(v).name if k in files else v) for k, v in result.items()}


__all__ = ["check_out_dir", "check_sizes", "export_model", "export_onnx"]
