"""``ExportReport``: what one export wrote and measured, filled in step by step; ``to_dict`` is export.json.

Each step of ``pipeline.export_model`` sets its own fields (``verification``, ``int8_quality``,
``auto``, ``engine`` ...) and adds the files it wrote as ``ArtifactFacts``; sections of steps that did
not run are left out of export.json.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from .onnx import onnx_opset
from .options import ExportOptions


@dataclass
class ArtifactFacts:
    """One file of the export (an ``artifacts`` entry of export.json).

    Attributes:
        file: Its name in the export folder.
        size_bytes: Its size (format files: with their companions, e.g. OpenVINO's weights file).
        sha256: Hex digest of the file itself.
        details: The rest of its record, in export.json order: ``opset``, ``precision``, ``parity`` (ONNX files);
            ``format``, ``precision``, ``parity``, ``dice_check`` ... (format files); nothing (engine companions).
    """

    file: str
    size_bytes: int
    sha256: str
    details: dict = field(default_factory=dict)

    @property
    def format(self) -> str:
        return self.details.get("format", "onnx")

    @property
    def precision(self) -> str | None:
        return self.details.get("precision")

    def to_dict(self) -> dict:
        return {"file": self.file, "size_bytes": self.size_bytes, "sha256": self.sha256, **self.details}


def file_facts(path: Path, **details) -> ArtifactFacts:
    """Size (bytes) and sha256 of a file, with ``details`` for its record."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return ArtifactFacts(path.name, path.stat().st_size, digest.hexdigest(), details)


def onnx_facts(path: Path, precision: str, parity: dict | None) -> ArtifactFacts:
    """The record of an ONNX file: size, sha256, opset, precision and its parity figures."""
    import onnx

    opset = onnx_opset(onnx.load(str(path), load_external_data=False))
    return file_facts(path, opset=opset, precision=precision, parity=parity)


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


@dataclass
class ExportReport:
    """The export.json of one export, as the steps fill it in.

    Attributes:
        options: The options of the export (``options``, ``opset``, ``img_size``).
        data: The ``data`` section (``RolePlan.to_dict``).
        checkpoint: The checkpoint path (None when given as a dict).
        precisions: Precisions of the ONNX files written (fp32, then fp16, int8).
        artifacts: Every file written, in the order written.
        verification: FP32 (and FP16) parity with PyTorch on the verification images.
        calibration, int8_quality: The INT8 file's calibration and its Dice check (``--int8``).
        int8_search, int8_speed: The INT8 search's record and INT8 vs FP32 latency on this CPU.
        formats, auto, shipped: The ``--formats`` step (``auto``: the comparison and the file shipped).
        engine: The TensorRT build (``--engine``).
        where, toolchain, provenance: Where the files were checked, tool versions, machine facts.
    """

    options: ExportOptions
    data: dict
    checkpoint: str | None = None
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    artifacts: list[ArtifactFacts] = field(default_factory=list)
    verification: dict = field(default_factory=dict)
    calibration: dict | None = None
    int8_quality: dict | None = None
    int8_search: dict | None = None
    int8_speed: dict | None = None
    formats: list[str] | None = None
    auto: dict | None = None
    shipped: str | None = None
    engine: dict | None = None
    where: str = ""
    toolchain: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def add(self, artifact: ArtifactFacts) -> None:
        self.artifacts.append(artifact)

    def to_dict(self) -> dict:
        """The export.json content."""
        out = {"precisions": list(self.precisions), "opset": self.options.opset, "img_size": self.options.img_size,
               "options": self.options.to_dict(), "data": self.data, "verification": self.verification}
        if self.calibration is not None:
            out["calibration"] = self.calibration
            out["int8_quality"] = self.int8_quality
        if self.int8_search is not None:
            out["int8_search"] = self.int8_search
        if self.int8_speed is not None:
            out["int8_speed"] = self.int8_speed
            out["int8_faster_than_fp32"] = self.int8_speed["speedup"] > 1.0
        if self.formats is not None:
            out["formats"] = list(self.formats)
        if self.auto is not None:
            out["auto"] = self.auto
            out["shipped"] = self.shipped
        if self.engine is not None:
            out["engine"] = self.engine
        out.update(checkpoint=self.checkpoint, artifacts=[a.to_dict() for a in self.artifacts], where=self.where,
                   toolchain=self.toolchain, provenance=self.provenance)
        return out
