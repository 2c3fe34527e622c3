"""What an artifact is: ``describe(path)`` for checkpoints, ONNX files and TensorRT engines (``edgeunet.formats``).

Facts come from the file itself (config, metadata, opset, size); parameters and MACs come from
the one MAC counter, ``edgeunet.models.cost.count_cost``. ONNX files and engines are described
without torch; op counts and the opset need the ``onnx`` package (the ``train`` extra).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .errors import MissingFileError, UserError
from .formats import BY_NAME, ENGINE_SUFFIXES, format_of

CHECKPOINT_SUFFIXES = (".pt", ".pth")


def _cost(model, img_size: int) -> dict:
    """Parameters and MACs at ``img_size`` (rounded to the size multiple); ``cost_shape``: the input's spatial
    shape they were counted at ((H, W), or (D, H, W) for a 3-D model)."""
    from .models.cost import count_cost

    cost = count_cost(model, img_size)
    dims = int(getattr(model.cfg, "spatial_dims", 2))
    return {"parameters": cost.parameters, "macs": cost.macs, "gmacs": cost.gmacs, "img_size": cost.size,
            "cost_shape": [cost.size] * dims}


def describe_checkpoint(path: Path, img_size: int = 256, img_size_3d: int = 64) -> dict:
    """Config, cost at ``img_size`` px (a 3-D model: on an ``img_size_3d`` cube), classes, preprocessing and
    training state of a ``.pt`` checkpoint.

    ``epochs_completed`` is the checkpoint's ``epoch``: the number of epochs trained when it was saved.
    """
    from .checkpoint import model_from_checkpoint

    model, ckpt = model_from_checkpoint(path)
    side = img_size_3d if int(getattr(model.cfg, "spatial_dims", 2)) == 3 else img_size
    return {
        "kind": "checkpoint",
        "path": str(path),
        "model_config": ckpt["model_config"],
        "width_plan": model.width_plan(),
        **_cost(model, side),
        "class_names": ckpt["class_names"],
        "preprocessing": ckpt["preprocessing"],
        "epochs_completed": ckpt.get("epoch"),
        "metrics": ckpt.get("metrics", {}),
        "pruned": ckpt.get("prune", None) is not None,
        "edgeunet_version": ckpt.get("edgeunet_version"),
    }


def _onnx_graph_facts(path: Path) -> dict | None:
    """Metadata props, opset and op counts read with the onnx package; None when it is not installed."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for a foreign file
        raise UserError(f"{path} is not a readable ONNX file ({type(exc).__name__}): re-export it") from None
    ops = Counter(n.op_type for n in proto.graph.node)
    return {
        "props": {p.key: p.value for p in proto.metadata_props},
        "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "nodes": sum(ops.values()),
        "ops": dict(ops.most_common()),
    }


def _onnx_props_from_runtime(path: Path) -> dict:
    """Metadata props read through ONNX Runtime (torch-free, onnx-free)."""
    from .runtime.session import ort_session

    session = ort_session(path, providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def describe_onnx(path: Path) -> dict:
    """Metadata, size and (with the onnx package) opset and op counts of an ONNX file."""
    from .runtime.metadata import ModelMetadata

    graph = _onnx_graph_facts(path)
    props = graph["props"] if graph else _onnx_props_from_runtime(path)
    meta = ModelMetadata.from_props(props, str(path))
    return {
        "kind": "onnx",
        "path": str(path),
        "precision": meta.precision,
        "size_mb": round(path.stat().st_size / 2**20, 3),
        "opset": graph["opset"] if graph else None,
        "in_channels": meta.in_channels,
        "num_classes": meta.num_classes,
        "class_names": meta.class_names,
        "size_multiple": meta.size_multiple,
        "preprocessing": meta.preprocessing,
        "model_config": meta.model_config,
        "nodes": graph["nodes"] if graph else None,
        "ops": graph["ops"] if graph else None,
    }


def describe_engine(path: Path) -> dict:
    """What a TensorRT engine's JSON sidecar says about it (no TensorRT needed)."""
    from .runtime.sidecar import read_sidecar, sidecar_path

    meta = read_sidecar(path)
    facts = json.loads(sidecar_path(path).read_text())
    return {
        "kind": "engine", "path": str(path), "size_mb": round(path.stat().st_size / 2**20, 3),
        "precision": meta.precision, "model_config": meta.model_config, "class_names": meta.class_names,
        "preprocessing": meta.preprocessing, **{k: v for k, v in facts.items() if k != "metadata"},
    }


def describe(path: str | Path, img_size: int = 256, img_size_3d: int = 64) -> dict:
    """Describes a ``.pt`` checkpoint, an ONNX model or a TensorRT engine (through its JSON sidecar).

    A checkpoint's MACs are counted at ``img_size`` x ``img_size`` (2-D) or on an ``img_size_3d`` cube (3-D).

    Raises:
        MissingFileError: ``path`` does not exist.
        UserError: ``path`` is a folder, of an unknown kind, or not a readable edgeunet artifact.
    """
    path = Path(path)
    kinds = (f"a checkpoint ({CHECKPOINT_SUFFIXES[0]}), an ONNX model ({BY_NAME['onnx'].suffix}) or a TensorRT engine "
             f"({', '.join(ENGINE_SUFFIXES)})")
    if not path.exists():
        raise MissingFileError(f"{path} does not exist: give {kinds}")
    if path.is_dir():
        raise UserError(f"{path} is a folder: give {kinds} in it")
    suffix, fmt = path.suffix.lower(), format_of(path)
    if fmt is BY_NAME["onnx"]:
        return describe_onnx(path)
    if fmt is BY_NAME["tensorrt"]:
        return describe_engine(path)
    if suffix in CHECKPOINT_SUFFIXES:
        return describe_checkpoint(path, img_size, img_size_3d)
    raise UserError(f"{path}: unknown kind of file {suffix or '(no suffix)'!r}: give {kinds}")


def describe_variants(img_size: int = 256, spatial_dims: int | None = 2) -> list[dict]:
    """The registered variants of ``spatial_dims`` (None: all) at 1 input channel and 2 classes: parameters
    and MACs (3-D variants on an img_size cube). ``encoder``: the pretrained encoder ('' for edgeunet's own)."""
    from .models import create_model, list_models

    rows = []
    for name in list_models(spatial_dims):
        model = create_model(name)
        cfg = model.cfg
        rows.append({"name": name, "encoder": cfg.encoder, "block": cfg.block, "widths": list(cfg.widths),
                     "fused_levels": cfg.fused_levels,
                     "space_to_depth": cfg.space_to_depth, "upsample": cfg.upsample, "up_act": cfg.up_act,
                     "attention": cfg.attention, "attention_levels": list(cfg.attention_levels),
                     **_cost(model, img_size)})
    return rows
