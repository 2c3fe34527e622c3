"""``export_model``: checkpoint -> verified ONNX (FP32, FP16, INT8) and TensorRT engine, plus export.json.

Everything is written to a temporary folder next to ``out_dir`` and moved into place only
when every check passed, so a failed export leaves an earlier one untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import MissingExtraError, UserError
from . import verify
from .int8 import CALIB_METHODS, TARGETS
from .onnx import DEFAULT_OPSET, export_onnx, model_metadata, onnx_opset

logger = logging.getLogger(__name__)

# Names export_model writes; any other file in out_dir makes it refuse to replace the folder.
DEFAULT_SEARCH_TIME = 75.0  # s: a first pass over a 5-level U-Net's layer groups on a 2-core CPU
_ARTIFACT = re.compile(r"^(export\.json|model(\.\w+)?\.(onnx|engine)(\.json|\.trtexec\.txt)?)$")


def check_options(int8: bool, engine: bool, calib_size: int, calib_method: str, target: str, max_dice_drop: float) -> None:
    """Raises UserError naming the fix for option combinations that cannot work."""
    if target not in TARGETS:
        raise UserError(f"unknown --target {target!r}: use one of {', '.join(TARGETS)}")
    if calib_method not in CALIB_METHODS:
        raise UserError(f"unknown --calib-method {calib_method!r}: use one of {', '.join(CALIB_METHODS)}")
    if calib_size < 1:
        raise UserError(f"--calib-size {calib_size} must be at least 1 (32 is a good default)")
    if max_dice_drop != max_dice_drop:  # NaN
        raise UserError("--max-dice-drop must be a number such as 0.01")
    if engine and int8 and target != "tensorrt":
        raise UserError("a TensorRT engine needs symmetric INT8: add --target tensorrt (the cpu target uses uint8 activations)")
    if engine:
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            raise MissingExtraError(
                "--engine needs TensorRT: run `pip install 'edgeunet[trt]'` on the device the engine will run on "
                "(engines must be built on the target device), or export without --engine and run `edgeunet build-engine` there"
            ) from None


def search_plan(int8: bool, target: str, int8_search: bool | None, search_time: float, search_size: int | None) -> dict | None:
    """The INT8 search settings (``{"time_s", "size"}``), or None when no search runs; UserError for bad values."""
    if int8_search and target != "cpu":
        raise UserError("--int8-search times ONNX Runtime on this CPU, so it serves --target cpu only: drop it for --target tensorrt")
    if not (search_time > 0):
        raise UserError(f"--search-time {search_time} must be a positive number of seconds (default {DEFAULT_SEARCH_TIME:g})")
    if search_size is not None and search_size < 1:
        raise UserError(f"--search-size {search_size} must be a positive image side in pixels, e.g. 256")
    if not int8 or target != "cpu" or int8_search is False:
        return None
    return {"time_s": float(search_time), "size": search_size}


def check_search_size(size: int, multiple: int, img_size: int | None) -> None:
    """Raises UserError naming valid sizes when the model cannot run at ``size``."""
    if img_size and size != img_size:
        raise UserError(f"--search-size {size} differs from --img-size {img_size} (the graph takes only that size): drop --search-size")
    if size % multiple:
        lower = max(multiple, size // multiple * multiple)
        raise UserError(f"--search-size {size} is not a multiple of {multiple} (this model's size multiple): use {lower} or {lower + multiple}")


def check_out_dir(out_dir: Path) -> None:
    """Refuses to replace a folder holding files an export did not write (e.g. a checkpoint)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file: give a folder")
    foreign = sorted(p.name for p in out_dir.iterdir() if not _ARTIFACT.match(p.name)) if out_dir.is_dir() else []
    if foreign:
        raise UserError(f"--out {out_dir} holds files an export does not write ({', '.join(foreign[:3])}): choose an empty or new folder")


