"""What the format tests share: the tiny trained checkpoint exported to FP32 and INT8 ONNX, with
calibration and verification images and PyTorch's logits on them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeunet.data.synthetic import synthetic_sample

SIZE = 64  # side of the calibration and verification images (the fixture model trained at 64 px)
CLASSES = ["background", "cell"]  # the tiny_checkpoint fixture's class names


@dataclass
class Sources:
    """The tiny model and its files. ``calib``/``val`` are (C, H, W) float32 images, ``masks`` the
    verification masks and ``reference`` PyTorch's (K, H, W) logits of ``val``."""

    checkpoint: Path
    model: object
    onnx: Path
    int8_onnx: Path
    calib: list
    val: list
    masks: list
    reference: list


def make_sources(tiny_checkpoint, folder: Path) -> Sources:
    """Exports the checkpoint to ``folder``/model.onnx and model.int8.onnx (ONNX Runtime's QDQ)."""
    from edgeunet.export.int8 import prepare, quantize_int8
    from edgeunet.export.onnx import export_onnx, read_metadata
    from edgeunet.export.samples import InputSpec, load_inputs
    from edgeunet.export.verify import torch_logits
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    path, model = tiny_checkpoint
    multiple = model.current_config().size_multiple
    spec = InputSpec(DEFAULT_PREPROCESSING, 1, multiple)
    calib = load_inputs("synthetic", 8, SIZE, "calib", spec)
    val = load_inputs("synthetic", 6, SIZE, "val", spec)
    onnx_path = export_onnx(model, folder / "model.onnx", DEFAULT_PREPROCESSING, CLASSES)
    props = dataclasses.replace(read_metadata(onnx_path), precision="int8").to_props()
    prepared = prepare(onnx_path, folder / "prepared.onnx")
    int8_path = folder / "model.int8.onnx"
    quantize_int8(prepared, int8_path, calib.images, props, reduce_range=False)
    return Sources(path, model, onnx_path, int8_path, calib.images, val.images, val.masks,
                   torch_logits(model, val.images))


def nuclei(height: int, width: int, index: int = 0) -> np.ndarray:
    """A (height, width) uint16 synthetic fluorescence image."""
    return synthetic_sample(index, size=max(8, height, width), seed=3)[0][:height, :width]


def torch_mask(model, image: np.ndarray) -> np.ndarray:
    """PyTorch's (H, W) class ids of a whole raw image (preprocessed, padded to the size multiple, cropped)."""
    import torch

    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING, preprocess
    from edgeunet.runtime.tiling import crop, pad_to_multiple

    x, (height, width) = pad_to_multiple(preprocess(image, DEFAULT_PREPROCESSING), model.current_config().size_multiple)
    with torch.no_grad():
        logits = model(torch.from_numpy(x[None])).numpy()[0]
    return crop(logits.argmax(0), height, width)
