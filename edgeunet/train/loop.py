"""The trainer: ``fit`` runs epochs of AdamW with a per-step schedule, validates, and writes best.pt,
last.pt, metrics.jsonl, results.csv and results.png. With ``--ema`` an exponential moving average of the
weights (``torch.optim.swa_utils.AveragedModel``, buffers included) is what is validated and saved.
``edgeunet train`` and ``edgeunet prune`` fine-tuning share it; under ``torchrun`` it trains with
DistributedDataParallel.

Checkpoints store ``epoch`` as the number of completed epochs (1-based): a last.pt with
``epoch`` 3 resumes at the fourth epoch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..atomic import ensure_dir
from ..checkpoint import (
    TrainingFacts,
    cpu_state_dict,
    load_checkpoint,
    make_checkpoint,
    save_checkpoint,
    training_facts,
)
from ..errors import UserError
from ..metrics import ConfusionCounter
from . import distributed
from .evaluate import evaluate_counts
from .history import History, epoch_line
from .losses import SegmentationLoss
from .settings import TrainSettings

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible: use --device cpu")
    return device


def _make_scheduler(optimizer, settings: TrainSettings, total_steps: int):
    if settings.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr, total_steps=total_steps,
                                                   pct_start=0.15)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=settings.lr * 0.01)


def ema_decay(decay: float, updates):
    """The decay of the ``updates``-th average: ``decay``, warmed up as timm's ModelEmaV3 does
    (``(1 + n) / (10 + n)`` while that is lower), so that the first epochs' average is not the initial weights."""
    return torch.clamp((1.0 + updates) / (10.0 + updates), max=decay)


def _make_ema(model: torch.nn.Module, decay: float):
    """The averaged copy of ``model`` (None when ``decay`` is 0)."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        # AveragedModel calls this once per device and dtype, so a group is all float or all integer
        if averaged[0].is_floating_point():
            torch._foreach_lerp_(averaged, current, 1.0 - ema_decay(decay, updates.to(torch.float64)).item())
        else:  # BatchNorm's num_batches_tracked: a count, not averaged
            torch._foreach_copy_(averaged, current)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)


def _loader(train_ds, settings: TrainSettings, ctx: distributed.DistContext, epoch: int) -> DataLoader:
    """A fresh loader per epoch (0-based index), shuffled by ``seed + epoch`` so that a resumed run repeats exactly."""
    if ctx.enabled:
        sampler = DistributedSampler(train_ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                     seed=settings.seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(train_ds, generator=torch.Generator().manual_seed(settings.seed + epoch))
    if hasattr(train_ds, "set_epoch"):
        train_ds.set_epoch(epoch)
    per_rank = distributed.split_batch(settings.batch_size, ctx)
    drop_last = len(train_ds) // ctx.world_size >= per_rank
    return DataLoader(train_ds, batch_size=per_rank, sampler=sampler, num_workers=settings.workers,
                      drop_last=drop_last, pin_memory=False)


@dataclass(frozen=True)
class _Facts:
    """What every checkpoint of the run carries besides the weights."""

    preprocessing: dict
    class_names: list[str]
    extra: dict


@dataclass
class _Run:
    """Everything one training run carries from epoch to epoch.

    ``model`` is the plain model (validated, saved); ``train_model`` is what the optimizer steps
    through: ``model`` itself, or DistributedDataParallel around it under torchrun.
    """

    model: torch.nn.Module
    settings: TrainSettings
    ctx: distributed.DistContext
    device: str
    facts: _Facts
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: torch.amp.GradScaler
    train_model: torch.nn.Module | None = None
    ema: torch.nn.Module | None = None  # AveragedModel of ``model`` (--ema)
    loss_fn: torch.nn.Module = field(default_factory=SegmentationLoss)
    best: dict = field(default_factory=lambda: {"dice": -1.0, "epoch": 0})  # epoch: completed epochs, 0 = none

    @property
    def kept(self) -> torch.nn.Module:
        """The model that is validated and saved: the averaged weights under --ema, else ``model``."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def use_amp(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def out(self) -> Path:
        return Path(self.settings.out)


