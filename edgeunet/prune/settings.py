"""Pruning settings: one frozen dataclass, validated once where it is built (messages name the flags)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..errors import UserError
from ..fields import option
from .importance import IMPORTANCES, check_importance
from .plan import MIN_CHANNELS, check_ratio
from .target import parse_count

DEVICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class PruneSettings:
    """What ``edgeunet prune`` does besides the checkpoint and the run folder; a field made with ``option`` is a CLI
    flag (``edgeunet.cli.options.add_fields``).

    Attributes:
        data: Fine-tuning data: a folder data set, ``"synthetic"`` or ``"synthetic3d"``; None means the
            built-in synthetic data of the checkpoint's dimensionality.
        ratio: Fraction of channels removed from every width, in [0, 1).
        target_macs: Instead of ``ratio``: MACs per (1, C, img_size, img_size) image to reach ("0.5G", 4e8...);
            parsed to an int.
        target_params: Instead of ``ratio``: parameter count to reach ("150k", "1.2M"...); parsed to an int.
        importance: ``l1``, ``l2``, ``taylor`` or ``bn-scale``.
        steps: Prune in this many steps, fine-tuning ``finetune_epochs`` between them (RUN_DIR/step<k>/).
        finetune_epochs: Epochs of the final fine-tuning (0: save the pruned model as is, no metrics.jsonl).
        round_to: Kept channel counts are multiples of this.
        min_channels: No width is pruned below this; narrower widths are kept whole.
        img_size: Training crop and MAC-counting size (default: the checkpoint's training size, else 256);
            for a 3-D model the side of the cube MACs are counted on (default: the patch's largest side).
        patch: (D, H, W) fine-tuning patch of a 3-D model (default: the checkpoint's).
        batch_size, samples_per_epoch, lr, seed, device, progress: As for ``edgeunet train``.
        exist_ok: Overwrite a run already in the output folder.
    """

    data: str | None = option(None, "data", "DIR with images/ and masks/, 'synthetic' or 'synthetic3d' (default: the "
                              "built-in synthetic data of the checkpoint's dimensionality)")
    ratio: float = option(0.5, "ratio", "fraction of channels removed from every layer, in [0, 1)",
                          exclusive="amount")
    target_macs: int | str | None = option(None, "text", "prune until MACs per image at --img-size are at most this "
                                           "(e.g. 0.5G, 400M)", exclusive="amount", metavar="MACS")
    target_params: int | str | None = option(None, "text", "prune until the parameters are at most this (e.g. 150k, "
                                             "1.2M)", exclusive="amount", metavar="PARAMS")
    importance: str = option("l1", "choice", "channel ranking", choices=IMPORTANCES)
    steps: int = option(1, "count", "prune in N steps with fine-tuning in between")
    finetune_epochs: int = option(3, "nonnegative", "fine-tuning epochs after each step (0 = none)")
    round_to: int = option(8, "count", "kept channel counts are multiples of this")
    min_channels: int = option(MIN_CHANNELS, "count", "no layer is pruned below this many channels (1 prunes every "
                               "layer)")
    img_size: int | None = option(None, "size", "training crop and MAC-counting size (default: the checkpoint's, else "
                                  "256; 3-D: the side of the cube MACs are counted on, default the patch's largest "
                                  "side)")
    patch: tuple[int, int, int] | None = option(None, "sides", "3-D models: fine-tuning patch (default: the "
                                                "checkpoint's)")
    batch_size: int = option(8, "count", "images per fine-tuning step")
    samples_per_epoch: int | None = option(None, "count", "random crops per fine-tuning epoch")
    lr: float = option(3e-3, "positive", "fine-tuning learning rate (as for training; cosine decay)")
    seed: int = option(0, "integer", "seed of the fine-tuning data and augmentation")
    device: str = option("auto", "choice", "where to fine-tune (auto: CUDA when present)", choices=DEVICES)
    progress: bool = True
    exist_ok: bool = option(False, "flag", "overwrite a run already in --out")

    def __post_init__(self):
        if self.data is not None:
            object.__setattr__(self, "data", str(self.data))
        if self.patch is not None:
            sides = tuple(self.patch) if isinstance(self.patch, (tuple, list)) else ()
            if len(sides) != 3 or not all(_count(n, 1) for n in sides):
                raise UserError(f"--patch must be three positive sides D,H,W, e.g. 32,64,64 (got {self.patch})")
            object.__setattr__(self, "patch", sides)
        check_importance(self.importance)
        if self.target_macs is not None and self.target_params is not None:
            raise UserError("give one of --target-macs and --target-params, not both")
        for name, flag in (("target_macs", "--target-macs"), ("target_params", "--target-params")):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, parse_count(getattr(self, name), flag))
        if not self.has_target:
            check_ratio(self.ratio)
        checks = [
            (_count(self.min_channels, 1), f"--min-channels must be at least 1 (got {self.min_channels})"),
            (_count(self.steps, 1), f"--steps must be at least 1 (got {self.steps})"),
            (_count(self.finetune_epochs, 0), f"--finetune-epochs must be 0 or more (got {self.finetune_epochs})"),
            (_count(self.round_to, 1),
             f"--round-to must be at least 1, 8 suits most accelerators (got {self.round_to})"),
            (_count(self.batch_size, 1), f"--batch-size must be at least 1 (got {self.batch_size})"),
            (self.img_size is None or _count(self.img_size, 1),
             f"--img-size must be a positive number of pixels (got {self.img_size})"),
            (self.samples_per_epoch is None or _count(self.samples_per_epoch, 1),
             f"--samples-per-epoch must be at least 1 (got {self.samples_per_epoch})"),
            (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0,
             f"--lr must be a positive finite number, e.g. 3e-3 (got {self.lr})"),
            (self.device in DEVICES, f"--device must be cpu, cuda or auto (got {self.device!r})"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    @property
    def has_target(self) -> bool:
        """True when a MAC or parameter budget, not ``ratio``, sets the amount."""
        return self.target_macs is not None or self.target_params is not None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _count(value, lowest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lowest
