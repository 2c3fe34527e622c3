"""The ``--formats`` step of an export: OpenVINO, ExecuTorch, LiteRT and ORT-format files next to the ONNX ones.

Each requested format is written in FP32 and, with ``--int8``, in INT8 (``export.formats`` does the
converting), into the same staging folder, then verified like the ONNX files: through the runtime
backend users embed, against PyTorch on the verification images (argmax agreement for FP32, the
Dice drop within ``--max-dice-drop`` for INT8). ``--formats auto`` is ``export.auto``.

=============  =========================================  ===========================================
format         files                                      INT8 by
=============  =========================================  ===========================================
``openvino``   ``model.xml`` / ``model.int8.xml`` (+.bin)  NNCF, accuracy control on the search images
``executorch`` ``model.pte`` / ``model.int8.pte``          PT2E, XNNPACK quantizer, calibration images
``litert``     ``model.tflite`` / ``model.int8.tflite``    PT2E, XNNPACK quantizer, calibration images
               (+ .json; fixed at --img-size, else 256)
``ort``        ``model.ort`` / ``model.int8.ort``          the INT8 ONNX file's own quantization
=============  =========================================  ===========================================
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import logging
import sys
from dataclasses import dataclass, field

import numpy as np

from ..errors import MissingExtraError, UserError

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "openvino", "executorch", "litert", "ort")
AUTO = "auto"
SUFFIX = {"openvino": ".xml", "executorch": ".pte", "litert": ".tflite", "ort": ".ort"}
# (module, PyPI name) each format needs, and the extra that installs them; INT8 adds its quantizer.
LIBRARIES = {
    "openvino": ("openvino", {"fp32": [("openvino", "openvino")], "int8": [("openvino", "openvino"),
                                                                          ("nncf", "nncf")]}),
    "executorch": ("mobile", {"fp32": [("executorch", "executorch")], "int8": [("executorch", "executorch"),
                                                                               ("torchao", "torchao")]}),
    "litert": ("mobile", {"fp32": [("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert")],
                          "int8": [("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert"),
                                   ("executorch", "executorch"), ("torchao", "torchao")]}),
    "ort": ("", {"fp32": [], "int8": []}),
}
BF16_AGREEMENT = 0.995  # like FP16 ONNX: bf16 keeps 8 bits of mantissa


def parse_formats(value: str | list | tuple) -> tuple[str, ...]:
    """``"onnx,ORT"`` or a list -> ``("onnx", "ort")``: lower-case, no repeats, ``onnx`` first (always written)."""
    names = value.split(",") if isinstance(value, str) else list(value)
    out = ["onnx"]
    for name in names:
        if not isinstance(name, str):
            raise UserError(f"--formats takes names such as onnx,openvino, not {name!r}")
        name = name.strip().lower()
        if name and name not in out:
            out.append(name)
    return tuple(out)


def check_formats(formats: tuple[str, ...]) -> None:
    """Raises UserError naming the valid names for an unknown one."""
    for name in formats:
        if name not in FORMATS + (AUTO,):
            close = difflib.get_close_matches(name, FORMATS + (AUTO,), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"unknown --formats name {name!r}: {hint}use some of {', '.join(FORMATS)}, or {AUTO}")
    if AUTO in formats and len(formats) > 2:
        raise UserError("--formats auto chooses the runtime itself: give it alone (onnx is always written)")


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (a module hidden as None counts as missing)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(fmt: str, precision: str) -> str | None:
    """The ``pip install`` line a format needs at a precision here, None when its libraries are installed."""
    extra, needs = LIBRARIES[fmt]
    absent = [package for module, package in needs[precision] if not installed(module)]
    return f"{', '.join(absent)} not installed: run `pip install 'edgeunet[{extra}]'`" if absent else None


def check_libraries(options) -> None:
    """Refuses, before any work, a requested format whose library is missing (``--formats auto`` skips instead)."""
    precisions = ("fp32", "int8") if options.int8 else ("fp32",)
    for fmt in options.formats:
        if fmt in (AUTO, "onnx"):
            continue
        for precision in precisions:
            if reason := missing(fmt, precision):
                raise MissingExtraError(f"--formats {fmt} ({precision}): {reason}")


def file_name(fmt: str, precision: str) -> str:
    """``model.xml``, ``model.int8.tflite``...: the file a format writes at a precision."""
    return "model" + (".int8" if precision == "int8" else "") + SUFFIX[fmt]


@dataclass
class FormatJob:
    """What every format file is made from and checked on.

    Attributes:
        stages: The export run (model, checkpoint, options, staging folder, role images).
        val: The verification images with masks.
        reference: PyTorch (K, H, W) logits of ``val.images``.
        calibration: The (C, H, W) calibration images the INT8 ONNX file was calibrated on (None without --int8).
    """

    stages: object
    val: object
    reference: list[np.ndarray]
    calibration: list[np.ndarray] | None = None
    fitted: dict = field(default_factory=dict)  # fixed side -> (images, masks, reference)

    @property
    def options(self):
        return self.stages.options

    @property
    def fixed_side(self) -> int:
        """LiteRT's side: --img-size, else the side the runtimes are timed at (256 unless --search-img-size)."""
        return self.options.search_side(self.stages.cfg.size_multiple)

    def calibration_images(self) -> list[np.ndarray]:
        if self.calibration is None:
            self.calibration = self.stages.load("calibration").images
        return self.calibration

    def images_for(self, fmt: str) -> tuple[list, list | None, list]:
        """(images, masks or None, PyTorch logits) a format's file is verified on: the verification images; for
        LiteRT's fixed side, the same role loaded at that side (synthetic images are made at it) and cropped or
        padded to it."""
        from .samples import fit_to_multiple
        from .verify import torch_logits

        if fmt != "litert" or all(x.shape[1:] == (self.fixed_side,) * 2 for x in self.val.images):
            return self.val.images, self.val.masks if self.val.has_masks else None, self.reference
        side = self.fixed_side
        if side not in self.fitted:
            val = self.stages.plan.load("verification", self.stages.spec, side)
            masks = val.masks if val.has_masks else [None] * len(val.images)
            pairs = [fit_to_multiple(x, m, self.stages.cfg.size_multiple, exact=side)
                     for x, m in zip(val.images, masks, strict=True)]
            images = [p[0] for p in pairs]
            self.fitted[side] = (images, [p[1] for p in pairs] if val.has_masks else None,
                                 torch_logits(self.stages.model, images))
        return self.fitted[side]


