"""The device runtime: segment images with an edgeunet model using numpy and ONNX Runtime only.

Nothing here imports torch or onnx; ``pip install edgeunet`` (no extras) is enough for ONNX and
ORT-format files. Other formats open with their own runtime, imported only when a file of that
kind is opened: TensorRT engines (the ``trt`` extra and a GPU), OpenVINO IR (``openvino``),
ExecuTorch and LiteRT files (``mobile``); the format table ``edgeunet.formats`` says which file is
which, ``runtime.backends`` opens them.

    from edgeunet.runtime import Segmenter, read_image
    seg = Segmenter("model.onnx")
    mask = seg(read_image("cells.tif"))       # (H, W) uint8 class ids
"""

from ..formats import MODEL_SUFFIXES
from .backends import BACKENDS, choose_backend, open_backend
from .imageio import IMAGE_SUFFIXES, read_image, write_mask, write_rgb
from .metadata import ModelMetadata
from .predict import collect_inputs, overlay, predict_files
from .preprocess import DEFAULT_PREPROCESSING, check_image, preprocess
from .segmenter import Segmenter

__all__ = [
    "BACKENDS", "DEFAULT_PREPROCESSING", "IMAGE_SUFFIXES", "MODEL_SUFFIXES", "ModelMetadata", "Segmenter",
    "check_image", "choose_backend", "collect_inputs", "open_backend", "overlay", "predict_files", "preprocess",
    "read_image", "write_mask", "write_rgb",
]