def fit(model, train_ds, val_samples, settings: TrainSettings, preprocessing: dict, class_names: list[str], *,
        extra: dict | None = None, on_epoch: Callable[[str], None] | None = None) -> dict:
    """Trains ``model`` and writes RUN_DIR/best.pt, last.pt, metrics.jsonl, results.csv, results.png (rank 0 only).

    Under ``torchrun`` every process calls this with the same arguments: each trains on its share
    of every epoch (``settings.batch_size`` is the total over the processes), DDP averages the
    gradients, validation counts are summed over the ranks, and the checkpoints hold the plain
    model (no ``module.`` prefix). ``model`` is trained in place, on every rank alike.

    Args:
        model: A ``UNet`` (possibly pruned).
        train_ds: Map-style dataset of (x (C, S, S) float32, y (S, S) int64); for a 3-D model
            (x (C, D, H, W), y (D, H, W)) patches of ``settings.patch_size(3)``.
        val_samples: (name, raw image, mask) triples scored on full images (whole volumes in 3-D).
        settings: Epochs, batch size, schedule, device, seed, out, resume...
        preprocessing: Spec stored in the checkpoints.
        class_names: Stored in the checkpoints.
        extra: More keys for the checkpoints (e.g. ``prune`` facts).
        on_epoch: Called on rank 0 with a one-line summary after every epoch (the CLI prints it).

    Returns:
        ``{"best_dice", "best_epoch", "last_metrics", "best_path", "last_path", "epochs_run", "epochs"}``;
        ``best_epoch`` counts completed epochs (1-based; 0 when no epoch ran).
    """
    settings.check_sizes(model.cfg)
    device = distributed.rank_device(resolve_device(settings.device), distributed.DistContext.from_env())
    ctx = distributed.join(device)
    try:
        facts = _Facts(dict(preprocessing), list(class_names), dict(extra or {}))
        return _fit(_start(model, train_ds, settings, ctx, device, facts), train_ds, val_samples, on_epoch)
    finally:
        distributed.revert_sync_batchnorm(model)


def _start(model, train_ds, settings: TrainSettings, ctx, device: str, facts: _Facts) -> tuple[_Run, int]:
    """The run's optimizer, schedule and scaler, restored from last.pt on ``--resume``; and the epochs done."""
    out = Path(settings.out)
    if ctx.is_main:
        ensure_dir(out, "--out folder")
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = len(_loader(train_ds, settings, ctx, 0))
    scheduler = _make_scheduler(optimizer, settings, settings.epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=device.startswith("cuda"))
    run = _Run(model, settings, ctx, device, facts, optimizer, scheduler, scaler, ema=_make_ema(model, settings.ema))
    done = 0
    if settings.resume:  # rank 0 reads last.pt; every rank restores the same states from it
        ckpt = distributed.share_from_main(lambda: _read_last(out / "last.pt"), ctx, device)
        _check_same_plan(ckpt, settings, out / "last.pt")
        done = _restore(ckpt, out / "last.pt", run)
    run.train_model = distributed.wrap(model, ctx, device, settings.sync_bn)
    return run, done


def _fit(started: tuple[_Run, int], train_ds, val_samples, on_epoch) -> dict:
    run, done = started
    settings, ctx = run.settings, run.ctx
    history = History(run.out, run.facts.class_names, done if settings.resume else None) if ctx.is_main else None
    summary = {}
    for epoch in range(done, settings.epochs):  # epoch: 0-based index; epoch + 1 epochs are done after it
        t0 = time.perf_counter()
        train_loss = _train_epoch(run, _loader(train_ds, settings, ctx, epoch), epoch)
        distributed.average_buffers(run.model, ctx)
        if run.ema is not None:  # every rank steps the same average: its buffers follow the averaged ones
            distributed.average_buffers(run.ema.module, ctx)
        summary = _validate(run, val_samples)
        dice = summary["mean_dice"] if summary["mean_dice"] is not None else 0.0
        improved = dice > run.best["dice"]  # the summary is the same on every rank, and so is best
        if improved:
            run.best = {"dice": dice, "epoch": epoch + 1}
        if ctx.is_main:
            row = {"epoch": epoch, "train_loss": train_loss, "lr": run.scheduler.get_last_lr()[0],
                   **{f"val_{k}": v for k, v in summary.items()}, "time_s": round(time.perf_counter() - t0, 3)}
            history.append(row)
            _save(run, epoch + 1, summary, improved)
            line = epoch_line(row, settings.epochs)
            logger.info(line)
            if on_epoch is not None:
                on_epoch(line)
        distributed.barrier(ctx)  # the files of this epoch exist before any rank moves on
    if ctx.is_main:
        history.plot()
    return {"best_dice": float(run.best["dice"]), "best_epoch": int(run.best["epoch"]), "last_metrics": summary,
            "best_path": str(run.out / "best.pt"), "last_path": str(run.out / "last.pt"),
            "epochs_run": settings.epochs - done, "epochs": settings.epochs}


