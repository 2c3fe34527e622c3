"""What an engine build will do, decided without TensorRT: the options, strong typing and builder
flags for a TensorRT major version, and the equivalent ``trtexec`` command.

Precision, by TensorRT version:

* TensorRT 11: networks are always strongly typed; precision comes from the ONNX file
  (``model.fp16.onnx``, ``model.int8.onnx``) and the builder precision flags are gone.
* TensorRT 10: strongly typed by default too (the recommended mode for Q/DQ files). ``fp16``
  or ``int8`` ask for a weakly typed build with BuilderFlag.FP16 / INT8, where TensorRT may
  pick lower-precision kernels itself (deprecated since TensorRT 10.12); ``int8`` then needs a
  Q/DQ file (there is no calibrator here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import UserError
from ...fields import option
from ...formats import TRTEXEC_SUFFIX
from ...runtime.trt_support import INSTALL, TENSORRT_MIN, TENSORRT_RANGE
from .shapes import Profile, shape_text

DEFAULT_WORKSPACE_MB = 1024


@dataclass(frozen=True)
class EngineOptions:
    """How to build an engine; validated here, once.

    Attributes:
        shapes: ``"MIN,OPT,MAX"`` BxCxHxW (3-D: BxCxDxHxW) profile; None: batch 1/1/4 at 256/512/1024 px
            (3-D models: batch 1 at 64^3/96^3/128^3 voxels).
        workspace_mb: Builder workspace pool limit (MB, >= 1).
        timing_cache: Timing cache file, read when present and updated after the build.
        fp16: TensorRT 10 weakly typed build with FP16 kernels allowed.
        int8: TensorRT 10 weakly typed build of a Q/DQ file with INT8 (and FP16) kernels allowed.
        dry_run: Only write the trtexec command.
        relative: Write bare file names in the trtexec command (to run it inside the export folder).
    """

    shapes: str | None = option(None, "text", "min,opt,max input shapes BxCxHxW, e.g. 1x1x256x256,1x1x512x512,"
                                "4x1x1024x1024 (3-D models: BxCxDxHxW, default 1x1x64x64x64,1x1x96x96x96,"
                                "1x1x128x128x128)", metavar="SHAPES")
    workspace_mb: int = option(DEFAULT_WORKSPACE_MB, "int", "builder workspace limit in MB", flag="--workspace")
    timing_cache: str | os.PathLike | None = option(None, "path", "timing cache file: reused when present, updated "
                                                    "after the build")
    fp16: bool = option(False, "flag", "TensorRT 10 only: weakly typed build allowing FP16 kernels")
    int8: bool = option(False, "flag", "TensorRT 10 only: weakly typed build of a Q/DQ model allowing INT8 kernels")
    dry_run: bool = option(False, "flag", "only write and print the trtexec command")
    relative: bool = False

    def __post_init__(self):
        if isinstance(self.workspace_mb, bool) or not isinstance(self.workspace_mb, int) or self.workspace_mb < 1:
            raise UserError(f"--workspace {self.workspace_mb} MB must be a positive whole number "
                            f"({DEFAULT_WORKSPACE_MB} is a good start)")
        if self.timing_cache is not None and Path(self.timing_cache).is_dir():
            raise UserError(f"--timing-cache {self.timing_cache} is a folder: give a file path, e.g. timing.cache")


@dataclass(frozen=True)
class BuildPlan:
    """One engine build: everything ``engine_build.build_serialized`` needs.

    Attributes:
        onnx_path: The ONNX file.      input_name: Its graph input.
        profile: (min, opt, max) (B, C, H, W) shapes of the input.
        strongly_typed: Create the network with NetworkDefinitionCreationFlag.STRONGLY_TYPED (10.x).
        flags: BuilderFlag names to set (``"FP16"``, ``"INT8"``; TensorRT 10 only).
        workspace_mb: Workspace pool limit (MB).
        timing_cache: Timing cache path or None.
    """

    onnx_path: Path
    input_name: str
    profile: Profile
    strongly_typed: bool
    flags: tuple[str, ...]
    workspace_mb: int
    timing_cache: Path | None


def build_mode(trt_major: int, precision: str, fp16: bool = False, int8: bool = False) -> dict:
    """Chooses strong typing and builder flags for a TensorRT major version.

    Args:
        trt_major: TensorRT major version (10, 11).
        precision: Precision of the ONNX file (``fp32``, ``fp16``, ``int8``).
        fp16: Ask for BuilderFlag.FP16 (TensorRT 10 weakly typed build).
        int8: Ask for BuilderFlag.INT8 (TensorRT 10 weakly typed build of a Q/DQ file).

    Returns:
        ``{"strongly_typed": bool, "flags": [BuilderFlag names]}``.
    """
    if trt_major < TENSORRT_MIN:
        raise UserError(f"TensorRT {trt_major} is too old: install TensorRT 10 or newer "
                        f"({TENSORRT_RANGE}, `{INSTALL}`)")
    if trt_major >= 11:
        if fp16 or int8:
            raise UserError("TensorRT 11 takes precision from the ONNX file: drop --fp16/--int8 and build from "
                            "model.fp16.onnx or model.int8.onnx")
        return {"strongly_typed": True, "flags": []}
    if int8 and precision != "int8":
        raise UserError("--int8 needs a Q/DQ model: export one with `edgeunet export CKPT --int8 --target tensorrt` "
                        "and build from model.int8.onnx")
    flags = (["INT8"] if int8 else []) + (["FP16"] if fp16 or int8 else [])
    return {"strongly_typed": not flags, "flags": flags}


def trtexec_command(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, shapes: Profile, mode: dict,
                    workspace_mb: int = DEFAULT_WORKSPACE_MB, timing_cache: str | os.PathLike | None = None,
                    input_name: str = "images") -> list[str]:
    """The ``trtexec`` argument list that builds the same engine (``--stronglyTyped`` is a no-op in TensorRT 11)."""
    def fmt(shape) -> str:
        return f"{input_name}:{shape_text(shape)}"

    cmd = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}",
           f"--minShapes={fmt(shapes[0])}", f"--optShapes={fmt(shapes[1])}", f"--maxShapes={fmt(shapes[2])}"]
    cmd += ["--stronglyTyped"] if mode["strongly_typed"] else [f"--{flag.lower()}" for flag in mode["flags"]]
    cmd.append(f"--memPoolSize=workspace:{int(workspace_mb)}M")
    if timing_cache:
        cmd.append(f"--timingCacheFile={timing_cache}")
    return cmd


def trtexec_path(engine_path: str | os.PathLike) -> Path:
    """The engine's file name + ``formats.TRTEXEC_SUFFIX``: where its trtexec line is written."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + TRTEXEC_SUFFIX)
