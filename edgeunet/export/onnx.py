"""FP32 ONNX export: TorchScript exporter, onnxslim, ``onnx.checker`` and edgeunet metadata.

The graph has one input ``images`` (B, C, H, W) float32 and one output ``logits``
(B, K, H, W) float32 ((B, C, D, H, W) and (B, K, D, H, W) for 3-D models). Batch and the spatial
axes are dynamic unless ``img_size`` fixes them; each spatial axis must be a multiple of the model's
size multiple on that axis (``ModelConfig.size_multiples``) either way.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

from .. import __version__
from ..atomic import atomic_path
from ..errors import UserError, require
from ..runtime.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from ..sizes import check_multiple
from .graph_rewrites import space_to_depth_stem
from .options import DEFAULT_OPSET, MIN_OPSET

logger = logging.getLogger(__name__)


def model_metadata(model_config: dict, preprocessing: dict, class_names: list[str],
                   precision: str = "fp32") -> ModelMetadata:
    """The metadata every edgeunet ONNX file carries, from a ModelConfig dict."""
    from ..models import ModelConfig  # imports torch

    cfg = ModelConfig.from_dict(model_config)
    return ModelMetadata(
        in_channels=cfg.in_channels,
        num_classes=cfg.num_classes,
        size_multiple=cfg.size_multiple,
        spatial_dims=cfg.spatial_dims,
        size_multiples=tuple(cfg.size_multiples),
        preprocessing=dict(preprocessing),
        class_names=list(class_names),
        precision=precision,
        edgeunet_version=__version__,
        model_config=cfg.to_dict(),
    )


def set_metadata(model_proto, props: dict[str, str]) -> None:
    """Replaces the ``metadata_props`` of an ONNX ModelProto with ``props`` (in place)."""
    del model_proto.metadata_props[:]
    for key, value in props.items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """Parses the edgeunet metadata of the ONNX file at ``path`` (no weights are needed)."""
    onnx = require("onnx", "train")
    model_proto = onnx.load(str(path), load_external_data=False)
    return ModelMetadata.from_props({p.key: p.value for p in model_proto.metadata_props}, source=str(path))


def save_onnx(model_proto, path: str | os.PathLike) -> Path:
    """Checks ``model_proto`` with ``onnx.checker`` (full check) and writes it atomically."""
    onnx = require("onnx", "train")
    onnx.checker.check_model(model_proto, full_check=True)
    with atomic_path(path) as tmp:
        onnx.save(model_proto, str(tmp))
    return Path(path)


def export_onnx(
    model,
    path: str | os.PathLike,
    preprocessing: dict,
    class_names: list[str],
    *,
    opset: int = DEFAULT_OPSET,
    img_size: int | None = None,
    precision: str = "fp32",
    graph_rewrites: bool = True,
) -> Path:
    """Exports a U-Net to a simplified, checked FP32 ONNX file with edgeunet metadata.

    Args:
        model: An edgeunet ``UNet`` (its current, possibly pruned, config is recorded).
        path: Output ONNX path; written atomically.
        preprocessing: Preprocessing spec the model was trained with.
        class_names: One name per output class, background first.
        opset: ONNX opset (13 or newer).
        img_size: Fixes H = W = img_size in the graph; None keeps them dynamic.
        precision: The ``precision`` metadata value.
        graph_rewrites: Apply the exact rewrites of ``graph_rewrites`` (the space-to-depth stem as one
            ``SpaceToDepth``, faster in ONNX Runtime); False keeps the graph as PyTorch exports it.

    Returns:
        ``path``, holding input ``images`` (B, C, H, W) and output ``logits`` (B, K, H, W).
    """
    torch = require("torch", "train")
    onnx = require("onnx", "train")
    onnxslim = require("onnxslim", "train")
    if opset < MIN_OPSET:
        raise UserError(f"--opset {opset} is too old: use {MIN_OPSET} or newer (default {DEFAULT_OPSET})")
    cfg = model.current_config()
    if len(class_names) != cfg.num_classes:
        raise UserError(f"{len(class_names)} class names for a model with {cfg.num_classes} classes: "
                        "give one name per class")
    example, axes = export_example(cfg, img_size)
    buffer = io.BytesIO()
    model = model.eval()
    with torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,  # the dynamo exporter needs onnxscript, which the toolkit does not install
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
            opset_version=opset,
            do_constant_folding=True,
        )
    model_proto = onnxslim.slim(onnx.load_from_string(buffer.getvalue()))
    if graph_rewrites and cfg.spatial_dims == 2:  # pixel_unshuffle's 6-D Transpose -> one SpaceToDepth
        space_to_depth_stem(model_proto, cfg.in_channels)
    model_proto.producer_name, model_proto.producer_version = "edgeunet", __version__
    set_metadata(model_proto, model_metadata(cfg.to_dict(), preprocessing, class_names, precision).to_props())
    logger.info("exported %s: %d nodes, opset %d", path, len(model_proto.graph.node), opset)
    return save_onnx(model_proto, path)


def export_example(cfg, img_size: int | None = None):
    """The example input and dynamic axes of an export: (1, C, s, s) or (1, C, s, s, s) zeros.

    ``s`` is ``img_size`` (then only the batch is dynamic) or, when None, 64 (the training patch of
    3-D models and a fast 2-D trace) rounded up to twice the size multiple; spatial axes stay dynamic.
    """
    import torch

    ndim = int(getattr(cfg, "spatial_dims", 2))
    if img_size is not None:
        check_multiple(img_size, cfg.size_multiple, "--img-size")
    size = img_size or max(64, 2 * cfg.size_multiple)
    names = ("height", "width") if ndim == 2 else ("depth", "height", "width")
    axes = {0: "batch"} if img_size else {0: "batch", **{2 + i: n for i, n in enumerate(names)}}
    return torch.zeros(1, cfg.in_channels, *(size,) * ndim), axes


def onnx_opset(model_proto) -> int:
    """The default-domain opset of a ModelProto."""
    return next((int(o.version) for o in model_proto.opset_import if o.domain in ("", "ai.onnx")), 0)