def _validate(run: _Run, val_samples) -> dict:
    """Validation summary over all samples: each rank scores every world_size-th one, counts are summed.

    A 3-D model scores whole volumes with the runtime's sliding window, the window being the training patch.
    """
    model, ctx, device, settings = run.kept, run.ctx, run.device, run.settings
    window = settings.patch_size(getattr(model.cfg, "spatial_dims", 2))
    counts = evaluate_counts(model, val_samples[ctx.rank :: ctx.world_size], run.facts.preprocessing, device,
                             window, settings.overlap)
    counter = ConfusionCounter(model.cfg.num_classes)
    counter.counts = distributed.all_reduce_sum(counts, ctx, device)
    return counter.summary()


def _train_epoch(run: _Run, loader: DataLoader, epoch: int) -> float:
    """One pass over ``loader`` (``epoch`` is the 0-based index); returns the mean training loss."""
    from tqdm.auto import tqdm

    settings, model = run.settings, run.train_model
    model.train()
    total, count = 0.0, 0
    show = None if settings.progress and run.ctx.is_main else True  # None: tqdm shows a bar on a terminal only
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{settings.epochs}", disable=show, leave=False, dynamic_ncols=True)
    for x, y in bar:
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        with torch.autocast(device_type="cuda", enabled=run.use_amp):
            loss = run.loss_fn(model(x), y)
        if not torch.isfinite(loss):
            raise UserError(f"the loss became {loss.item()} in epoch {epoch + 1}: lower --lr (now {settings.lr}) "
                            "or check the data with `edgeunet data check`")
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update_parameters(run.model)
        total += loss.item() * len(x)
        count += len(x)
        bar.set_postfix(loss=f"{total / count:.4f}")
    total, count = distributed.all_reduce_sum(np.array([total, count], dtype=np.float64), ctx=run.ctx,
                                              device=run.device)
    return float(total / max(count, 1))


def _save(run: _Run, completed: int, summary: dict, improved: bool) -> None:
    """best.pt (when ``improved``) and last.pt after ``completed`` epochs."""
    facts = run.facts
    base = dict(epoch=completed, epochs=run.settings.epochs, train_args=run.settings.to_dict(), **facts.extra)
    ckpt = make_checkpoint(run.kept, facts.preprocessing, facts.class_names, summary, **base)
    if improved:
        save_checkpoint(ckpt, run.out / "best.pt")
    state = {"optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
             "scaler": run.scaler.state_dict(), "best_dice": run.best["dice"], "best_epoch": run.best["epoch"]}
    if run.ema is not None:  # state_dict holds the averaged weights; resuming needs the trained ones as well
        state.update(trained_state_dict=cpu_state_dict(run.model), ema_updates=int(run.ema.n_averaged.item()))
    save_checkpoint({**ckpt, **state}, run.out / "last.pt")


def _read_last(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"--resume needs {path}, which does not exist: drop --resume or point --out at an earlier run")
    ckpt = load_checkpoint(path)
    if "optimizer" not in ckpt:
        raise UserError(f"{path} has no optimizer state: resume from a last.pt, not a best.pt")
    return ckpt


def _check_same_plan(ckpt: dict, settings: TrainSettings, path: Path) -> None:
    """The learning-rate schedule spans the planned steps, so a resumed run keeps its plan."""
    before = training_facts(ckpt)
    for key in TrainingFacts.PLAN:
        then = getattr(before, key)
        if key in (ckpt.get("train_args") or {}) and then != getattr(settings, key):
            flag, now = key.replace("_", "-"), getattr(settings, key)
            raise UserError(f"--resume continues {path} as planned, with {flag} {then} (now {now}): use the "
                            f"same value, or start a new run with --init {path.with_name('best.pt')} to train further")


def _restore(ckpt: dict, path: Path, run: _Run) -> int:
    """Loads a last.pt's states into ``run``; returns the number of epochs it completed."""
    if run.ema is not None and "trained_state_dict" not in ckpt:
        raise UserError(f"{path} was trained without --ema: resume it without --ema, or start a new run")
    try:
        run.model.load_state_dict(ckpt.get("trained_state_dict", ckpt["state_dict"]), strict=True)
        if run.ema is not None:
            run.ema.module.load_state_dict(ckpt["state_dict"], strict=True)
            run.ema.n_averaged.fill_(int(ckpt["ema_updates"]))
    except RuntimeError as exc:
        raise UserError(f"{path} holds a different model than the one asked for ({str(exc).splitlines()[0]}): "
                        "use the same --model options") from None
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.scaler.load_state_dict(ckpt["scaler"])
    best_dice = ckpt.get("best_dice", -1.0)
    best_dice = -1.0 if best_dice is None or math.isnan(best_dice) else best_dice
    run.best = {"dice": best_dice, "epoch": int(ckpt.get("best_epoch", 0))}
    return int(ckpt["epoch"])
