"""``Segmenter``: an edgeunet model file in, class-id masks out, for images of any size.

    from edgeunet.runtime import Segmenter
    seg = Segmenter("model.onnx")                # or any file of edgeunet.formats (a TensorRT engine ...)
    mask = seg(image)                            # (H, W) uint8 class ids
    masks, probs = seg.predict(images, return_probs=True)

Every image goes through the same ``preprocess`` as in training, on the full image, then is
padded to the model's size multiple (small images) or tiled with blended overlaps (large ones).

3-D models (``metadata.spatial_dims == 3``) take (D, H, W) or (D, H, W, C) volumes and return
(D, H, W) masks: the volume is normalized with whole-volume statistics, then runs in cubic windows
(``tile`` voxels a side, one window when it fits) streamed slab by slab
(``window.sliding_window_mask``), so memory is bounded by the window and batch, not the volume.
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

from ..errors import UserError
from ..sizes import check_multiple, round_up
from .backends import open_backend
from .preprocess import check_image, check_volume, preprocess, volume_normalizer
from .session import DEFAULT_SPINNING
from .tiling import crop, pad_to, run_tiled, run_whole, softmax
from .window import argmax_into, mirrored, sliding_window, sliding_window_mask

DEFAULT_TILE = 512
DEFAULT_TILE_3D = 64  # the training patch of the 3-D models; memory per window grows with its cube
DEFAULT_BATCH = 8


class Segmenter:
    """Runs an edgeunet model file (ONNX Runtime, TensorRT, OpenVINO, ExecuTorch, LiteRT) on images of any size.

    One Segmenter may serve several threads: its settings do not change after construction
    and every call works on its own arrays.

    Args:
        model_path: A model file of the format table (``edgeunet.formats``): ONNX from ``edgeunet export``,
            an ORT-format, OpenVINO, ExecuTorch or LiteRT file (with its ``<file>.json`` sidecar) from
            ``edgeunet export --formats``, or a TensorRT engine from ``edgeunet build-engine``.
        backend: ``"auto"`` (by file type) or one of ``runtime.backends.BACKENDS``.
        threads: Intra-op threads of the runtime; None keeps its default.
        providers: ONNX Runtime execution providers, best first; None picks CUDA when
            available, else CPU.
        tile: Side of the square tiles (pixels, a multiple of the model's size multiple) for
            images larger than one tile; None: 512, or what the model's fixed shape allows.
            For 3-D models the side of the cubic windows (None: 64).
        overlap: Fraction of a tile shared with each neighbour, in [0, 1).
        tile_batch: Tiles per model call (1 keeps peak memory at one tile's; more can help GPUs).
        precision: OpenVINO's inference precision: ``"f32"`` (default: computes as verified),
            ``"bf16"`` (faster on CPUs with AVX-512 BF16 or AMX), ``"f16"`` or None (OpenVINO's
            choice). Other backends run the file's own precision and ignore it.
        spinning: When ONNX Runtime's intra-op threads busy-wait: ``"run"`` (default: within a call, stopping
            when it returns, so the cores are free for your own work between calls), ``"always"`` (ONNX
            Runtime's default, a little faster for back-to-back calls) or ``"off"``. Other backends ignore it.
        tta: Test-time mirroring (nnU-Net's): every tile or window also runs mirrored along each combination of
            spatial axes and the probabilities are averaged; 4x the model calls in 2-D, 8x in 3-D.

    Attributes:
        metadata: ``ModelMetadata`` of the model (classes, preprocessing, size multiple).
        tile: The tile side in use.
    """

    def __init__(self, model_path: str | os.PathLike, backend: str = "auto", threads: int | None = None,
                 providers: list[str] | None = None, tile: int | None = None, overlap: float = 0.25,
                 tile_batch: int = 1, precision: str | None = "f32", spinning: str = DEFAULT_SPINNING,
                 tta: bool = False):
        backend = open_backend(model_path, backend, threads=threads, providers=providers, precision=precision,
                               spinning=spinning)
        self._setup(backend, tile, overlap, tile_batch, tta)

    @classmethod
    def from_backend(cls, backend, tile: int | None = None, overlap: float = 0.25, tile_batch: int = 1,
                     tta: bool = False) -> Segmenter:
        """A Segmenter around an already-open backend (``OrtBackend``, ``TrtBackend`` or any object with
        their interface: ``metadata``, ``name``, ``providers``, ``max_batch``, ``fixed_size`` and
        ``run((B, C, H, W) float32) -> (B, K, H, W) float32 logits``); the other arguments as in ``__init__``.
        """
        segmenter = cls.__new__(cls)
        segmenter._setup(backend, tile, overlap, tile_batch, tta)
        return segmenter

    def _setup(self, backend, tile: int | None, overlap: float, tile_batch: int, tta: bool = False) -> None:
        self._backend = backend
        self.tta = bool(tta)
        self._run = mirrored(self._run_model) if self.tta else self._run_model
        self.metadata = self._backend.metadata
        if not 0.0 <= float(overlap) < 1.0:
            raise UserError(f"overlap must be in [0, 1), got {overlap}: 0.25 is a good default")
        if int(tile_batch) < 1:
            raise UserError(f"tile_batch must be >= 1, got {tile_batch}")
        self.overlap = float(overlap)
        max_batch = self._backend.max_batch
        self.tile_batch = min(int(tile_batch), max_batch) if max_batch else int(tile_batch)
        self.tile = self._choose_tile(tile)
        fixed = self._backend.fixed_size
        self._min_size = fixed or getattr(self._backend, "min_size", None) or (1,) * self.metadata.spatial_dims
        self._mask_dtype = np.uint8 if self.num_classes <= 256 else np.int32

    def _choose_tile(self, tile: int | None) -> int:
        multiple = self.metadata.size_multiple
        fixed = self._backend.fixed_size
        if fixed and len(set(fixed)) != 1:
            raise UserError(f"the model fixes a non-square input {fixed}: export it with square or dynamic sizes")
        bounds = fixed or getattr(self._backend, "max_size", None)  # TensorRT profiles bound H and W
        largest = min(bounds) if bounds else None
        smallest = max(getattr(self._backend, "min_size", None) or (1,))
        if tile is None:
            if fixed:
                return int(fixed[0])
            default = DEFAULT_TILE_3D if self.metadata.is_3d else DEFAULT_TILE
            tile = default if largest is None else min(default, largest)
            return max(multiple, tile // multiple * multiple)
        tile = int(tile)
        check_multiple(tile, multiple, "tile")
        if fixed and tile != fixed[0]:
            raise UserError(f"the model only takes {'x'.join(map(str, fixed))} inputs: "
                            f"use tile {fixed[0]} (or leave it unset)")
        if largest is not None and not smallest <= tile <= largest:
            raise UserError(f"tile {tile} is outside the input sizes the engine takes ({smallest}..{largest}): "
                             f"use a tile in that range or rebuild the engine with a wider profile")
        return tile

    @property
    def class_names(self) -> list[str]:
        """One name per class id, background first."""
        return list(self.metadata.class_names)

    @property
    def num_classes(self) -> int:
        return self.metadata.num_classes

    @property
    def in_channels(self) -> int:
        return self.metadata.in_channels

    @property
    def backend(self) -> str:
        """``"onnxruntime"`` or ``"tensorrt"``."""
        return self._backend.name

    @property
    def providers(self) -> list[str]:
        """Execution providers in use, best first."""
        return list(self._backend.providers)

    def __repr__(self) -> str:
        return (f"Segmenter(backend={self.backend!r}, providers={self.providers}, classes={self.class_names}, "
                f"tile={self.tile}, overlap={self.overlap}" + (", tta=True)" if self.tta else ")"))

    def _run_model(self, x: np.ndarray) -> np.ndarray:
        """(B, C, h, w) -> (B, K, h, w) logits, in chunks the backend accepts."""
        limit = self._backend.max_batch or len(x)
        if len(x) <= limit:
            return self._backend.run(x)
        return np.concatenate([self._backend.run(x[i:i + limit]) for i in range(0, len(x), limit)])

    def _fits_whole(self, height: int, width: int) -> bool:
        multiple = self.metadata.size_multiple
        padded = max(round_up(height, multiple), round_up(width, multiple))
        return self._backend.fixed_size is None and padded <= self.tile

    def _probs(self, x: np.ndarray, normalize: bool = True) -> np.ndarray:
        """(K, H, W) float32 probabilities of one preprocessed (C, H, W) image.

        With ``normalize=False`` tiled images give weighted sums instead (same argmax).
        """
        height, width = x.shape[1:]
        x = pad_to(x, max(height, self._min_size[0]), max(width, self._min_size[1]))
        multiple = self.metadata.size_multiple
        if self._fits_whole(*x.shape[1:]):
            probs = run_whole(x, self._run, multiple)
        else:
            probs = run_tiled(x, self._run, self.num_classes, self.tile, self.overlap, multiple,
                              tile_batch=self.tile_batch, normalize=normalize)
        return crop(probs, height, width)

    def _preprocess(self, image: np.ndarray) -> np.ndarray:
        return preprocess(image, self.metadata.preprocessing, self.in_channels)

    def _mask(self, probs: np.ndarray) -> np.ndarray:
        """argmax over K without np.argmax's (H, W) int64 temporary: (H, W) class ids."""
        return argmax_into(probs, np.empty(probs.shape[1:], self._mask_dtype))

    def _check_dims(self, array: np.ndarray) -> None:
        """UserError naming the fix when a 2-D model gets a volume (a 3-D model checks its input itself)."""
        if self.metadata.is_3d:
            check_volume(array, self.in_channels)
        elif isinstance(array, np.ndarray) and array.ndim == 4 or (
                isinstance(array, np.ndarray) and array.ndim == 3 and self.in_channels == 1 and array.shape[2] > 4):
            raise UserError(f"this is a 2-D model and got a volume of shape {array.shape}: segment it with a 3-D "
                            "model (e.g. an exported unet3d-ds), or slice by slice with Segmenter.segment_slices")

    def _volume_kwargs(self) -> dict:
        return dict(num_classes=self.num_classes, window=self.tile, overlap=self.overlap,
                    multiple=self.metadata.size_multiples, batch=self.tile_batch)

    def segment_volume(self, volume: np.ndarray) -> np.ndarray:
        """Segments one volume with a 3-D model.

        Args:
            volume: (D, H, W) or (D, H, W, C) array of uint8, uint16 or float, any size.

        Returns:
            (D, H, W) class ids, uint8 (int32 for models with more than 256 classes). Peak memory
            beyond the volume and the mask is a few windows' worth (``window.sliding_window_mask``).
        """
        self._check_dims(volume)
        if not self.metadata.is_3d:
            raise UserError("segment_volume needs a 3-D model: use Segmenter.segment_slices with a 2-D model")
        source = volume_normalizer(volume, self.metadata.preprocessing, self.in_channels)
        return sliding_window_mask(source, self._run, dtype=self._mask_dtype, **self._volume_kwargs())

    def segment_slices(self, volume: np.ndarray) -> np.ndarray:
        """Segments a (D, H, W[, C]) volume slice by slice with a 2-D model: (D, H, W) class ids.

        Each slice is preprocessed on its own, as a 2-D image (the 2-D baseline of a 3-D model).
        """
        if self.metadata.is_3d:
            raise UserError("segment_slices needs a 2-D model: segment volumes with Segmenter(...)(volume)")
        check_volume(volume, self.in_channels)
        return np.stack(self.predict(list(volume), batch_size=self.tile_batch))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Segments one image.

        Args:
            image: (H, W) or (H, W, C) array of uint8, uint16 or float, any H and W.

        Returns:
            (H, W) class ids, uint8 (int32 for models with more than 256 classes).

            For 3-D models: a (D, H, W[, C]) volume in, (D, H, W) class ids out (``segment_volume``).

        Raises:
            ValueError: Wrong channel count, NaN/inf values, empty or non-image array.
        """
        if self.metadata.is_3d:
            return self.segment_volume(image)
        self._check_dims(image)
        return self._mask(self._probs(self._preprocess(image), normalize=False))

    def predict_probs(self, image: np.ndarray) -> np.ndarray:
        """Softmax probabilities of one image: (K, H, W) float32, summing to 1 over K ((K, D, H, W) for volumes,
        which holds K floats per voxel: prefer ``segment_volume`` for large volumes)."""
        if self.metadata.is_3d:
            self._check_dims(image)
            x = preprocess(image, self.metadata.preprocessing, self.in_channels, spatial_dims=3)
            return sliding_window(x, self._run, **self._volume_kwargs())
        return np.ascontiguousarray(self._probs(self._preprocess(image)))

    def predict(self, images: list[np.ndarray], return_probs: bool = False, batch_size: int = DEFAULT_BATCH):
        """Segments a list of images; those of the same size that fit one tile share model calls.

        Args:
            images: (H, W) or (H, W, C) arrays, sizes may differ.
            return_probs: Also return the (K, H, W) float32 softmax of each image.
            batch_size: Most images per model call.

        Returns:
            A list of (H, W) masks, or ``(masks, probs)`` when ``return_probs``.
        """
        if isinstance(images, np.ndarray):
            raise UserError("predict takes a list of images: use list(stack) for an (N, H, W) stack, "
                            "or seg(image) for one image")
        images = list(images)
        if int(batch_size) < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        if self.metadata.is_3d:
            masks = [self.segment_volume(v) for v in images]
            return (masks, [self.predict_probs(v) for v in images]) if return_probs else masks
        for image in images:  # every image is checked before any work is done
            check_image(image, self.in_channels)
        probs: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, image in enumerate(images):
            height, width = image.shape[:2]
            if self._fits_whole(height, width) and min(height, width) >= max(self._min_size):
                groups[image.shape[:2]].append(index)
            else:
                probs[index] = np.ascontiguousarray(self._probs(self._preprocess(image)))
        for indices in groups.values():
            for first in range(0, len(indices), int(batch_size)):
                chunk = indices[first:first + int(batch_size)]
                for index, p in zip(chunk, self._run_batch([images[i] for i in chunk])):
                    probs[index] = p
        masks = [self._mask(p) for p in probs]
        return (masks, probs) if return_probs else masks

    def _run_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """(K, H, W) probabilities of same-size images that fit one tile, in one model call."""
        height, width = images[0].shape[:2]
        multiple = self.metadata.size_multiple
        size = (round_up(height, multiple), round_up(width, multiple))
        batch = np.stack([pad_to(self._preprocess(image), *size) for image in images])
        batch_probs = softmax(self._run(batch), axis=1)
        return [np.ascontiguousarray(crop(p, height, width)) for p in batch_probs]