@contextlib.contextmanager
def quiet_loggers(*names: str):
    """Lowers the chatter of libraries that log INFO lines through their own handlers (NNCF, ORT's tools)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def make_file(job: FormatJob, fmt: str, precision: str) -> dict:
    """Writes one format file into the staging folder; returns the exporter's facts."""
    with quiet_loggers("nncf", "ort_format_model", "ort_format_model.utils"):
        return _make_file(job, fmt, precision)


def _make_file(job: FormatJob, fmt: str, precision: str) -> dict:
    from .formats import EXPORTERS, FormatOptions
    from .stages import ONNX_NAMES

    o, out = job.options, job.stages.out
    path = out / file_name(fmt, precision)
    calib = job.calibration_images() if precision == "int8" else None
    if fmt == "openvino":
        search = job.stages.load("search") if precision == "int8" else None
        control = bool(search and search.has_masks and search.has_foreground)
        options = FormatOptions(precision=precision, accuracy_control=control, max_dice_drop=o.max_dice_drop)
        return EXPORTERS[fmt](out / ONNX_NAMES["fp32"], path, calib, options,
                              validation=(search.images, search.masks) if control else None)
    if fmt == "ort":  # --target arm: ORT's ARM layout (int8 QDQ kept as int8); else this machine's
        platform = "arm" if o.target == "arm" else None
        return EXPORTERS[fmt](out / ONNX_NAMES[precision], path, None,
                              FormatOptions(precision=precision, target_platform=platform))
    side = job.fixed_side if fmt == "litert" else o.img_size
    return EXPORTERS[fmt](job.stages.ckpt, path, calib, FormatOptions(precision=precision, img_size=side))


