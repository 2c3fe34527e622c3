"""TensorRT engines, built on the device where they will run (engines are tied to a GPU and
a TensorRT version), plus the equivalent ``trtexec`` command for devices without Python TensorRT.

Precision, by TensorRT version:

* TensorRT 11: networks are always strongly typed; precision comes from the ONNX file
  (``model.fp16.onnx``, ``model.int8.onnx``) and builder precision flags are gone.
* TensorRT 10: by default strongly typed too (the recommended mode for Q/DQ files). ``fp16``
  or ``int8`` ask for a weakly typed build with BuilderFlag.FP16 / INT8, where TensorRT may
  pick lower-precision kernels itself; ``int8`` then needs a Q/DQ file (no calibrator here).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from pathlib import Path

from ..errors import MissingExtraError, UserError
from ..runtime.metadata import ModelMetadata
from .engine_build import build_serialized, device_info

logger = logging.getLogger(__name__)

Shape = tuple[int, int, int, int]
DEFAULT_WORKSPACE_MB = 1024
DEFAULT_HW = (256, 512, 1024)  # min, opt, max H = W of the default profile
DEFAULT_BATCH = (1, 1, 4)


def parse_shape(text: str) -> Shape:
    """``"1x1x256x256"`` -> (1, 1, 256, 256), i.e. (B, C, H, W)."""
    parts = text.strip().lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"bad shape {text!r}: write BxCxHxW with positive integers, e.g. 1x1x512x512")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def parse_shapes(text: str) -> tuple[Shape, Shape, Shape]:
    """``"MIN,OPT,MAX"`` (each BxCxHxW) -> three shapes."""
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) != 3:
        raise UserError(f"bad --shapes {text!r}: give min,opt,max, e.g. 1x1x256x256,1x1x512x512,4x1x1024x1024")
    return parse_shape(parts[0]), parse_shape(parts[1]), parse_shape(parts[2])


def check_shapes(shapes: tuple[Shape, Shape, Shape], in_channels: int, size_multiple: int, static_hw: tuple[int, int] | None = None) -> None:
    """Raises UserError naming the fix when the profile does not fit the model."""
    for shape in shapes:
        b, c, h, w = shape
        if c != in_channels:
            raise UserError(f"profile shape {'x'.join(map(str, shape))} has {c} channels but the model takes {in_channels}")
        if h % size_multiple or w % size_multiple:
            raise UserError(f"profile shape {'x'.join(map(str, shape))}: H and W must be multiples of {size_multiple} (the model's size multiple)")
        if static_hw and (h, w) != tuple(static_hw):
            raise UserError(f"the model was exported for {static_hw[0]}x{static_hw[1]} images: use H x W = {static_hw[0]}x{static_hw[1]} in every shape")
    lo, opt, hi = shapes
    if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
        raise UserError("profile shapes must satisfy min <= opt <= max in every dimension: reorder --shapes")


def default_shapes(in_channels: int, size_multiple: int, static_hw: tuple[int, int] | None = None) -> tuple[Shape, Shape, Shape]:
    """Batch 1/1/4 at 256/512/1024 px (rounded up to the size multiple), or the static size."""
    out = []
    for batch, side in zip(DEFAULT_BATCH, DEFAULT_HW):
        side = -(-side // size_multiple) * size_multiple
        h, w = static_hw or (side, side)
        out.append((batch, in_channels, h, w))
    return tuple(out)  # type: ignore[return-value]


def build_mode(trt_major: int, precision: str, fp16: bool = False, int8: bool = False) -> dict:
    """Chooses strong typing and builder flags for a TensorRT major version.

    Args:
        trt_major: TensorRT major version (10, 11, ...).
        precision: Precision of the ONNX file (``fp32``, ``fp16``, ``int8``).
        fp16: Ask for BuilderFlag.FP16 (TensorRT 10 weakly typed build).
        int8: Ask for BuilderFlag.INT8 (TensorRT 10 weakly typed build of a Q/DQ file).

    Returns:
        ``{"strongly_typed": bool, "flags": [BuilderFlag names]}``.
    """
    if trt_major < 10:
        raise UserError(f"TensorRT {trt_major} is too old: install TensorRT 10 or newer (`pip install 'edgeunet[trt]'`)")
    if trt_major >= 11:
        if fp16 or int8:
            raise UserError(
                "TensorRT 11 takes precision from the ONNX file: drop --fp16/--int8 and build from model.fp16.onnx or model.int8.onnx"
            )
        return {"strongly_typed": True, "flags": []}
    if int8 and precision != "int8":
        raise UserError("--int8 needs a Q/DQ model: export one with `edgeunet export CKPT --int8 --target tensorrt` and build from model.int8.onnx")
    flags = (["INT8"] if int8 else []) + (["FP16"] if fp16 or int8 else [])
    return {"strongly_typed": not flags, "flags": flags}


def trtexec_command(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, shapes: tuple[Shape, Shape, Shape], mode: dict,
                    workspace_mb: int = DEFAULT_WORKSPACE_MB, timing_cache: str | os.PathLike | None = None, input_name: str = "images") -> list[str]:
    """The ``trtexec`` argument list that builds the same engine."""
    def fmt(shape: Shape) -> str:
        return f"{input_name}:{'x'.join(map(str, shape))}"

    cmd = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}",
           f"--minShapes={fmt(shapes[0])}", f"--optShapes={fmt(shapes[1])}", f"--maxShapes={fmt(shapes[2])}"]
    cmd += ["--stronglyTyped"] if mode["strongly_typed"] else [f"--{flag.lower()}" for flag in mode["flags"]]
    cmd.append(f"--memPoolSize=workspace:{int(workspace_mb)}M")
    if timing_cache:
        cmd.append(f"--timingCacheFile={timing_cache}")
    return cmd


def read_onnx_facts(onnx_path: Path) -> tuple[ModelMetadata, dict[str, str], tuple[int, int] | None]:
    """Metadata, raw props and static (H, W) (None when dynamic) of an edgeunet ONNX file, via ONNX Runtime."""
    import onnxruntime as ort

    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX file not found: {onnx_path} (export one with `edgeunet export CKPT --out DIR`)")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    props = dict(session.get_modelmeta().custom_metadata_map)
    meta = ModelMetadata.from_props(props, source=str(onnx_path))
    h, w = session.get_inputs()[0].shape[2:]
    return meta, props, (h, w) if isinstance(h, int) and isinstance(w, int) else None


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike | None = None, shapes: str | None = None,
                 workspace_mb: int = DEFAULT_WORKSPACE_MB, timing_cache: str | os.PathLike | None = None,
                 fp16: bool = False, int8: bool = False, dry_run: bool = False, relative: bool = False) -> dict:
    """Builds a TensorRT engine from an edgeunet ONNX file on this machine's GPU.

    Always writes ``<engine>.trtexec.txt`` (the equivalent trtexec command) first, so a device
    without Python TensorRT can build with trtexec; with ``dry_run`` that is all it does.

    Args:
        onnx_path: edgeunet ONNX file (fp32, fp16 or int8).
        engine_path: Output engine; default ``model.<precision>.engine`` next to the ONNX file.
        shapes: ``"MIN,OPT,MAX"`` BxCxHxW profile; default batch 1/1/4 at 256/512/1024 px.
        workspace_mb: Builder workspace limit (MB).
        timing_cache: Timing cache file, read when present and updated after the build.
        fp16: TensorRT 10 weakly typed build with FP16 kernels allowed.
        int8: TensorRT 10 weakly typed build of a Q/DQ file with INT8 (and FP16) allowed.
        dry_run: Only write and return the trtexec command.
        relative: Write bare file names in the trtexec command (run it inside the export folder).

    Returns:
        Dict with ``engine``, ``trtexec`` (command string), ``trtexec_file``, and after a build
        ``sidecar`` (path of the ``<engine>.json`` with GPU, TensorRT version, profile, metadata).
    """
    onnx_path = Path(onnx_path)
    meta, props, static_hw = read_onnx_facts(onnx_path)
    engine_path = Path(engine_path) if engine_path else onnx_path.with_name(f"model.{meta.precision}.engine")
    profile = parse_shapes(shapes) if shapes else default_shapes(meta.in_channels, meta.size_multiple, static_hw)
    check_shapes(profile, meta.in_channels, meta.size_multiple, static_hw)
    if workspace_mb < 1:
        raise UserError(f"--workspace {workspace_mb} MB must be positive (1024 is a good start)")
    try:
        import tensorrt as trt
    except ImportError:
        trt = None
    mode = build_mode(int(trt.__version__.split(".")[0]) if trt else 10, meta.precision, fp16, int8)
    names = (onnx_path.name, engine_path.name) if relative else (onnx_path, engine_path)
    cmd = shlex.join(trtexec_command(*names, profile, mode, workspace_mb, timing_cache, meta.input_name))
    trtexec_file = engine_path.with_name(engine_path.name + ".trtexec.txt")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(trtexec_file, cmd + "\n")
    result = {"engine": str(engine_path), "trtexec": cmd, "trtexec_file": str(trtexec_file), "strongly_typed": mode["strongly_typed"], "flags": mode["flags"]}
    if dry_run:
        return result
    if trt is None:
        raise MissingExtraError(
            "TensorRT is not installed: run `pip install 'edgeunet[trt]'` on the device the engine will run on "
            f"(engines must be built on the target device), or build there with: {cmd}"
        )
    plan = build_serialized(trt, onnx_path, profile, mode, workspace_mb, timing_cache, meta.input_name)
    tmp = engine_path.with_name(f".{engine_path.name}.tmp{os.getpid()}")
    tmp.write_bytes(plan)
    os.replace(tmp, engine_path)
    sidecar = engine_path.with_name(engine_path.name + ".json")
    facts = {"engine": engine_path.name, "onnx": onnx_path.name, "tensorrt_version": trt.__version__, **device_info(),
             "strongly_typed": mode["strongly_typed"], "builder_flags": mode["flags"], "workspace_mb": workspace_mb,
             "profile": {meta.input_name: {"min": list(profile[0]), "opt": list(profile[1]), "max": list(profile[2])}},
             "precision": meta.precision, "metadata": props, "trtexec": cmd}
    _write_text(sidecar, json.dumps(facts, indent=2) + "\n")
    logger.info("built %s (%.1f MB) with TensorRT %s", engine_path, len(plan) / 1e6, trt.__version__)
    return {**result, "sidecar": str(sidecar), "size_bytes": len(plan)}
