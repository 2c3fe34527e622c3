"""The ``--formats`` step of an export: the files of the formats asked for, next to the ONNX ones, each verified.

Each requested format (a row of ``edgeunet.formats``) is written in FP32 and, with ``--int8``, in
INT8 by its exporter (``EXPORTERS``) from the source the table names, into the same staging
folder, then verified like the ONNX files: through the runtime backend users embed, against
PyTorch on the verification images (argmax agreement for FP32, the Dice drop within
``--max-dice-drop`` for INT8: ``quality.dice_verdict``). Fixed-size files are made and verified at
``ExportOptions.fixed_side``. ``--formats auto`` is ``formats.auto``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...errors import MissingExtraError
from ...formats import AUTO, BY_NAME, Format, missing, model_file_name, takes_one_size
from ..options import ExportOptions
from ..progress import Progress
from ..quality import FAILED, dice_verdict
from ..quiet import quiet
from ..report import ArtifactFacts, file_facts
from ..roles import RoleImages
from ..samples import Inputs, fit_to_multiple
from ..targets import Target
from ..verify import DiceDropError, dice_drop, torch_logits
from . import EXPORTERS
from .check import MIN_AGREEMENT, verify_file
from .options import FormatOptions

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

BF16_AGREEMENT = 0.995  # like FP16 ONNX: bf16 keeps 8 bits of mantissa
# What every exporter returns (``common.made_facts``); the rest of its facts are the format's own.
_COMMON_FACTS = ("format", "file", "files", "size_bytes", "precision", "versions", "quantization")


def check_libraries(options: ExportOptions) -> None:
    """Refuses, before any work, a requested format whose library is missing (``--formats auto`` skips instead)."""
    precisions = ("fp32", "int8") if options.int8 else ("fp32",)
    for name in options.formats:
        if name in (AUTO, "onnx"):
            continue
        for precision in precisions:
            if reason := missing(name, precision):
                raise MissingExtraError(f"--formats {name} ({precision}): {reason}")


@dataclass
class FormatContext:
    """What the formats step makes its files from and checks them on.

    Attributes:
        out: The staging folder (the ONNX files are there; the format files go there).
        checkpoint: The checkpoint dict (source of the formats made from it).
        model: The PyTorch model (eval): reference logits of images at a fixed side.
        options: The export's options.
        multiple: The model's size multiple.
        in_channels: C of the model.
        images: The role images (calibration, search, verification).
        reference: PyTorch (K, H, W) logits of the verification images.
        progress: The export's console output.
    """

    out: Path
    checkpoint: dict
    model: torch.nn.Module
    options: ExportOptions
    multiple: int
    in_channels: int
    images: RoleImages
    reference: list[np.ndarray]
    progress: Progress
    fitted: dict[int, tuple] = field(default_factory=dict)  # fixed side -> (images, masks, reference)

    @property
    def target(self) -> Target:
        return self.options.target_row

    @property
    def val(self) -> Inputs:
        return self.images["verification"]

    @property
    def fixed_side(self) -> int:
        """The side of fixed-size files (``ExportOptions.fixed_side``)."""
        return self.options.fixed_side(self.multiple)

    def one_size(self, fmt: Format) -> bool:
        """Whether this model's ``fmt`` file takes one input size (``formats.takes_one_size``)."""
        return takes_one_size(fmt, bool(self.model.cfg.attention_levels))

    def onnx_path(self, precision: str) -> Path:
        return self.out / model_file_name("onnx", precision)

    def images_for(self, fmt: Format) -> tuple[list, list | None, list]:
        """(images, masks or None, PyTorch logits) a format's file is verified on: the verification images; for a
        fixed-size format, the same role loaded at its side (synthetic images are made at it) and cropped or
        padded to it."""
        side = self.fixed_side
        val = self.val
        if not self.one_size(fmt) or all(x.shape[1:] == (side, side) for x in val.images):
            return val.images, val.masks if val.has_masks else None, self.reference
        if side not in self.fitted:
            at_side = self.images.at_side("verification", side)
            masks = at_side.masks if at_side.has_masks else [None] * len(at_side.images)
            pairs = [fit_to_multiple(x, m, self.multiple, exact=side)
                     for x, m in zip(at_side.images, masks, strict=True)]
            images = [p[0] for p in pairs]
            self.fitted[side] = (images, [p[1] for p in pairs] if at_side.has_masks else None,
                                 torch_logits(self.model, images))
        return self.fitted[side]