def verify_made(job: FormatJob, facts: dict, hint: str | None = None) -> dict:
    """Checks a written file through its runtime backend; returns its export.json artifact record.

    FP32 files must agree with PyTorch on the argmax of >= 99.9 % of pixels (bf16 inference: 99.5 %);
    INT8 files are graded by their Dice drop against PyTorch (``dice_check``: passed, failed or skipped).
    """
    from . import quality
    from .formats import MIN_AGREEMENT, verify_file
    from .pipeline import file_facts
    from .verify import dice_drop

    fmt, precision = facts["format"], facts["precision"]
    path = job.stages.out / facts["file"]
    images, masks, reference = job.images_for(fmt)
    bound = BF16_AGREEMENT if hint == "bf16" else (0.0 if precision == "int8" else MIN_AGREEMENT["fp32"])
    result = verify_file(path, precision, reference, images, masks, min_agreement=bound, hint=hint)
    drop = dice_drop(result["reference_scores"], result["scores"]) if masks else None
    if masks is None:
        check = quality.NO_MASKS
    elif not job.val.has_foreground:
        check = quality.NO_FOREGROUND
    elif drop is None:
        check = quality.UNDEFINED
    else:
        check = quality.PASSED if drop <= job.options.max_dice_drop else quality.FAILED
    scores = result.get("scores") or {}
    # size_bytes: the file with its companions (.bin, sidecar .json); sha256: the file itself
    return {**file_facts(path), "size_bytes": facts["size_bytes"], "format": fmt, "precision": precision,
            "parity": result["parity"],
            "min_agreement": bound, "dice": scores.get("mean_dice"),
            "reference_dice": (result.get("reference_scores") or {}).get("mean_dice"), "dice_drop": drop,
            "dice_check": check, "verified_on": f"{len(images)} verification images",
            "files": [f["file"] for f in facts["files"]], "companions": facts["files"][1:],
            "quantization": facts.get("quantization"), "versions": facts.get("versions"),
            **{k: v for k, v in facts.items() if k not in _COMMON_FACTS}}  # the format's own, e.g. target_platform


# What every exporter returns (``formats.common.file_facts``); the rest of its facts are the format's own.
_COMMON_FACTS = ("format", "file", "files", "size_bytes", "precision", "versions", "quantization")


def write_formats(job: FormatJob) -> dict:
    """The explicit ``--formats`` (not auto): every file written and verified; a failed check stops the export.

    Returns:
        ``{"formats": [...], "format_artifacts": [records]}`` for export.json.
    """
    from .verify import DiceDropError

    o = job.options
    records = []
    for fmt in (f for f in o.formats if f not in ("onnx", AUTO)):
        for precision in ("fp32", "int8") if o.int8 else ("fp32",):
            job.stages.progress.say(f"{fmt} {precision}")
            record = verify_made(job, make_file(job, fmt, precision))
            if record["dice_check"] == "failed":
                raise DiceDropError(f"{record['file']}: Dice drop {record['dice_drop']:.4f} vs PyTorch exceeds "
                                    f"--max-dice-drop {o.max_dice_drop:g}: keep {fmt} at FP32, or try more "
                                    "--calib-images")
            records.append(record)
    return {"formats": list(o.formats), "format_artifacts": records}


def run_formats(stages, val, reference: list[np.ndarray]) -> dict:
    """The formats step of ``Stages.run``: nothing for ONNX alone, ``auto`` or the listed formats."""
    formats = stages.options.formats
    if formats == ("onnx",):
        return {}
    job = FormatJob(stages, val, reference)
    if AUTO in formats:
        from .auto import run_auto

        return run_auto(job)
    return write_formats(job)

