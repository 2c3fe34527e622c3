"""The reference users know: MONAI's ``BasicUNet``, trained on the same budget and exported to ONNX the same way.

Needs the ``bench`` extra (``pip install 'edgeunet[bench]'``); without MONAI the suite skips
the reference and says so. The network is MONAI's own, so edgeunet's trainer (which saves
edgeunet checkpoints) is not used; the loop below mirrors it: the same synthetic data set,
crops, loss (cross-entropy + soft Dice), AdamW, one-cycle schedule, batch size and sample
count, and best-of-epochs selection on the same validation images. The ONNX file is written
like ``edgeunet export`` writes FP32 files (TorchScript exporter, onnxslim, then the export
package's writer ``edgeunet.export.onnx.save_onnx``: ``onnx.checker`` and an atomic write) and
carries edgeunet metadata, so the bench scores it on the same images; its ``model_config`` is
empty, as it is no edgeunet config, so its parameters and MACs are counted here, with the one
MAC counter (``edgeunet.models.cost.count_cost``), and not by the bench.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .build import run_stage
from .zoo import Budget

logger = logging.getLogger(__name__)

LABEL = "monai-basicunet"
SIZE_MULTIPLE = 16  # BasicUNet down-samples 4 times
PARITY_ATOL = 1e-3  # largest |ONNX Runtime - PyTorch| logit difference accepted


@dataclass(frozen=True)
class _Facts:
    """The three facts ``edgeunet.train.evaluate`` reads from ``model.cfg``."""

    in_channels: int = 1
    num_classes: int = 2
    size_multiple: int = SIZE_MULTIPLE


def available() -> bool:
    """Whether MONAI is installed."""
    return importlib.util.find_spec("monai") is not None


def create_reference(features: tuple[int, ...], in_channels: int = 1, num_classes: int = 2):
    """MONAI ``BasicUNet`` (2D), default activation, normalization and up-sampling, with ``cfg`` facts for
    evaluation."""
    from monai.networks.nets import BasicUNet

    model = BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, features=tuple(features))
    model.cfg = _Facts(in_channels, num_classes)
    return model


def train_reference(model, budget: Budget, seed: int = 0) -> dict:
    """Trains ``model`` in place as ``edgeunet train`` trains a variant; keeps the weights of the best epoch.

    Returns:
        ``{"best_dice", "best_epoch", "samples"}`` (mean foreground Dice on the validation images).
    """
    import copy

    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from edgeunet.data.dataset import build_datasets
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING
    from edgeunet.train import TrainSettings, evaluate
    from edgeunet.train.losses import SegmentationLoss

    defaults = TrainSettings()
    torch.manual_seed(seed)
    train_ds, val_samples, _ = build_datasets("synthetic", img_size=budget.img_size,
                                              preprocessing=dict(DEFAULT_PREPROCESSING), seed=seed,
                                              samples_per_epoch=budget.samples_per_epoch,
                                              val_samples=budget.val_samples)
    optimizer = torch.optim.AdamW(model.parameters(), lr=defaults.lr, weight_decay=defaults.weight_decay)
    steps = len(train_ds) // budget.batch_size or 1
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=defaults.lr,
                                                    total_steps=budget.train_epochs * steps, pct_start=0.15)
    loss_fn, best = SegmentationLoss(), {"best_dice": -1.0, "best_epoch": -1, "state": None}
    for epoch in range(budget.train_epochs):
        train_ds.set_epoch(epoch)
        sampler = RandomSampler(train_ds, generator=torch.Generator().manual_seed(seed + epoch))
        model.train()
        for x, y in DataLoader(train_ds, batch_size=budget.batch_size, sampler=sampler,
                               drop_last=len(train_ds) >= budget.batch_size):
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        dice = evaluate(model, val_samples, DEFAULT_PREPROCESSING)["mean_dice"] or 0.0
        logger.info("%s epoch %d: val dice %.4f", LABEL, epoch, dice)
        if dice > best["best_dice"]:
            best = {"best_dice": float(dice), "best_epoch": epoch, "state": copy.deepcopy(model.state_dict())}
    model.load_state_dict(best.pop("state"))
    return {**best, "samples": budget.train_samples}


def export_reference(model, path: str | os.PathLike, class_names: list[str]) -> Path:
    """Writes ``model`` as FP32 ONNX the way ``edgeunet export`` does, with edgeunet metadata (empty ``model_config``).

    The graph takes ``images`` (B, C, H, W) and gives ``logits`` (B, K, H, W); batch, H and W are dynamic.

    Raises:
        ValueError: ONNX Runtime's logits differ from PyTorch's by more than ``PARITY_ATOL``.
    """
    import onnx
    import onnxslim
    import torch

    from edgeunet import __version__
    from edgeunet.atomic import ensure_dir
    from edgeunet.export.onnx import DEFAULT_OPSET, save_onnx
    from edgeunet.runtime.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    facts, model = model.cfg, model.eval()
    example = torch.randn(1, facts.in_channels, 4 * SIZE_MULTIPLE, 4 * SIZE_MULTIPLE,
                          generator=torch.Generator().manual_seed(0))
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (example,), buffer, dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes}, opset_version=DEFAULT_OPSET,
                          do_constant_folding=True)
        expected = model(example).numpy()
    proto = onnxslim.slim(onnx.load_from_string(buffer.getvalue()))
    meta = ModelMetadata(in_channels=facts.in_channels, num_classes=facts.num_classes,
                         size_multiple=facts.size_multiple,
                         preprocessing=dict(DEFAULT_PREPROCESSING), class_names=list(class_names),
                         edgeunet_version=__version__)
    onnx.helper.set_model_props(proto, meta.to_props())
    _check_parity(proto, example.numpy(), expected)
    path = Path(path)
    ensure_dir(path.parent)
    return save_onnx(proto, path)


def _check_parity(proto, x, expected) -> None:
    import numpy as np

    from edgeunet.runtime.session import ort_session

    session = ort_session(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    diff = float(np.abs(got - expected).max())
    if diff > PARITY_ATOL:
        raise ValueError(f"ONNX Runtime and PyTorch logits of {LABEL} differ by {diff:.2e} (> {PARITY_ATOL:g}): "
                         "check the onnx/torch versions")


def build_reference(workdir: str | Path, budget: Budget) -> dict:
    """Trains and exports the MONAI reference into WORKDIR/monai-basicunet/model.onnx.

    Returns:
        A record shaped like ``build.build_variant``'s, plus ``parameters`` and ``macs`` (at the
        smallest bench size); ``files`` has ``onnx-fp32`` when the export succeeded.
    """
    from edgeunet.data.synthetic import synthetic_class_names
    from edgeunet.models.cost import count_cost

    record = {"label": LABEL, "model": "monai.networks.nets.BasicUNet",
              "model_options": {"features": list(budget.monai_features)},
              "note": "MONAI BasicUNet reference, FP32 ONNX", "files": {}, "train": None, "prune": None, "errors": {},
              "time_s": {}}
    model = create_reference(budget.monai_features)
    cost = count_cost(model, min(budget.sizes))
    record["parameters"], record["macs"] = cost.parameters, cost.macs
    trained = run_stage(record, "train", lambda: train_reference(model, budget))
    if trained is None:
        return record
    record["train"] = {**trained, "parameters": record["parameters"], "img_size": budget.img_size}
    path = Path(workdir) / LABEL / "model.onnx"
    names = synthetic_class_names(2)
    if run_stage(record, "export", lambda: {"path": export_reference(model, path, names)}) is not None:
        record["files"]["onnx-fp32"] = str(path)
    return record
