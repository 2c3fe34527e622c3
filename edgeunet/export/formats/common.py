"""What the format exporters share: the model and its metadata, calibration images fitted to a
file's shapes, library switches and the facts each exporter returns."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ...checkpoint import model_from_checkpoint
from ...env import package_version
from ...errors import UserError
from ..onnx import model_metadata
from ..report import file_facts
from ..samples import fit_to_multiple

logger = logging.getLogger(__name__)


def load_model(checkpoint):
    """(model in eval mode, checkpoint dict) from a checkpoint path or dict."""
    return model_from_checkpoint(checkpoint)


def checkpoint_props(model, ckpt: dict, precision: str) -> dict[str, str]:
    """The ``metadata_props`` strings of a file made from ``model`` (its current, possibly pruned, config)."""
    cfg = model.current_config()
    return model_metadata(cfg.to_dict(), ckpt["preprocessing"], ckpt["class_names"], precision).to_props()


def fit_images(images: Sequence[np.ndarray], multiple: int, exact: int | None = None,
               largest: int | None = None) -> list[np.ndarray]:
    """(C, H, W) float32 images center-cropped (or edge-padded) to what a file takes.

    Args:
        images: Preprocessed (C, H, W) images of any size.
        multiple: The model's size multiple.
        exact: Crop or pad both sides to exactly this (fixed-size files).
        largest: Crop sides longer than this down to it (bounded dynamic files).
    """
    if not images:
        raise UserError("no calibration images: give at least one (C, H, W) image (32 is a good default)")
    fitted = []
    for image in images:
        side = exact
        if side is None and largest is not None and max(image.shape[1:]) > largest:
            side = largest
        fitted.append(fit_to_multiple(np.asarray(image, np.float32), None, multiple, exact=side)[0])
    return fitted


@contextlib.contextmanager
def environment_set(name: str, value: str) -> Iterator[None]:
    """Sets an environment variable for the block (libraries that read switches from it), then restores it."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of the libraries that made a file (``"not installed"`` when absent)."""
    return {name: package_version(name) for name in packages}


def made_facts(fmt: str, files: Sequence[Path], precision: str, library_versions: dict, **extra) -> dict:
    """The dict every exporter returns.

    Returns:
        ``format``, ``file`` (the file to open), ``files`` (all written, e.g. the IR and its weights: name, size,
        sha256), ``size_bytes`` (all files), ``precision``, ``versions`` and the format's own facts.
    """
    written = [file_facts(Path(f)).to_dict() for f in files]
    return {"format": fmt, "file": written[0]["file"], "files": written,
            "size_bytes": sum(f["size_bytes"] for f in written), "precision": precision,
            "versions": library_versions, **extra}
