"""The metadata sidecar: ``<model file>.json`` beside a file whose format cannot hold edgeunet metadata.

TensorRT engines and LiteRT files carry no ``metadata_props`` (``Format.sidecar`` in
``edgeunet.formats``), so the tool that writes
them puts a JSON object beside them whose ``"metadata"`` entry holds the same key/value strings as
the ONNX file's ``metadata_props`` (see ``runtime.metadata``); other entries are facts about the
file (GPU, profile, fixed size). One reader and one writer serve every such format.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic import write_json
from ..errors import UserError
from ..formats import SIDECAR_SUFFIX
from .metadata import ModelMetadata

ENGINE_FIX = "rebuild the engine with `edgeunet build-engine`, which writes it"


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """The model file's name + ``formats.SIDECAR_SUFFIX``: ``model.<suffix>`` -> ``model.<suffix>.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + SIDECAR_SUFFIX)


def read_sidecar_facts(model_path: str | os.PathLike, fix: str = ENGINE_FIX) -> dict:
    """The whole sidecar object of ``model_path`` (``"metadata"`` and the format's facts).

    Args:
        model_path: The model file; its sidecar is ``<model file>.json``.
        fix: What the user should do when the sidecar is missing or broken (names the tool that writes it).

    Raises:
        UserError: The sidecar is missing, not JSON, or holds no ``"metadata"`` object.
    """
    sidecar = sidecar_path(model_path)
    if not sidecar.is_file():
        raise UserError(f"{model_path} has no metadata sidecar {sidecar.name}: {fix}")
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{sidecar} is not readable JSON ({exc}): {fix}") from None
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        raise UserError(f"{sidecar} has no \"metadata\" object: {fix}")
    return data


def read_sidecar(model_path: str | os.PathLike, fix: str = ENGINE_FIX) -> ModelMetadata:
    """Reads the edgeunet metadata of a model file from its sidecar JSON.

    Args:
        model_path: The model file (a TensorRT engine, a LiteRT file); its sidecar is ``<model file>.json``.
        fix: What the user should do when the sidecar is missing or broken.

    Returns:
        The metadata, parsed by ``ModelMetadata.from_props``.

    Raises:
        UserError: The sidecar is missing, not JSON, or holds no edgeunet metadata.
    """
    return metadata_from_facts(read_sidecar_facts(model_path, fix), model_path)


def metadata_from_facts(facts: dict, model_path: str | os.PathLike) -> ModelMetadata:
    """The ``ModelMetadata`` in a sidecar object already read by ``read_sidecar_facts``."""
    props = facts["metadata"]
    return ModelMetadata.from_props({str(k): str(v) for k, v in props.items()}, source=str(model_path))


def write_sidecar(model_path: str | os.PathLike, props: dict[str, str], facts: dict | None = None) -> Path:
    """Writes ``<model file>.json`` atomically: ``{"metadata": props, **facts}``.

    Args:
        model_path: The model file the sidecar describes.
        props: The ``metadata_props`` strings (``ModelMetadata.to_props()``).
        facts: Other JSON-able facts about the file (``"metadata"`` is reserved).

    Returns:
        The sidecar path.
    """
    facts = dict(facts or {})
    if "metadata" in facts:
        raise ValueError("facts may not hold a 'metadata' entry: it is the props")
    return write_json(sidecar_path(model_path), {**facts, "metadata": {str(k): str(v) for k, v in props.items()}})
