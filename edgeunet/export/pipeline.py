"""``export_model``: checkpoint -> verified ONNX (FP32, FP16, INT8) and TensorRT engine, plus export.json.

Everything is written to a staging folder beside ``out_dir`` (``edgeunet.atomic``) and swapped
into place only when every check passed, so a failed export leaves an earlier one untouched; the
staging folders of killed exports are removed by the next export into the same place.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import MissingExtraError, UserError
from . import verify
from .onnx import export_onnx, model_metadata, onnx_opset
from .options import ExportOptions

logger = logging.getLogger(__name__)

# Names export_model writes; any other file in out_dir makes it refuse to replace the folder.
_ARTIFACT = re.compile(r"^(export\.json|model(\.\w+)?\.(onnx|engine|xml|bin|pte|tflite|ort)(\.json|\.trtexec\.txt)?)$")


def check_environment(options: ExportOptions) -> None:
    """Raises MissingExtraError when a requested step needs a library this machine lacks (TensorRT, a format's)."""
    from .formats_stage import check_libraries

    check_libraries(options)
    if not options.engine:
        return
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "--engine needs TensorRT: run `pip install 'edgeunet[trt]'` on the device the engine will run on "
            "(engines must be built on the target device), or export without --engine and run "
            "`edgeunet build-engine` there"
        ) from None


def check_sizes(options: ExportOptions, multiple: int) -> None:
    """Raises UserError naming valid sizes when the model cannot run at ``img_size`` or ``search_img_size``."""
    from ..sizes import check_multiple

    if options.img_size is not None:
        check_multiple(options.img_size, multiple, "--img-size")
    if options.search_runs and options.search_img_size is not None:
        check_multiple(options.search_img_size, multiple, "--search-img-size")


def check_out_dir(out_dir: Path) -> None:
    """Refuses to replace a folder holding files an export did not write (e.g. a checkpoint)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file: give a folder")
    foreign = sorted(p.name for p in out_dir.iterdir() if not _ARTIFACT.match(p.name)) if out_dir.is_dir() else []
    if foreign:
        raise UserError(f"--out {out_dir} holds files an export does not write ({', '.join(foreign[:3])}): "
                        "choose an empty or new folder")


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

    return {"edgeunet": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "onnxslim": onnxslim.__version__,
            "numpy": numpy.__version__}


def export_model(checkpoint, out_dir, options: ExportOptions | None = None, *, progress: bool = True) -> dict:
    """Exports a checkpoint to verified deployment files in ``out_dir``.

    Args:
        checkpoint: Checkpoint path (or dict) from ``edgeunet train`` / ``prune``.
        out_dir: Output folder: ``model.onnx``, ``model.fp16.onnx``, ``model.int8.onnx``,
            ``model.<precision>.engine`` (+ ``.json``, ``.trtexec.txt``) and ``export.json``.
        options: What to write and check (``ExportOptions``); None: FP32 only, synthetic data.
        progress: Show a progress bar and the INT8 search's lines on stderr.

    Returns:
        The export.json content: artifacts (size, sha256, opset, precision, parity); ``data`` (the file
        stems of the calibration, search and verification images, with counts, sources and seed);
        calibration; verification scores; the INT8 check (``int8_quality.dice_check``); toolchain versions.

    Raises:
        ExportCheckError: A parity or Dice check failed; ``out_dir`` is left as it was.
        UserError: Bad options, data or paths (before anything is written).
    """
    from ..atomic import atomic_dir, write_json
    from ..checkpoint import model_from_checkpoint
    from ..env import provenance
    from .roles import plan_roles
    from .stages import Stages, usable_threads

    options = ExportOptions() if options is None else options
    if not isinstance(options, ExportOptions):
        raise TypeError(f"options must be an ExportOptions, not {type(options).__name__}")
    check_environment(options)
    out_dir = Path(out_dir).absolute()
    check_out_dir(out_dir)
    model, ckpt = model_from_checkpoint(checkpoint)
    plan = plan_roles(options, model.current_config().spatial_dims)
    check_sizes(options, model.current_config().size_multiple)
    with atomic_dir(out_dir) as staging, tempfile.TemporaryDirectory(prefix="edgeunet-export-") as work:
        stages = Stages(model, ckpt, (staging, Path(work)), options, plan, progress=progress)
        report = stages.run()
        report["checkpoint"] = str(checkpoint) if not isinstance(checkpoint, dict) else None
        report["artifacts"] = [onnx_facts(staging / name, prec, par) for name, prec, par in stages.onnx_files] + [
            file_facts(staging / name) for name in stages.other_files] + report.pop("format_artifacts", [])
        from .auto import where_note

        report["where"] = where_note(options)
        report["toolchain"] = toolchain()
        report["provenance"] = provenance(usable_threads())
        write_json(staging / "export.json", report)
    logger.info("export written to %s", out_dir)
    return report


__all__ = ["check_out_dir", "check_sizes", "export_model", "export_onnx", "model_metadata", "verify"]
