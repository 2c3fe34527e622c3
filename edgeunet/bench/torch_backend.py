"""``TorchBackend``: an edgeunet checkpoint (``.pt``) behind the runtime backends' interface.

The runtime stays torch-free, so this backend lives with the bench: it gives ``metadata``,
``name``, ``providers``, ``max_batch``, ``fixed_size`` and ``run((B, C, H, W) float32) ->
(B, K, H, W) float32 logits`` like ``OrtBackend`` and ``TrtBackend``, so ``Segmenter`` scores a
checkpoint exactly as it scores an exported file, and the timing loop calls it the same way
(numpy in, numpy out: the host copies are part of each call, as for the other backends).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UserError, require
from ..runtime.metadata import ModelMetadata


def torch_device(device: str) -> str:
    """``"cpu"`` or ``"cuda"`` for a requested ``"auto"``, ``"cpu"`` or ``"cuda"``; UserError when CUDA is asked
    but absent."""
    torch = require("torch", "train")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: PyTorch sees no CUDA GPU (a CPU build of torch, or no NVIDIA driver): "
                        "use --device cpu, or install a CUDA build of torch on a machine with an NVIDIA GPU")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class TorchBackend:
    """Runs an edgeunet checkpoint in PyTorch eval mode, without autograd.

    Attributes:
        metadata: Built from the checkpoint (config, preprocessing, class names); precision fp32.
        providers: ``["cuda"]`` or ``["cpu"]``.
        device: ``"cuda"`` or ``"cpu"``.
        max_batch, fixed_size: None (a checkpoint takes any batch and any valid size).
    """

    name = "torch"
    max_batch = None
    fixed_size = None

    def __init__(self, path: str | os.PathLike, device: str = "auto"):
        self._torch = require("torch", "train")
        from ..checkpoint import model_from_checkpoint

        model, ckpt = model_from_checkpoint(Path(path))
        cfg = model.cfg
        self.metadata = ModelMetadata(in_channels=cfg.in_channels, num_classes=cfg.num_classes,
                                      size_multiple=cfg.size_multiple, preprocessing=ckpt["preprocessing"],
                                      class_names=ckpt["class_names"], precision="fp32",
                                      edgeunet_version=ckpt.get("edgeunet_version", ""),
                                      model_config=ckpt["model_config"],
                                      spatial_dims=int(getattr(cfg, "spatial_dims", 2)),
                                      size_multiples=tuple(getattr(cfg, "size_multiples", ())))
        self.device = torch_device(device)
        self.providers = [self.device]
        self._model = model.to(self.device)

    def run(self, x: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 -> (B, K, H, W) float32 logits; returns when the result is on the host."""
        torch = self._torch
        with torch.inference_mode():
            logits = self._model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device))
            return logits.float().cpu().numpy()  # .cpu() waits for the GPU

    def reset_gpu_peak(self) -> None:
        """Starts a new GPU memory peak (no-op on the CPU)."""
        if self.device == "cuda":
            self._torch.cuda.reset_peak_memory_stats()

    def gpu_peak_mb(self) -> float | None:
        """PyTorch allocator peak since ``reset_gpu_peak`` (MB); None on the CPU."""
        if self.device != "cuda":
            return None
        return self._torch.cuda.max_memory_allocated() / 2**20

    def close(self) -> None:
        """Frees the model (and the GPU cache)."""
        self._model = None
        if self.device == "cuda":
            self._torch.cuda.empty_cache()