def make_file(ctx: FormatContext, name: str, precision: str) -> dict:
    """Writes one format file into the staging folder from the source its table row names; returns the exporter's
    facts."""
    fmt, o = BY_NAME[name], ctx.options
    source = {"checkpoint": ctx.checkpoint, "fp32 onnx": ctx.onnx_path("fp32"),
              "onnx": ctx.onnx_path(precision)}[fmt.made_from]
    calib = ctx.images["calibration"].images if precision == "int8" else None
    settings: dict = {"precision": precision, "img_size": ctx.fixed_side if ctx.one_size(fmt) else o.img_size,
                      "target_platform": ctx.target.ort_platform}
    extra = {}
    if fmt.accuracy_control and precision == "int8":  # keeps costly layers in float, judged on the search images
        search = ctx.images["search"]
        control = search.has_masks and search.has_foreground
        settings.update(accuracy_control=control, max_dice_drop=o.max_dice_drop)
        extra["validation"] = (search.images, search.masks) if control else None
    return EXPORTERS[name](source, ctx.out / model_file_name(name, precision), calib, FormatOptions(**settings),
                           **extra)


def verify_made(ctx: FormatContext, facts: dict, hint: str | None = None) -> ArtifactFacts:
    """Checks a written file through its runtime backend; returns its export.json artifact record.

    FP32 files must agree with PyTorch on the argmax of >= 99.9 % of pixels (bf16 inference: 99.5 %);
    INT8 files are graded by their Dice drop against PyTorch (``quality.dice_verdict``).
    """
    fmt, precision = BY_NAME[facts["format"]], facts["precision"]
    path = ctx.out / facts["file"]
    images, masks, reference = ctx.images_for(fmt)
    bound = BF16_AGREEMENT if hint == "bf16" else (0.0 if precision == "int8" else MIN_AGREEMENT["fp32"])
    with quiet(f"{fmt.title} runtime"):  # runtimes announce their delegates when a file opens
        result = verify_file(path, precision, reference, images, masks, min_agreement=bound, hint=hint)
    drop = dice_drop(result["reference_scores"], result["scores"]) if masks else None
    scores = result.get("scores") or {}
    own = {k: v for k, v in facts.items() if k not in _COMMON_FACTS}  # the format's own, e.g. target_platform
    record = file_facts(path, format=fmt.name, precision=precision, parity=result["parity"], min_agreement=bound,
                        dice=scores.get("mean_dice"),
                        reference_dice=(result.get("reference_scores") or {}).get("mean_dice"), dice_drop=drop,
                        dice_check=dice_verdict(ctx.val, drop, ctx.options.max_dice_drop),
                        verified_on=f"{len(images)} verification images", files=[f["file"] for f in facts["files"]],
                        companions=facts["files"][1:], quantization=facts.get("quantization"),
                        versions=facts.get("versions"), **own)
    record.size_bytes = facts["size_bytes"]  # the file with its companions (weights, sidecar); sha256: the file
    return record


def write_formats(ctx: FormatContext) -> list[ArtifactFacts]:
    """The explicit ``--formats`` (not auto): every file written and verified; a failed Dice check stops the export.

    Returns:
        The artifact records of the files written, in the order asked for.
    """
    o = ctx.options
    records = []
    for name in (f for f in o.formats if f not in ("onnx", AUTO)):
        for precision in ("fp32", "int8") if o.int8 else ("fp32",):
            ctx.progress.note(f"{name} {precision}")
            record = verify_made(ctx, make_file(ctx, name, precision))
            if record.details["dice_check"] == FAILED:
                raise DiceDropError(f"{record.file}: Dice drop {record.details['dice_drop']:.4f} vs PyTorch exceeds "
                                    f"--max-dice-drop {o.max_dice_drop:g}: keep {name} at FP32, or try more "
                                    "--calib-images")
            records.append(record)
    return records
