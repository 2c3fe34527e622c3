"""edgeunet: U-Net segmentation from training to edge devices.

The top-level package imports nothing heavy: ``edgeunet.runtime`` needs only numpy and
ONNX Runtime, and torch is imported by the stages that need it (models, train, prune, export).
"""

__version__ = "0.3.0"
