"""``FormatOptions``: what the format exporters (``formats.EXPORTERS``) are told, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ...errors import UserError
from ..options import FIXED_SIZE

PRECISIONS = ("fp32", "int8")
TARGET_PLATFORMS = ("amd64", "arm")


@dataclass(frozen=True)
class FormatOptions:
    """Options of one exported file.

    Attributes:
        precision: ``"fp32"``, or ``"int8"`` (static post-training quantization on the calibration images).
        img_size: Fixed H = W in pixels. LiteRT files always have one (None: 256); for ExecuTorch it
            makes a static program; OpenVINO and ORT-format files keep the ONNX file's shapes.
        max_size: ExecuTorch: largest H and W of a dynamic program (memory is planned for it).
        max_batch: ExecuTorch: largest batch; LiteRT: the file's one batch size.
        accuracy_control: OpenVINO INT8: ``nncf.quantize_with_accuracy_control``, which keeps the layers
            that cost the most Dice in float until the drop is within ``max_dice_drop`` (needs masks).
        max_dice_drop: Largest FP32 - INT8 mean Dice that accuracy control accepts.
        target_platform: ORT format: ``"amd64"`` (x86: keeps ONNX Runtime's x86 layout optimizations;
            such a file runs on x86 only) or ``"arm"`` (phones: int8 QDQ kept as int8); None: this machine's.
    """

    precision: str = "fp32"
    img_size: int | None = None
    max_size: int = 1024
    max_batch: int = 1
    accuracy_control: bool = False
    max_dice_drop: float = 0.01
    target_platform: str | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.img_size is not None and self.img_size < 1:
            raise UserError(f"img_size {self.img_size} must be a positive number of pixels, e.g. 256")
        if self.max_size < 1 or self.max_batch < 1:
            raise UserError(f"max_size {self.max_size} and max_batch {self.max_batch} must be positive, "
                            "e.g. 1024 and 1")
        if not 0.0 <= self.max_dice_drop <= 1.0:
            raise UserError(f"max_dice_drop {self.max_dice_drop} must be in [0, 1], e.g. 0.01")
        if self.accuracy_control and self.precision != "int8":
            raise UserError("accuracy_control applies to precision 'int8' only: drop it or ask for int8")
        if self.target_platform is not None and self.target_platform not in TARGET_PLATFORMS:
            raise UserError(f"unknown target_platform {self.target_platform!r}: "
                            f"use one of {', '.join(TARGET_PLATFORMS)}")

    @property
    def fixed_size(self) -> int:
        """The side of a fixed-size file (LiteRT)."""
        return self.img_size or FIXED_SIZE

    def to_dict(self) -> dict:
        return asdict(self)
