"""``ExportOptions``: every option of one export, validated once where it enters.

The ``edgeunet export`` flags, the recipe keys (``edgeunet/recipes/*.toml``) and the Python API all
come from the fields below: a default is written once, and a new option is one new field. Each
field's ``metadata`` holds its help text and its ``kind``, from which the CLI picks the argparse type.

    options = ExportOptions(int8=True, calib="data/cells", max_dice_drop=0.02)
    export_model("runs/cells/best.pt", "runs/cells-export", options)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import typing
from dataclasses import dataclass, field

from ..errors import UserError
from ..formats import AUTO, OPTION_NAMES, formats_help
from .targets import TARGETS, TARGETS_TABLE, Target, target_help, target_named

CALIB_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_OPSET = 17
MIN_OPSET = 13  # QuantizeLinear per-channel axis and Resize as exported need opset 13
SEARCH_SIZE = 256  # px: side the INT8 search times when the graph has dynamic H and W
FIXED_SIZE = 256  # px: side of fixed-size files (LiteRT) when neither --fixed-img-size nor --img-size is given
# Spellings of earlier releases, still read from recipes (and, in the CLI, as hidden flags).
DEPRECATED_KEYS = {"calib_size": "calib_images", "search_size": "search_img_size"}
SIZE_FIELDS = ("img_size", "search_img_size", "fixed_img_size")  # image sides (px): checked against the model


def _option(default, kind: str, help: str, **extra):
    return field(default=default, metadata={"kind": kind, "help": help, **extra})


@dataclass(frozen=True)
class ExportOptions:
    """What one export writes and checks. Field kinds: switch, data, count, seed, choice, int, size,
    fraction, seconds (the CLI maps each to an argparse type). Raises UserError naming the flag."""

    int8: bool = _option(False, "switch", "also write model.int8.onnx (QDQ, static quantization)")
    fp16: bool = _option(False, "switch", "also write model.fp16.onnx (float32 in and out)")
    calib: str = _option("synthetic", "data", "calibration images: a folder with images/ and masks/ (or train/ and "
                         "val/), or 'synthetic'; without --val, the search and verification images come from it too, "
                         "disjoint from the calibration images")
    val: str | None = _option(None, "data", "search and verification images (a folder or 'synthetic'), split "
                              "between the two roles; unset: from --calib")
    calib_images: int = _option(32, "count", "calibration images, at most")
    search_images: int = _option(16, "count", "images the INT8 search scores its candidates on, at most")
    val_images: int = _option(32, "count", "verification images (FP32/FP16 parity and the final INT8 Dice "
                              "check), at most")
    seed: int = _option(0, "seed", "seed of the split of one folder into calibration, search and verification "
                        "images, and of synthetic images")
    calib_method: str = _option("minmax", "choice", "INT8 range calibration", choices=CALIB_METHODS)
    target: str = _option("cpu", "choice", target_help(), choices=TARGETS)
    reduce_range: bool | None = _option(None, "switch", "7-bit INT8 weights for --target cpu (unset: on for x86 CPUs "
                                        "without VNNI, where the export runs)")
    opset: int = _option(DEFAULT_OPSET, "int", "ONNX opset")
    img_size: int | None = _option(None, "size", "fix H = W to this size (unset: dynamic batch, height and width)")
    engine: bool = _option(False, "switch", "also build a TensorRT engine (needs TensorRT and a GPU)")
    max_dice_drop: float = _option(0.01, "fraction", "largest allowed FP32 - INT8 mean Dice on the verification "
                                   "images")
    int8_search: bool | None = _option(None, "switch", "choose per layer group what to quantize by timing "
                                       "candidates on ONNX Runtime on this CPU and scoring their Dice on the search "
                                       "images (unset: on for --target cpu)")
    search_time: float = _option(75.0, "seconds", "seconds after which the INT8 search starts no more candidates")
    search_img_size: int | None = _option(None, "size", "image side (px) the INT8 search and --formats auto time at "
                                          "(unset: --img-size, else 256)")
    fixed_img_size: int | None = _option(None, "size", "side (px) of the fixed-size files (LiteRT; ExecuTorch of a "
                                         "model with Transformer blocks) (unset: --img-size, else 256; with "
                                         "--formats auto: the side auto times at)")
    formats: tuple[str, ...] = _option(("onnx",), "names", formats_help())

    def __post_init__(self):
        for name in ("calib", "val"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
        if isinstance(self.formats, str | list):  # "onnx,ort" or a recipe's list
            object.__setattr__(self, "formats", parse_formats(self.formats))
        _check_types(self)
        _check_values(self)

    @staticmethod
    def flag(name: str) -> str:
        """The command-line spelling of a field: ``calib_images`` -> ``--calib-images``."""
        return "--" + name.replace("_", "-")

    @property
    def target_row(self) -> Target:
        """What ``target`` decides (``targets.Target``)."""
        return target_named(self.target)

    @property
    def search_runs(self) -> bool:
        """Whether the INT8 search runs: INT8 for a target that is this machine, unless ``int8_search`` is False."""
        return self.int8 and self.target_row.local and self.int8_search is not False

    @property
    def resolved_reduce_range(self) -> bool:
        """``reduce_range`` with None decided for this CPU (``Target.reduce_range``)."""
        return self.target_row.reduce_range(self.reduce_range)

    def search_side(self, multiple: int) -> int:
        """Side (px) the INT8 search and ``--formats auto`` time at: ``search_img_size``, the static size, else 256
        rounded to the model's size ``multiple``."""
        return self.search_img_size or self.img_size or _rounded(SEARCH_SIZE, multiple)

    def fixed_side(self, multiple: int) -> int:
        """Side (px) of the fixed-size files (``formats.takes_one_size``): ``fixed_img_size``; else, with
        ``--formats auto``, the side auto times at; else the static size, else 256 rounded to the model's size
        ``multiple``."""
        if self.fixed_img_size:
            return self.fixed_img_size
        if AUTO in self.formats:
            return self.search_side(multiple)
        return self.img_size or _rounded(FIXED_SIZE, multiple)

    def to_dict(self) -> dict:
        """The fields as JSON writes them (tuples as lists), so export.json and the returned report agree."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict, source: str = "options") -> ExportOptions:
        """Options from a mapping of field names (a recipe merged with flags); unknown keys name the close match."""
        values = dict(values)
        for old, new in DEPRECATED_KEYS.items():
            if old in values:
                values.setdefault(new, values.pop(old))
        names = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(key, names + list(DEPRECATED_KEYS), n=1)
                hint = f"did you mean {DEPRECATED_KEYS.get(close[0], close[0])!r}?" if close else \
                    f"valid keys: {', '.join(names)}"
                raise UserError(f"{source}: unknown key {key!r}: {hint}")
        return cls(**values)


def _rounded(side: int, multiple: int) -> int:
    return max(multiple, side // multiple * multiple)


def parse_formats(value: str | list | tuple) -> tuple[str, ...]:
    """``"onnx,ORT"`` or a list -> ``("onnx", "ort")``: lower-case, no repeats, ``onnx`` first (always written)."""
    names = value.split(",") if isinstance(value, str) else list(value)
    out = ["onnx"]
    for name in names:
        if not isinstance(name, str):
            raise UserError(f"--formats takes names such as onnx,openvino, not {name!r}")
        name = name.strip().lower()
        if name and name not in out:
            out.append(name)
    return tuple(out)


def check_formats(formats: tuple[str, ...]) -> None:
    """Raises UserError naming the valid names for an unknown one."""
    valid = OPTION_NAMES + (AUTO,)
    for name in formats:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"unknown --formats name {name!r}: {hint}use some of {', '.join(OPTION_NAMES)}, or {AUTO}")
    if AUTO in formats and len(formats) > 2:
        raise UserError("--formats auto chooses the runtime itself: give it alone (onnx is always written)")


def field_types() -> dict[str, tuple[type, ...]]:
    """Field name -> accepted Python types (an int is accepted for a float; None is accepted where the default is
    None). Recipes check their values with it."""
    hints = typing.get_type_hints(ExportOptions)
    out = {}
    for f in dataclasses.fields(ExportOptions):
        if typing.get_origin(hints[f.name]) is tuple:  # a list of names; a recipe gives a list
            out[f.name] = (tuple, list)
            continue
        kinds = tuple(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
        out[f.name] = kinds + ((int,) if kinds == (float,) else ())
    return out


def default(name: str):
    """The default of an ExportOptions field."""
    return {f.name: f.default for f in dataclasses.fields(ExportOptions)}[name]


def _check_types(options: ExportOptions) -> None:
    for name, types in field_types().items():
        value = getattr(options, name)
        if value is None and default(name) is None:
            continue
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise UserError(f"{ExportOptions.flag(name)} {value!r} should be a {types[0].__name__}")


def _check_values(o: ExportOptions) -> None:
    target_named(o.target)
    if o.calib_method not in CALIB_METHODS:
        raise UserError(f"unknown --calib-method {o.calib_method!r}: use one of {', '.join(CALIB_METHODS)}")
    for name in ("calib_images", "search_images", "val_images"):
        if getattr(o, name) < 1:
            raise UserError(f"{o.flag(name)} {getattr(o, name)} must be at least 1 "
                            f"({default(name)} is the default)")
    if o.seed < 0:
        raise UserError(f"--seed {o.seed} must be 0 or more")
    if not o.calib or o.val == "":
        raise UserError("--calib and --val take a folder with images/ and masks/, or 'synthetic'")
    if o.opset < MIN_OPSET:
        raise UserError(f"--opset {o.opset} is too old: use {MIN_OPSET} or newer (default {DEFAULT_OPSET})")
    if not math.isfinite(o.max_dice_drop):
        raise UserError("--max-dice-drop must be a number such as 0.01")
    if o.max_dice_drop < 0:
        raise UserError(f"--max-dice-drop {o.max_dice_drop:g} must be 0 or more: it is the largest FP32 - INT8 "
                        "Dice difference allowed, e.g. 0.01")
    if not (math.isfinite(o.search_time) and o.search_time > 0):
        raise UserError(f"--search-time {o.search_time:g} must be a positive number of seconds (default "
                        f"{default('search_time'):g})")
    for name in SIZE_FIELDS:
        if getattr(o, name) is not None and getattr(o, name) < 1:
            raise UserError(f"{o.flag(name)} {getattr(o, name)} must be a positive image side in pixels, e.g. 256")
    check_formats(o.formats)
    _check_combinations(o)


def _check_combinations(o: ExportOptions) -> None:
    target = o.target_row
    if o.int8_search and not target.local:
        local = ", ".join(t.name for t in TARGETS_TABLE if t.local)
        raise UserError(f"--int8-search times ONNX Runtime on this CPU, so it serves --target {local} only: "
                        f"drop it for --target {o.target}")
    if o.search_img_size and o.img_size and o.search_img_size != o.img_size:
        raise UserError(f"--search-img-size {o.search_img_size} differs from --img-size {o.img_size} (the graph "
                        "takes only that size): drop --search-img-size")
    if o.engine and o.int8 and not target.engine_int8:
        engine = ", ".join(t.name for t in TARGETS_TABLE if t.engine_int8)
        raise UserError(f"a TensorRT engine needs symmetric INT8: add --target {engine} "
                        f"(the {o.target} target uses asymmetric activations)")
    if o.reduce_range is not None:
        target.reduce_range(o.reduce_range)