def file_facts(path: Path) -> dict:
    """Size (bytes) and sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"file": path.name, "size_bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def onnx_facts(path: Path, precision: str, parity: dict | None) -> dict:
    import onnx

    opset = onnx_opset(onnx.load(str(path), load_external_data=False))
    return {**file_facts(path), "opset": opset, "precision": precision, "parity": parity}


def toolchain() -> dict:
    """Versions of the tools that made the files."""
    import numpy
    import onnx
    import onnxruntime
    import onnxslim
    import torch

    return {"edgeunet": __version__, "python": sys.version.split()[0], "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "onnxslim": onnxslim.__version__, "numpy": numpy.__version__}


def commit(tmp: Path, out_dir: Path) -> None:
    """Moves the finished ``tmp`` folder to ``out_dir``; an existing ``out_dir`` is swapped out, then removed."""
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except OSError:
        os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def export_model(checkpoint, out_dir, *, int8: bool = False, fp16: bool = False, calib: str = "synthetic", calib_size: int = 32,
                 calib_method: str = "minmax", target: str = "cpu", opset: int = DEFAULT_OPSET, img_size: int | None = None,
                 engine: bool = False, max_dice_drop: float = 0.01, reduce_range: bool | None = None, int8_search: bool | None = None,
                 search_time: float = DEFAULT_SEARCH_TIME, search_size: int | None = None, progress: bool = True) -> dict:
    """Exports a checkpoint to verified deployment files in ``out_dir``.

    Args:
        checkpoint: Checkpoint path (or dict) from ``edgeunet train`` / ``prune``.
        out_dir: Output folder: ``model.onnx``, ``model.fp16.onnx``, ``model.int8.onnx``,
            ``model.<precision>.engine`` (+ ``.json``, ``.trtexec.txt``) and ``export.json``.
        int8: Also write a QDQ INT8 file (static quantization, ONNX Runtime).
        fp16: Also write an FP16 file (float32 inputs and outputs).
        calib: Data folder or ``"synthetic"``: calibration (split ``calib``) and verification (split ``val``) images.
        calib_size: Number of calibration images, and of verification images.
        calib_method: ``minmax``, ``entropy`` or ``percentile``.
        target: INT8 flavour: ``cpu`` (uint8 activations) or ``tensorrt`` (symmetric int8).
        opset: ONNX opset.
        img_size: Static H = W in the graphs; None keeps batch, height and width dynamic.
        engine: Build a TensorRT engine of the lowest precision written (needs TensorRT and a GPU).
        max_dice_drop: Largest allowed FP32 - INT8 mean Dice; more fails the export.
        reduce_range: 7-bit INT8 weights for the cpu target; None decides from this CPU (x86 without VNNI).
        int8_search: Choose what to quantize by measuring candidates on ONNX Runtime on this CPU
            (latency and Dice; see ``int8_search``); None: on for the cpu target. Without it a cpu
            export still times INT8 against FP32 and flags an INT8 file that is slower.
        search_time: Seconds after which the search starts no more candidates.
        search_size: Side (px) timed by the search; None: ``img_size``, else 256.
        progress: Show a progress bar on stderr.

    Returns:
        The export.json content (artifacts with size, sha256, opset, precision and parity;
        calibration; verification scores; toolchain versions).

    Raises:
        ExportCheckError: A parity or Dice check failed; ``out_dir`` is left as it was.
    """
    from ..checkpoint import model_from_checkpoint
    from .stages import Stages

    check_options(int8, engine, calib_size, calib_method, target, max_dice_drop)
    search = search_plan(int8, target, int8_search, search_time, search_size)
    model, ckpt = model_from_checkpoint(checkpoint)
    if search and search["size"]:
        check_search_size(search["size"], model.current_config().size_multiple, img_size)
    out_dir = Path(out_dir).resolve()
    check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with tempfile.TemporaryDirectory(prefix="edgeunet-export-") as work:
            stages = Stages(model, ckpt, tmp, Path(work), progress=progress)
            report = stages.run(int8=int8, fp16=fp16, calib=calib, calib_size=calib_size, calib_method=calib_method, target=target,
                                opset=opset, img_size=img_size, engine=engine, max_dice_drop=max_dice_drop, reduce_range=reduce_range,
                                int8_search=search)
        report["checkpoint"] = str(checkpoint) if not isinstance(checkpoint, dict) else None
        report["artifacts"] = [onnx_facts(tmp / name, prec, par) for name, prec, par in stages.onnx_files] + [
            file_facts(tmp / name) for name in stages.other_files]
        report["toolchain"] = toolchain()
        (tmp / "export.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        commit(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("export written to %s", out_dir)
    return report


__all__ = ["check_options", "export_model", "export_onnx", "model_metadata", "verify"]
