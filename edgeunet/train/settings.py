"""Training settings: one dataclass, written to RUN_DIR/config.json as resolved."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class TrainSettings:
    """What ``edgeunet train`` does; every CLI flag maps to a field.

    Attributes:
        data: A folder dataset (DIR/images, DIR/masks) or ``"synthetic"``.
        model: Registered variant name (see ``edgeunet.models.list_models``).
        model_options: Overrides of the variant's config (``base_width``, ``depth``, ``upsample``, ``attention``...).
        val: A separate validation folder; otherwise ``val_fraction`` of ``data`` is held out.
        samples_per_epoch: Random crops per epoch (default: one per training image; 256 for synthetic).
        schedule: ``onecycle`` or ``cosine`` (per step).
        init: A checkpoint whose weights start the run (fine-tuning).
        resume: Continue ``out/last.pt``.
        device: ``cpu``, ``cuda`` or ``auto``.
        workers: DataLoader worker processes (0 = in the main process).
        sync_bn: SyncBatchNorm under torchrun.
    """

    data: str = "synthetic"
    model: str = "unet-ds"
    out: str = "runs/train"
    model_options: dict = field(default_factory=dict)
    val: str | None = None
    val_fraction: float = 0.1
    epochs: int = 10
    batch_size: int = 8
    img_size: int = 256
    num_classes: int | None = None
    samples_per_epoch: int | None = None
    val_samples: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    schedule: str = "onecycle"
    init: str | None = None
    resume: bool = False
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    sync_bn: bool = False
    progress: bool = True

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.img_size >= 16, "--img-size must be at least 16"),
            (self.lr > 0, "--lr must be positive"),
            (0 < self.val_fraction < 1, "--val-fraction must be between 0 and 1 (e.g. 0.1)"),
            (self.schedule in ("onecycle", "cosine"), "--schedule must be 'onecycle' or 'cosine'"),
            (self.device in ("cpu", "cuda", "auto"), "--device must be cpu, cuda or auto"),
            (self.num_classes is None or self.num_classes >= 2, "--num-classes must be at least 2 (background counts)"),
            (self.samples_per_epoch is None or self.samples_per_epoch >= 1, "--samples-per-epoch must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
