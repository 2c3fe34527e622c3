"""Data stage: image/mask I/O, built-in synthetic nuclei, folder data sets and their checks, for images and
volumes alike (``spatial_dims``).

Light imports only (numpy, Pillow, tifffile). The torch Datasets live in
``edgeunet.data.dataset`` and are imported from there by the training stage.
"""

from .io import IMAGE_SUFFIXES, MASK_SUFFIXES, ImageReadError, read_image, read_mask, write_image, write_mask
from .sources import (
    SYNTHETIC,
    SYNTHETIC3D,
    dataset_folder,
    dataset_info,
    is_synthetic,
    is_synthetic3d,
    load_samples,
    load_volume_samples,
)
from .synthetic import synthetic_class_names, synthetic_sample, synthetic_volume, write_synthetic
from .validate import DatasetReport, Problem, check_folder, validate_folder
from .volumes_prep import preprocess_volume

__all__ = [
    "IMAGE_SUFFIXES", "MASK_SUFFIXES", "ImageReadError", "read_image", "read_mask", "write_image", "write_mask",
    "SYNTHETIC", "SYNTHETIC3D", "dataset_folder", "dataset_info", "is_synthetic", "is_synthetic3d", "load_samples",
    "load_volume_samples", "preprocess_volume",
    "synthetic_class_names", "synthetic_sample", "synthetic_volume", "write_synthetic",
    "DatasetReport", "Problem", "check_folder", "validate_folder",
]
