"""What an artifact is: ``describe(path)`` for checkpoints, ONNX files and TensorRT engines."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .errors import UserError


def model_cost(model, img_size: int = 256) -> dict:
    """Parameters and multiply-accumulates of one (1, C, S, S) forward, counted by Torch-Pruning."""
    import torch
    import torch_pruning as tp

    size = max(model.cfg.size_multiple, img_size // model.cfg.size_multiple * model.cfg.size_multiple)
    example = torch.zeros(1, model.cfg.in_channels, size, size)
    was_training = model.training
    macs, params = tp.utils.count_ops_and_params(model.eval(), example)
    model.train(was_training)
    return {"parameters": int(params), "macs": int(macs), "gmacs": round(macs / 1e9, 4), "img_size": size}


def describe_checkpoint(path: Path, img_size: int = 256) -> dict:
    from .checkpoint import model_from_checkpoint

    model, ckpt = model_from_checkpoint(path)
    return {
        "kind": "checkpoint",
        "path": str(path),
        "model_config": ckpt["model_config"],
        "width_plan": model.width_plan(),
        **model_cost(model, img_size),
        "class_names": ckpt["class_names"],
        "preprocessing": ckpt["preprocessing"],
        "epoch": ckpt.get("epoch"),
        "metrics": ckpt.get("metrics", {}),
        "pruned": ckpt.get("prune", None) is not None,
        "edgeunet_version": ckpt.get("edgeunet_version"),
    }


def describe_onnx(path: Path) -> dict:
    """Metadata, opset, size and op counts of an ONNX file (needs the onnx package)."""
    from .errors import require
    from .runtime.metadata import ModelMetadata

    onnx = require("onnx", "train")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise UserError(f"{path} is not a readable ONNX file ({type(exc).__name__}): re-export it") from None
    meta = ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props}, str(path))
    ops = Counter(n.op_type for n in proto.graph.node)
    return {
        "kind": "onnx",
        "path": str(path),
        "precision": meta.precision,
        "size_mb": round(path.stat().st_size / 2**20, 3),
        "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "in_channels": meta.in_channels,
        "num_classes": meta.num_classes,
        "class_names": meta.class_names,
        "size_multiple": meta.size_multiple,
        "preprocessing": meta.preprocessing,
        "model_config": meta.model_config,
        "nodes": sum(ops.values()),
        "ops": dict(ops.most_common()),
    }


def describe(path: str | Path, img_size: int = 256) -> dict:
    """Describes a .pt checkpoint, an .onnx model or an .engine (through its JSON sidecar)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: give a checkpoint (.pt), an ONNX model (.onnx) or an engine (.engine)")
    if path.suffix == ".onnx":
        return describe_onnx(path)
    if path.suffix in (".engine", ".plan", ".trt"):
        from .runtime.backend_trt import read_sidecar, sidecar_path

        meta = read_sidecar(path)
        facts = json.loads(sidecar_path(path).read_text())
        return {
            "kind": "engine", "path": str(path), "size_mb": round(path.stat().st_size / 2**20, 3), "precision": meta.precision,
            "model_config": meta.model_config, "class_names": meta.class_names, "preprocessing": meta.preprocessing,
            **{k: v for k, v in facts.items() if k != "metadata"},
        }
    return describe_checkpoint(path, img_size)


def describe_variants(img_size: int = 256) -> list[dict]:
    """Every registered variant at 1 input channel and 2 classes: parameters and MACs."""
    from .models import create_model, list_models

    rows = []
    for name in list_models():
        model = create_model(name)
        cfg = model.cfg
        rows.append({"name": name, "block": cfg.block, "widths": list(cfg.widths), "fused_levels": cfg.fused_levels, "space_to_depth": cfg.space_to_depth,
                     "upsample": cfg.upsample, "attention": cfg.attention, **model_cost(model, img_size)})
    return rows
