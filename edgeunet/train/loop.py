"""The trainer: ``fit`` runs epochs of AdamW with a per-step schedule, validates, and writes
best.pt, last.pt and metrics.jsonl. ``edgeunet train`` and ``edgeunet prune`` fine-tuning share it;
under ``torchrun`` it trains with DistributedDataParallel."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from ..errors import UserError
from ..metrics import ConfusionCounter
from . import distributed
from .evaluate import evaluate_counts
from .losses import SegmentationLoss
from .settings import TrainSettings

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible: use --device cpu")
    return device


def _make_scheduler(optimizer, settings: TrainSettings, total_steps: int):
    if settings.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr, total_steps=total_steps, pct_start=0.15)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=settings.lr * 0.01)


def _loader(train_ds, settings: TrainSettings, ctx: distributed.DistContext, epoch: int) -> DataLoader:
    """A fresh loader per epoch, shuffled by ``seed + epoch`` so that a resumed run repeats exactly."""
    if ctx.enabled:
        sampler = DistributedSampler(train_ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=settings.seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(train_ds, generator=torch.Generator().manual_seed(settings.seed + epoch))
    if hasattr(train_ds, "set_epoch"):
        train_ds.set_epoch(epoch)
    per_rank = distributed.split_batch(settings.batch_size, ctx)
    drop_last = len(train_ds) // ctx.world_size >= per_rank
    return DataLoader(train_ds, batch_size=per_rank, sampler=sampler, num_workers=settings.workers, drop_last=drop_last, pin_memory=False)


class _History:
    """RUN_DIR/metrics.jsonl, one JSON line per epoch; on resume, later epochs are dropped."""

    def __init__(self, path: Path, keep_through_epoch: int | None):
        self.path = path
        lines = path.read_text().splitlines() if (keep_through_epoch is not None and path.exists()) else []
        self.rows = [json.loads(line) for line in lines if line.strip()]
        self.rows = [r for r in self.rows if r["epoch"] <= (keep_through_epoch if keep_through_epoch is not None else -1)]
        self._write()

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        os.replace(tmp, self.path)


def fit(model, train_ds, val_samples, settings: TrainSettings, preprocessing: dict, class_names: list[str], extra: dict | None = None) -> dict:
    """Trains ``model`` and writes RUN_DIR/best.pt, last.pt and metrics.jsonl (rank 0 only).

    Under ``torchrun`` every process calls this with the same arguments: each trains on its share
    of every epoch (``settings.batch_size`` is the total over the processes), DDP averages the
    gradients, validation counts are summed over the ranks, and the checkpoints hold the plain
    model (no ``module.`` prefix). ``model`` is trained in place, on every rank alike.

    Args:
        model: A ``UNet`` (possibly pruned).
        train_ds: Map-style dataset of (x (C, S, S) float32, y (S, S) int64).
        val_samples: (name, raw image, mask) triples scored on full images.
        settings: Epochs, batch size, schedule, device, seed, out, resume...
        preprocessing: Spec stored in the checkpoints.
        class_names: Stored in the checkpoints.
        extra: More keys for the checkpoints (e.g. ``prune`` facts).

    Returns:
        ``{"best_dice", "best_epoch", "last_metrics", "best_path", "last_path", "epochs_run"}``.
    """
    device = distributed.rank_device(resolve_device(settings.device), distributed.DistContext.from_env())
    ctx = distributed.join(device)
    try:
        return _fit(model, train_ds, val_samples, settings, preprocessing, class_names, extra, ctx, device)
    finally:
        distributed.revert_sync_batchnorm(model)


def _fit(model, train_ds, val_samples, settings, preprocessing, class_names, extra, ctx, device) -> dict:
    out = Path(settings.out)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = len(_loader(train_ds, settings, ctx, 0))
    scheduler = _make_scheduler(optimizer, settings, settings.epochs * steps_per_epoch)
    use_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best = 0, {"dice": -1.0, "epoch": -1}
    if settings.resume:  # rank 0 reads last.pt; every rank restores the same states from it
        ckpt = distributed.share_from_main(lambda: _read_last(out / "last.pt"), ctx, device)
        _check_same_plan(ckpt, settings, out / "last.pt")
        start_epoch, best = _restore(ckpt, out / "last.pt", model, optimizer, scheduler, scaler)
    history = _History(out / "metrics.jsonl", start_epoch - 1 if settings.resume else None) if ctx.is_main else None
    train_model = distributed.wrap(model, ctx, device, settings.sync_bn)
    loss_fn = SegmentationLoss()
    summary = {}
    for epoch in range(start_epoch, settings.epochs):
        t0 = time.perf_counter()
        train_loss = _train_epoch(train_model, _loader(train_ds, settings, ctx, epoch), loss_fn, optimizer, scheduler, scaler, device, use_amp, settings, ctx, epoch)
        distributed.average_buffers(model, ctx)
        summary = _validate(model, val_samples, preprocessing, device, ctx)
        dice = summary["mean_dice"] if summary["mean_dice"] is not None else 0.0
        improved = dice > best["dice"]  # the summary is the same on every rank, and so is best
        if improved:
            best = {"dice": dice, "epoch": epoch}
        if ctx.is_main:
            row = {"epoch": epoch, "train_loss": train_loss, "lr": scheduler.get_last_lr()[0], **{f"val_{k}": v for k, v in summary.items()}, "time_s": round(time.perf_counter() - t0, 3)}
            history.append(row)
            _save(model, out, preprocessing, class_names, summary, epoch, settings, optimizer, scheduler, scaler, best, improved, extra)
            log.info("epoch %d: loss %.4f, val dice %.4f", epoch, train_loss, dice)
        distributed.barrier(ctx)  # the files of this epoch exist before any rank moves on
    return {"best_dice": float(best["dice"]), "best_epoch": int(best["epoch"]), "last_metrics": summary, "best_path": str(out / "best.pt"), "last_path": str(out / "last.pt"), "epochs_run": settings.epochs - start_epoch}


def _validate(model, val_samples, preprocessing: dict, device: str, ctx: distributed.DistContext) -> dict:
    """Validation summary over all samples: each rank scores every world_size-th one, counts are summed."""
    counts = evaluate_counts(model, val_samples[ctx.rank :: ctx.world_size], preprocessing, device)
    counter = ConfusionCounter(model.cfg.num_classes)
    counter.counts = distributed.all_reduce_sum(counts, ctx, device)
    return counter.summary()


def _train_epoch(model, loader, loss_fn, optimizer, scheduler, scaler, device, use_amp, settings, ctx, epoch) -> float:
    from tqdm.auto import tqdm

    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{settings.epochs}", disable=None if settings.progress and ctx.is_main else True, leave=False, dynamic_ncols=True)
    for x, y in bar:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device_type="cuda", enabled=use_amp):
            loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            raise UserError(f"the loss became {loss.item()} at epoch {epoch}: lower --lr (now {settings.lr}) or check the data for NaN")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        total += loss.item() * len(x)
        count += len(x)
        bar.set_postfix(loss=f"{total / count:.4f}")
    total, count = distributed.all_reduce_sum(np.array([total, count], dtype=np.float64), ctx, device)
    return float(total / max(count, 1))


def _save(model, out, preprocessing, class_names, summary, epoch, settings, optimizer, scheduler, scaler, best, improved, extra) -> None:
    base = dict(epoch=epoch, train_args=settings.to_dict(), **(extra or {}))
    ckpt = make_checkpoint(model, preprocessing, class_names, summary, **base)
    if improved:
        save_checkpoint(ckpt, out / "best.pt")
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "best_dice": best["dice"], "best_epoch": best["epoch"]}
    save_checkpoint({**ckpt, **state}, out / "last.pt")


def _read_last(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"--resume needs {path}, which does not exist: drop --resume or point --out at an earlier run")
    ckpt = load_checkpoint(path)
    if "optimizer" not in ckpt:
        raise UserError(f"{path} has no optimizer state: resume from a last.pt, not a best.pt")
    return ckpt


def _check_same_plan(ckpt: dict, settings: TrainSettings, path: Path) -> None:
    """The learning-rate schedule spans the planned steps, so a resumed run keeps its plan."""
    before = ckpt.get("train_args", {})
    for key in ("epochs", "batch_size", "samples_per_epoch", "schedule"):
        if key in before and before[key] != getattr(settings, key):
            raise UserError(
                f"--resume continues {path} as planned, with {key.replace('_', '-')} {before[key]} (now {getattr(settings, key)}): "
                f"use the same value, or start a new run with --init {path.with_name('best.pt')} to train further"
            )


def _restore(ckpt: dict, path: Path, model, optimizer, scheduler, scaler) -> tuple[int, dict]:
    """Loads a last.pt's states; returns the epoch to start at and the best Dice so far."""
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path} holds a different model than the one asked for ({str(exc).splitlines()[0]}): use the same --model options") from None
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    best_dice = ckpt.get("best_dice", -1.0)
    return int(ckpt["epoch"]) + 1, {"dice": -1.0 if best_dice is None or math.isnan(best_dice) else best_dice, "epoch": ckpt.get("best_epoch", -1)}
