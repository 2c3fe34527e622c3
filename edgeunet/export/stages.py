"""The steps of one export, in order: FP32 ONNX, verification data, FP16, INT8, engine.

``Stages`` writes artifacts into a staging folder and gathers the figures of export.json;
``pipeline.export_model`` moves the folder into place once every check passed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from . import verify
from .onnx import export_onnx, model_metadata
from .samples import Inputs, load_inputs

logger = logging.getLogger(__name__)

SEARCH_SIZE = 256  # px: default side timed by the INT8 search when the graph has dynamic H and W


def search_size(img_size: int | None, multiple: int) -> int:
    """Side (px) at which INT8 latency is measured: the static size, else ``SEARCH_SIZE`` rounded to the size multiple."""
    return img_size or max(multiple, SEARCH_SIZE // multiple * multiple)


class Stages:
    """One export run.

    Args:
        model: The PyTorch model (eval mode).
        ckpt: Its checkpoint dict (preprocessing, class names, train_args).
        out: Staging folder for the artifacts.
        work: Scratch folder for intermediate files (removed afterwards).
        progress: Show a progress bar on stderr.
    """

    def __init__(self, model, ckpt: dict, out: Path, work: Path, progress: bool = True):
        self.model, self.ckpt, self.out, self.work = model, ckpt, out, work
        self.cfg = model.current_config()
        self.preprocessing = ckpt.get("preprocessing") or {}
        self.class_names = list(ckpt.get("class_names") or [f"class{i}" for i in range(self.cfg.num_classes)])
        self.onnx_files: list[tuple[str, str, dict | None]] = []  # (file name, precision, parity)
        self.other_files: list[str] = []
        self.progress = progress
        self._bar = None

    def _step(self, name: str) -> None:
        logger.info("export: %s", name)
        if self._bar is not None:
            self._bar.set_postfix_str(name)
            self._bar.update(1)

    def props(self, precision: str) -> dict[str, str]:
        return model_metadata(self.cfg.to_dict(), self.preprocessing, self.class_names, precision).to_props()

    def inputs(self, calib: str, n: int, split: str, img_size: int | None) -> Inputs:
        size = img_size or int(self.ckpt.get("train_args", {}).get("img_size", 256))
        return load_inputs(calib, n, size, split, self.preprocessing, self.cfg.in_channels, self.cfg.size_multiple, exact=img_size, num_classes=self.cfg.num_classes)

    def run(self, *, int8, fp16, calib, calib_size, calib_method, target, opset, img_size, engine, max_dice_drop, reduce_range,
            int8_search=None) -> dict:
        """Runs every requested step; returns the export.json content gathered so far."""
        from tqdm import tqdm

        steps = 2 + int(fp16) + int(int8) + int(engine)
        with tqdm(total=steps, desc="export", unit="step", disable=None if self.progress else True, leave=False) as self._bar:
            self._step("fp32 onnx")
            fp32 = export_onnx(self.model, self.out / "model.onnx", self.preprocessing, self.class_names, opset, img_size)
            val = self.inputs(calib, calib_size, "val", img_size)
            reference = verify.torch_logits(self.model, val.images)
            fp32_logits = verify.onnx_logits(fp32, val.images)
            figures = verify.parity(reference, fp32_logits)
            verify.check_parity("fp32", figures)
            self.onnx_files.append(("model.onnx", "fp32", figures))
            report = {"precisions": ["fp32"], "opset": opset, "img_size": img_size,
                      "verification": {"data": calib, "split": "val", "count": len(val.names), "images": val.names,
                                       "fp32_vs_torch": figures}}
            if fp16:
                self._step("fp16 onnx")
                report["verification"]["fp16_vs_torch"] = self.fp16(fp32, val, reference)
                report["precisions"].append("fp16")
            if int8:
                self._step("int8 onnx")
                report.update(self.int8(fp32, val, fp32_logits, calib, calib_size, calib_method, target, reduce_range, max_dice_drop, img_size,
                                        int8_search))
                report["precisions"].append("int8")
            if engine:
                self._step("tensorrt engine")
                report["engine"] = self.engine(report["precisions"][-1])
            self._step("done")
        return report

    def fp16(self, fp32: Path, val: Inputs, reference: list) -> dict:
        from .fp16 import convert_fp16

        path = convert_fp16(fp32, self.out / "model.fp16.onnx", self.props("fp16"))
        figures = verify.parity(reference, verify.onnx_logits(path, val.images))
        verify.check_parity("fp16", figures)
        self.onnx_files.append((path.name, "fp16", figures))
        return figures

    def int8(self, fp32, val, fp32_logits, calib, calib_size, calib_method, target, reduce_range, max_dice_drop, img_size, search=None) -> dict:
        from .debug import tensor_sqnr, worst_tensors
        from .int8 import prepare, quantize_int8

        calib_inputs = self.inputs(calib, calib_size, "calib", img_size)
        prepared = prepare(fp32, self.work / "prepared.onnx")
        path = self.out / "model.int8.onnx"
        speed: dict = {}
        if search is not None:
            settings, speed = self.int8_search(prepared, fp32, path, calib_inputs, val, fp32_logits, calib_method, target, reduce_range,
                                               max_dice_drop, img_size, search)
        else:
            settings = quantize_int8(prepared, path, calib_inputs.images, self.props("int8"), calib_method, target, reduce_range)
            if target == "cpu":  # the export machine is the target: say whether INT8 pays off here
                speed = self.int8_speed(fp32, path, img_size)
        int8_logits = verify.onnx_logits(path, val.images)
        figures = verify.parity(fp32_logits, int8_logits)
        quality: dict = {"max_dice_drop": max_dice_drop, "int8_vs_fp32": figures}
        if all(m is not None for m in val.masks):
            quality["fp32"] = verify.scores(fp32_logits, val.masks, self.cfg.num_classes)
            quality["int8"] = verify.scores(int8_logits, val.masks, self.cfg.num_classes)
            quality["dice_drop"] = verify.dice_drop(quality["fp32"], quality["int8"])
            if quality["dice_drop"] is not None and quality["dice_drop"] > max_dice_drop:
                culprits = worst_tensors(tensor_sqnr(prepared, path, calib_inputs.images))
                verify.check_dice_drop(quality["dice_drop"], max_dice_drop, culprits)
        else:
            logger.warning("the verification data has no masks: the INT8 Dice check was skipped")
            quality["dice_drop"] = None
        self.onnx_files.append((path.name, "int8", figures))
        calibration = {"data": calib, "split": "calib", "count": len(calib_inputs.names), "method": calib_method,
                       "images": calib_inputs.names, "quantization": settings}
        return {"calibration": calibration, "int8_quality": quality, **speed}

    def int8_speed(self, fp32: Path, path: Path, img_size: int | None, size: int | None = None) -> dict:
        """INT8 vs FP32 latency on this CPU (export.json ``int8_speed``); warns when INT8 is slower."""
        from ..env import cpu_info
        from .int8_search import measure_speedup

        size = size or search_size(img_size, self.cfg.size_multiple)
        threads = int(cpu_info()["usable_cores"] or 1)
        timing = measure_speedup(fp32, path, size, threads, self.cfg.in_channels, min_pairs=15, min_time_s=2.0)
        faster = timing["speedup"] > 1.0
        if not faster:
            logger.warning("model.int8.onnx is slower than model.onnx on this CPU (x%.2f at %d px): use the FP32 file here, "
                           "or keep INT8 for its size and a CPU with VNNI", timing["speedup"], size)
        return {"int8_speed": {"size": size, "threads": threads, **timing}, "int8_faster_than_fp32": faster}

    def int8_search(self, prepared, fp32, path, calib_inputs, val, fp32_logits, calib_method, target, reduce_range, max_dice_drop,
                    img_size, search: dict) -> tuple[dict, dict]:
        """Runs the latency- and accuracy-aware search, writes the chosen file to ``path``; returns (settings, speed figures)."""
        import shutil

        from ..env import cpu_info
        from .int8 import quant_settings
        from .int8_search import search_int8

        has_masks = all(m is not None for m in val.masks)
        fp32_scores = verify.scores(fp32_logits, val.masks, self.cfg.num_classes) if has_masks else None
        size = search.get("size") or search_size(img_size, self.cfg.size_multiple)
        say = self._say if self.progress else None
        result = search_int8(prepared, fp32, calib_inputs.images, val, fp32_scores, self.props("int8"), work=self.work, target=target,
                             calib_method=calib_method, reduce_range=reduce_range, size=size, threads=int(cpu_info()["usable_cores"] or 1),
                             in_channels=self.cfg.in_channels, num_classes=self.cfg.num_classes, max_dice_drop=max_dice_drop,
                             time_budget_s=search.get("time_s", 75.0), say=say)
        shutil.copyfile(result.path, path)
        float_nodes = sorted({n for group in result.chosen["float_groups"] for n in result.record["groups"][group]})
        settings = {"target": target, "calib_method": calib_method, "quant_format": "QDQ", **quant_settings(target, reduce_range),
                    **result.chosen["options"], "float_groups": result.chosen["float_groups"], "nodes_to_exclude": float_nodes}
        timing = {k: result.chosen[k] for k in ("fp32_ms", "int8_ms", "speedup")}
        faster = result.record["int8_faster_than_fp32"]
        if not faster:
            logger.warning("no INT8 candidate is faster than FP32 on this CPU (best x%.2f at %d px): model.int8.onnx is written as "
                           "asked, but use model.onnx here", timing["speedup"], size)
        speed = {"int8_speed": {"size": size, "threads": result.record["threads"], **timing}, "int8_faster_than_fp32": faster}
        return settings, {"int8_search": result.record, **speed}

    def _say(self, line: str) -> None:
        from tqdm import tqdm

        logger.info(line)
        tqdm.write(line, file=sys.stderr)

    def engine(self, precision: str) -> dict:
        from .tensorrt import build_engine

        onnx_name = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}[precision]
        result = build_engine(self.out / onnx_name, self.out / f"model.{precision}.engine", relative=True)
        for key in ("engine", "sidecar", "trtexec_file"):
            self.other_files.append(Path(result[key]).name)
        return {k: (Path(v).name if k in ("engine", "sidecar", "trtexec_file") else v) for k, v in result.items()}
