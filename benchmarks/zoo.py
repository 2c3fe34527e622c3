"""What the suite builds and with which budget: the variants and one ``Budget`` for all of them.

Every variant gets the same budget, counted in training samples, so the table compares
architectures, not training effort. The budget is small (the whole suite runs in about 30
minutes on 2 CPU cores), so Dice figures reflect a short training, not what a variant reaches.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    """One row of the suite's table.

    Attributes:
        label: Name in result files and work folders (unique, filesystem-safe).
        model: Registered variant name (``edgeunet.models.list_models``).
        model_options: Overrides of the registered config (``upsample``, ``base_width``, ...).
        note: What the row stands for, printed under the table.
        runtimes: Also exported to ``Budget.runtime_formats`` (OpenVINO, ExecuTorch, LiteRT, ORT format;
            FP32 and INT8 each) and benchmarked through those runtimes in the same bench run.
    """

    label: str
    model: str
    model_options: dict = field(default_factory=dict)
    note: str = ""
    runtimes: bool = False


@dataclass(frozen=True)
class Budget:
    """Training, pruning, export and timing settings shared by every variant.

    Attributes:
        img_size: Side of the synthetic training images (px).
        batch_size: Training and fine-tuning batch size.
        train_epochs: Epochs of training.
        samples_per_epoch: Synthetic images per training epoch.
        val_samples: Validation images scored after each epoch (picks best.pt).
        sizes: Square input sides timed (px).
        prune_ratio: Fraction of channels removed from every width.
        finetune_epochs: Epochs of fine-tuning after pruning (``samples_per_epoch`` each).
        calib_size: INT8 calibration images, and export verification images.
        int8_search: Passed to ``export_model`` (None: its default, on for the cpu target).
        search_time: Seconds the INT8 search may spend per export.
        warmup: Untimed iterations per bench row.
        min_time: Each bench row is timed for at least this many seconds ...
        min_iters: ... and at least this many iterations.
        n_images: Validation images (of the largest size) that score every model.
        model_options: Overrides applied to every variant (tiny models for the quick mode).
        monai_features: ``features`` of the MONAI BasicUNet reference.
        runtime_formats: The ``--formats`` the variants with ``runtimes`` are also exported to; a
            format whose library is not installed is left out and named in the build record.
    """

    img_size: int = 64
    batch_size: int = 8
    train_epochs: int = 4
    samples_per_epoch: int = 128
    val_samples: int = 16
    sizes: tuple[int, ...] = (256, 512)
    prune_ratio: float = 0.5
    finetune_epochs: int = 1
    calib_size: int = 16
    int8_search: bool | None = None
    search_time: float = 30.0
    warmup: int = 2
    min_time: float = 2.0
    min_iters: int = 3
    n_images: int = 4
    model_options: dict = field(default_factory=dict)
    monai_features: tuple[int, ...] = (32, 32, 64, 128, 256, 32)
    runtime_formats: tuple[str, ...] = ("openvino", "executorch", "litert", "ort")

    @property
    def train_samples(self) -> int:
        """Training samples every variant sees (epochs x samples per epoch)."""
        return self.train_epochs * self.samples_per_epoch

    def replace(self, **changes) -> Budget:
        """A copy with ``changes``; None values are ignored (unset command-line options)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# The full run: what `make bench` measures.
FULL = Budget()

# The quick run: tiny models, one size, short timings; checks the suite end to end in well under a minute.
QUICK = Budget(
    img_size=32, train_epochs=1, samples_per_epoch=16, val_samples=4, finetune_epochs=1, calib_size=4,
    int8_search=False,
    sizes=(64,), warmup=1, min_time=0.05, min_iters=3, n_images=2, model_options={"base_width": 8, "depth": 2},
    monai_features=(8, 8, 16, 32, 64, 8), runtime_formats=("ort",),
)


# The variants measured through every runtime: the default edge model, the classic U-Net and the Transformer U-Net.
RUNTIME_VARIANTS = ("unet-ds", "unet", "unet-vit")


def registered_variants() -> list[Variant]:
    """Every registered 2-D variant with its defaults (the "after" of issue 7)."""
    from edgeunet.models import list_models

    return [Variant(name, name, {}, "registered defaults", runtimes=name in RUNTIME_VARIANTS)
            for name in list_models(2)]


# Earlier architecture defaults, kept in the table so that the effect of changing them is measured
# on the same machine in the same run (the "before" rows): the edge variants of edgeunet 0.1, plain
# U-Nets at full resolution, and transposed-conv up-sampling on today's layout.
_PLAIN = {"fused_levels": 0, "space_to_depth": 1}
BEFORE_DEFAULTS = (
    Variant("unet-ds-0.1", "unet-ds", {**_PLAIN, "widths": (16, 32, 64, 128, 256)},
            "unet-ds as edgeunet 0.1 built it: depthwise-separable at every level, full resolution, 16-256 wide"),
    Variant("unet-mobile-0.1", "unet-mobile", {**_PLAIN, "widths": (16, 24, 32, 64, 128)},
            "unet-mobile as edgeunet 0.1 built it: inverted residuals at every level, full resolution, 16-128 wide"),
    Variant("unet-ds-transpose", "unet-ds", {"upsample": "transpose"},
            "unet-ds with 2x2 transposed-conv up-sampling instead of its bilinear default"),
)


def default_zoo() -> list[Variant]:
    """The variants of a full run: every registered variant, then the earlier defaults."""
    return registered_variants() + list(BEFORE_DEFAULTS)


def quick_zoo() -> list[Variant]:
    """Two variants for the quick run (with ``QUICK.model_options`` they are tiny)."""
    return [Variant("unet-ds", "unet-ds", {}, "registered defaults", runtimes=True),
            Variant("unet-ds-transpose", "unet-ds", {"upsample": "transpose"}, "transposed-conv up-sampling")]


def select(zoo: list[Variant], labels: list[str] | None) -> list[Variant]:
    """The variants of ``zoo`` named in ``labels``, in that order; all of them for None.

    Raises:
        ValueError: A label is not in the zoo (the message lists the valid ones).
    """
    if not labels:
        return list(zoo)
    by_label = {v.label: v for v in zoo}
    unknown = [label for label in labels if label not in by_label]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}: choose from {', '.join(by_label)}")
    return [by_label[label] for label in dict.fromkeys(labels)]
