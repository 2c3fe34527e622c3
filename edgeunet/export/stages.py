"""The steps of one export, in order: FP32 ONNX, FP16, INT8 (calibration, search), engine.

``Stages`` writes artifacts into a staging folder and gathers the figures of export.json;
``pipeline.export_model`` moves the folder into place once every check passed. The images of
each role come from ``roles``, the INT8 check's policy from ``quality``, the INT8 vs FP32
timing from ``speed`` and the console output from ``progress``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..checkpoint import training_facts
from . import quality, verify
from .onnx import export_onnx, model_metadata
from .options import ExportOptions
from .progress import Progress
from .roles import RolePlan
from .samples import Inputs, InputSpec

logger = logging.getLogger(__name__)

ONNX_NAMES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}


def usable_threads() -> int:
    from ..env import cpu_info

    return int(cpu_info()["usable_cores"] or 1)


class Stages:
    """One export run.

    Args:
        model: The PyTorch model (eval mode).
        ckpt: Its checkpoint dict (preprocessing, class names, training facts).
        folders: (staging folder for the artifacts, scratch folder for intermediate files).
        options: What to write and check.
        plan: The images of each role.
        progress: Show a progress bar on stderr.
    """

    def __init__(self, model, ckpt: dict, folders: tuple[Path, Path], options: ExportOptions, plan: RolePlan,
                 progress: bool = True):
        self.model, self.ckpt, self.options, self.plan = model, ckpt, options, plan
        self.out, self.work = folders
        self.cfg = model.current_config()
        self.preprocessing = ckpt.get("preprocessing") or {}
        self.class_names = list(ckpt.get("class_names") or [f"class{i}" for i in range(self.cfg.num_classes)])
        self.spec = InputSpec(self.preprocessing, self.cfg.in_channels, self.cfg.size_multiple, options.img_size,
                              self.cfg.num_classes, self.cfg.spatial_dims, tuple(self.cfg.size_multiples))
        self.onnx_files: list[tuple[str, str, dict | None]] = []  # (file name, precision, parity)
        self.other_files: list[str] = []
        self.used = ("verification",) + (("calibration",) if options.int8 else ()) + (
            ("search",) if options.search_runs else ())
        steps = 2 + int(options.fp16) + int(options.int8) + int(options.engine) + int(options.formats != ("onnx",))
        self.progress = Progress(steps, progress)

    def props(self, precision: str) -> dict[str, str]:
        return model_metadata(self.cfg.to_dict(), self.preprocessing, self.class_names, precision).to_props()

    def search_side(self) -> int:
        """Side of the INT8 timing input: ``ExportOptions.search_side``; 3-D models default to a 64^3 patch."""
        from .samples import search_side_3d

        if self.cfg.spatial_dims == 3:
            return search_side_3d(self.options, self.cfg.size_multiple)
        return self.options.search_side(self.cfg.size_multiple)

    def load(self, role: str) -> Inputs:
        size = self.options.img_size or training_facts(self.ckpt).crop
        inputs = self.plan.load(role, self.spec, size)
        logger.info("%s: %d images", role, len(inputs.names))
        return inputs

    def run(self) -> dict:
        """Runs every requested step; returns the export.json content gathered so far."""
        o = self.options
        with self.progress:
            self.progress.say(f"data: {self.plan.summary(self.used)}")
            self.progress.step("fp32 onnx")
            fp32 = export_onnx(self.model, self.out / ONNX_NAMES["fp32"], self.preprocessing, self.class_names,
                               opset=o.opset, img_size=o.img_size)
            val = self.load("verification")
            reference = verify.torch_logits(self.model, val.images)
            fp32_logits = verify.onnx_logits(fp32, val.images)
            figures = verify.parity(reference, fp32_logits)
            verify.check_parity("fp32", figures)
            self.onnx_files.append((ONNX_NAMES["fp32"], "fp32", figures))
            report = {"precisions": ["fp32"], "opset": o.opset, "img_size": o.img_size, "options": o.to_dict(),
                      "data": self.plan.to_dict(self.used),
                      "verification": {"images": val.names, "count": len(val.names), "fp32_vs_torch": figures}}
            if o.fp16:
                self.progress.step("fp16 onnx")
                report["verification"]["fp16_vs_torch"] = self.fp16(fp32, val, reference)
                report["precisions"].append("fp16")
            if o.int8:
                self.progress.step("int8 onnx")
                report.update(self.int8(fp32, val, fp32_logits))
                report["precisions"].append("int8")
            if o.formats != ("onnx",):
                from .formats_stage import run_formats

                self.progress.step("formats")
                report.update(run_formats(self, val, reference))
            if o.engine:
                self.progress.step("tensorrt engine")
                report["engine"] = self.engine(report["precisions"][-1])
            self.progress.step("done")
        return report

    def fp16(self, fp32: Path, val: Inputs, reference: list) -> dict:
        from .fp16 import convert_fp16

        path = convert_fp16(fp32, self.out / ONNX_NAMES["fp16"], self.props("fp16"))
        figures = verify.parity(reference, verify.onnx_logits(path, val.images))
        verify.check_parity("fp16", figures)
        self.onnx_files.append((path.name, "fp16", figures))
        return figures

    def int8(self, fp32: Path, val: Inputs, fp32_logits: list) -> dict:
        """Calibrates (and searches), then grades the INT8 file on the verification images."""
        from .debug import tensor_sqnr, worst_tensors
        from .int8 import prepare, quantize_int8

        o = self.options
        calib = self.load("calibration")
        prepared = prepare(fp32, self.work / "prepared.onnx")
        path = self.out / ONNX_NAMES["int8"]
        speed: dict = {}
        if o.search_runs:
            settings, speed = self.int8_search(prepared, fp32, path, calib)
        else:
            settings = quantize_int8(prepared, path, calib.images, self.props("int8"), calib_method=o.calib_method,
                                     target=o.target, reduce_range=o.resolved_reduce_range)
            if o.target == "cpu":  # the export machine is the target: say whether INT8 pays off here
                speed = self.int8_speed(fp32, path)
        int8_logits = verify.onnx_logits(path, val.images)
        record = quality.int8_quality(fp32_logits, int8_logits, val, self.cfg.num_classes, o.max_dice_drop)
        if record["dice_check"] == quality.FAILED:
            culprits = worst_tensors(tensor_sqnr(prepared, path, val.images))
            verify.check_dice_drop(record["dice_drop"], o.max_dice_drop, culprits)
        self.onnx_files.append((path.name, "int8", record["int8_vs_fp32"]))
        calibration = {"source": self.plan.roles["calibration"].source, "count": len(calib.names),
                       "method": o.calib_method, "images": calib.names, "quantization": settings}
        return {"calibration": calibration, "int8_quality": record, **speed}

    def int8_speed(self, fp32: Path, path: Path) -> dict:
        """INT8 vs FP32 latency on this CPU (export.json ``int8_speed``); warns unless INT8 is faster."""
        from .speed import EXPORT_TIMING, speed_warning, time_pair

        size, threads = self.search_side(), usable_threads()
        timing = time_pair(fp32, path, size=size, threads=threads, in_channels=self.cfg.in_channels,
                           settings=EXPORT_TIMING, spatial_dims=self.cfg.spatial_dims)
        speed = {"size": size, "threads": threads, **timing}
        if warning := speed_warning(speed):
            logger.warning(warning)
        return {"int8_speed": speed, "int8_faster_than_fp32": timing["speedup"] > 1.0}

    def int8_search(self, prepared: Path, fp32: Path, path: Path, calib: Inputs) -> tuple[dict, dict]:
        """Runs the latency- and accuracy-aware search on the search images, copies the chosen file to ``path``;
        returns (quantization settings, speed figures)."""
        from .int8 import quant_settings
        from .int8_search import SearchJob, search_int8
        from .speed import speed_warning

        o = self.options
        search = self.load("search")
        fp32_scores = quality.search_scores(verify.onnx_logits(fp32, search.images), search, self.cfg.num_classes)
        job = SearchJob(prepared=prepared, fp32_path=fp32, calib_images=calib.images, search=search,
                        fp32_scores=fp32_scores, props=self.props("int8"), work=self.work,
                        size=self.search_side(), threads=usable_threads(), in_channels=self.cfg.in_channels,
                        num_classes=self.cfg.num_classes, spatial_dims=self.cfg.spatial_dims)
        result = search_int8(job, o, say=self.progress.say)
        shutil.copyfile(result.path, path)
        chosen, record = result.chosen, result.record
        float_nodes = sorted({n for group in chosen["float_groups"] for n in record["groups"][group]})
        settings = {"target": o.target, "calib_method": o.calib_method, "quant_format": "QDQ",
                    **quant_settings(o.target, o.resolved_reduce_range), **chosen["options"],
                    "float_groups": chosen["float_groups"], "nodes_to_exclude": float_nodes,
                    "qdq_rewrites": chosen.get("qdq_rewrites")}
        timing = {k: chosen[k] for k in ("fp32_ms", "int8_ms", "speedup", "speedup_q25", "speedup_q75", "verdict")}
        speed = {"size": job.size, "threads": record["threads"], **timing}
        if warning := speed_warning(speed):
            logger.warning("INT8 search: best candidate %r: %s", chosen["name"], warning)
        return settings, {"int8_search": record, "int8_speed": speed,
                          "int8_faster_than_fp32": record["int8_faster_than_fp32"]}

    def engine(self, precision: str) -> dict:
        from .tensorrt import build_engine

        result = build_engine(self.out / ONNX_NAMES[precision], self.out / f"model.{precision}.engine", relative=True)
        for key in ("engine", "sidecar", "trtexec_file"):
            self.other_files.append(Path(result[key]).name)
        return {k: (Path(v).name if k in ("engine", "sidecar", "trtexec_file") else v) for k, v in result.items()}
