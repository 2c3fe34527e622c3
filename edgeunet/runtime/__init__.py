"""The device runtime: segment images with an edgeunet model using numpy and ONNX Runtime only.

Nothing here imports torch or onnx; ``pip install edgeunet`` (no extras) is enough. TensorRT
engines need the ``trt`` extra and a GPU, and are opened only when asked for.

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
