"""The device runtime: segment images with an edgeunet model using numpy and ONNX Runtime only.

Nothing here imports torch or onnx; ``pip install edgeunet`` (no extras) is enough for ``.onnx``
and ``.ort`` files. Other formats open with their own runtime, imported only when a file of that
kind is opened: TensorRT ``.engine`` (the ``trt`` extra and a GPU), OpenVINO ``.xml`` (``openvino``),
ExecuTorch ``.pte`` and LiteRT ``.tflite`` (``mobile``); see ``runtime.backends``.

    from edgeunet.runtime import Segmenter, read_image
    seg = Segmenter("model.onnx")
    mask = seg(read_image("cells.tif"))       # (H, W) uint8 class ids
"""

from .backends import BACKENDS, choose_backend, open_backend
from .imageio import IMAGE_SUFFIXES, read_image, write_mask, write_rgb
from .metadata import ModelMetadata
from .predict import collect_inputs, overlay, predict_files
from .preprocess import DEFAULT_PREPROCESSING, check_image, preprocess
from .segmenter import Segmenter

__all__ = [
    "BACKENDS", "DEFAULT_PREPROCESSING", "IMAGE_SUFFIXES", "ModelMetadata", "Segmenter", "check_image",
    "choose_backend", "collect_inputs", "open_backend", "overlay", "predict_files", "preprocess",
    "read_image", "write_mask", "write_rgb",
]
