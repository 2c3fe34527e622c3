"""The one table of deployment formats: what each file is, who writes it, which runtime opens it.

Every place that names a format reads this table: ``edgeunet export`` (``--formats``, the files it
writes and accepts in its folder, ``--formats auto``), the runtime (which backend opens a file), the
bench, ``describe`` and the CLI help. A new format is one row here, its exporter
(``edgeunet.export.formats.EXPORTERS``) and its backend (``edgeunet.runtime.backends``). Standard
library only: the torch-free runtime imports it.

==============  ====================  ==============  ==========  =========================================
format          files                 backend         extra       made from
==============  ====================  ==============  ==========  =========================================
``onnx``        model[.fp16/.int8]    onnxruntime     (base)      the checkpoint (``edgeunet export``)
``ort``         model[.int8]          onnxruntime     (base)      the ONNX file of the same precision
``tensorrt``    model.<precision>     tensorrt        trt         an ONNX file, on the device (build-engine)
``openvino``    model[.int8] + .bin   openvino        openvino    the FP32 ONNX file (INT8 by NNCF)
``executorch``  model[.int8]          executorch      mobile      the checkpoint
``litert``      model[.int8] + .json  litert          mobile      the checkpoint, at one fixed size
==============  ====================  ==============  ==========  =========================================
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

SIDECAR_SUFFIX = ".json"  # <model file>.json: the metadata of files that cannot hold it (runtime.sidecar)
TRTEXEC_SUFFIX = ".trtexec.txt"  # <engine>.trtexec.txt: the trtexec line that builds the same engine
EXPORT_JSON = "export.json"
STEM = "model"  # every model file export writes is model[.<precision>]<suffix>


@dataclass(frozen=True)
class Format:
    """One deployment format.

    Attributes:
        name: Its ``--formats`` name (``tensorrt``: built by ``--engine`` / ``edgeunet build-engine``).
        title: Its name in sentences ("the LiteRT file").
        suffixes: File suffixes it is read from; export writes the first.
        backend: The runtime backend that opens it (``runtime.backends``).
        extra: The pip extra that installs its libraries ("" for the base install).
        libraries: Precision -> (module, PyPI name) pairs the export needs.
        precisions: Precisions export writes it in.
        made_from: ``checkpoint``, ``fp32 onnx`` (the FP32 ONNX file) or ``onnx`` (the ONNX file of the same
            precision).
        made_by: The command that writes it, for messages.
        companions: Suffixes of files written beside it in place of its own (OpenVINO's ``.bin``).
        sidecar: Its metadata lives in ``<file>.json`` (``runtime.sidecar``).
        accuracy_control: Its INT8 export can keep layers in float until the Dice drop on the search images is
            within ``--max-dice-drop`` (OpenVINO's NNCF).
        fixed_size: It takes one input size (``ExportOptions.fixed_img_size``); the runtime tiles at it.
        fixed_size_with_attention: It takes one input size too when the model has Transformer blocks
            (``attention_levels``): ExecuTorch's XNNPACK partitioner leaves out a conv whose output's dynamic
            size the attention's reshapes read, and such an undelegated INT8 conv cannot even be built.
        verified: How export checks it.
        bench: ``edgeunet bench`` times it.
        auto: What ``--formats auto`` times of it: (precision, OpenVINO inference hint) pairs.
        slow: Its export takes minutes: ``--formats auto`` starts it only within ``--search-time``.
        option: A ``--formats`` name (False: tensorrt, which ``--engine`` builds).
        precision_in_name: ``model.fp32.<suffix>`` rather than ``model.<suffix>`` for FP32.
        also_read_by: Other backends that open its files (OpenVINO reads ONNX).
        help: A few words for the ``--formats`` help.
    """

    name: str
    title: str
    suffixes: tuple[str, ...]
    backend: str
    extra: str
    made_from: str
    made_by: str
    help: str
    libraries: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    precisions: tuple[str, ...] = ("fp32", "int8")
    companions: tuple[str, ...] = ()
    sidecar: bool = False
    accuracy_control: bool = False
    fixed_size: bool = False
    fixed_size_with_attention: bool = False
    verified: str = "through its runtime backend against PyTorch on the verification images: argmax agreement " \
                    "(FP32), Dice drop within --max-dice-drop (INT8)"
    bench: bool = True
    auto: tuple[tuple[str, str | None], ...] = ()
    slow: bool = False
    option: bool = True
    precision_in_name: bool = False
    also_read_by: tuple[str, ...] = ()

    @property
    def suffix(self) -> str:
        """The suffix export writes."""
        return self.suffixes[0]

    def needs(self, precision: str) -> tuple[tuple[str, str], ...]:
        """(module, PyPI name) pairs its export at ``precision`` needs."""
        return self.libraries.get(precision, ())


_MOBILE_INT8 = (("executorch", "executorch"), ("torchao", "torchao"))  # the PT2E XNNPACK quantizer

FORMATS: tuple[Format, ...] = (
    Format("onnx", "ONNX", (".onnx",), "onnxruntime", "", made_from="checkpoint", made_by="`edgeunet export`",
           help="always written", precisions=("fp32", "fp16", "int8"),
           verified="against PyTorch: argmax agreement (FP32 >= 99.99 %, FP16 >= 99.5 %); INT8 by its Dice drop",
           auto=(("fp32", None), ("int8", None)), also_read_by=("openvino",)),
    Format("ort", "ORT-format", (".ort",), "onnxruntime", "", made_from="onnx",
           made_by="`edgeunet export --formats ort`",
           help="ONNX Runtime's mobile builds"),
    Format("tensorrt", "TensorRT engine", (".engine", ".plan", ".trt"), "tensorrt", "trt", made_from="onnx",
           made_by="`edgeunet build-engine` (or `edgeunet export --engine`) on the device", option=False,
           sidecar=True, precision_in_name=True, precisions=("fp32", "fp16", "int8"),
           help="--engine, or build-engine on the device",
           verified="not at export: engines are built on the device; `edgeunet bench` times and scores them"),
    Format("openvino", "OpenVINO", (".xml",), "openvino", "openvino", made_from="fp32 onnx",
           made_by="`edgeunet export --formats openvino`", companions=(".bin",), accuracy_control=True,
           help="OpenVINO IR",
           libraries={"fp32": (("openvino", "openvino"),), "int8": (("openvino", "openvino"), ("nncf", "nncf"))},
           auto=(("fp32", "f32"), ("fp32", "bf16"), ("int8", None))),
    Format("executorch", "ExecuTorch", (".pte",), "executorch", "mobile", made_from="checkpoint",
           made_by="`edgeunet export --formats executorch`", slow=True, fixed_size_with_attention=True,
           help="ExecuTorch with XNNPACK",
           libraries={"fp32": (("executorch", "executorch"),), "int8": _MOBILE_INT8},
           auto=(("int8", None),)),
    Format("litert", "LiteRT", (".tflite",), "litert", "mobile", made_from="checkpoint",
           made_by="`edgeunet export --formats litert`", sidecar=True, fixed_size=True, slow=True,
           help="LiteRT at one size, --fixed-img-size",
           libraries={"fp32": (("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert")),
                      "int8": (("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert"),
                               *_MOBILE_INT8)},
           auto=(("int8", None), ("fp32", None))),
)

BY_NAME: dict[str, Format] = {f.name: f for f in FORMATS}
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in FORMATS if f.option)  # the --formats names
AUTO = "auto"  # --formats auto: time the runtimes installed here, ship the fastest
MODEL_SUFFIXES: tuple[str, ...] = tuple(s for f in FORMATS for s in f.suffixes)  # every model file, table order
ENGINE_SUFFIXES: tuple[str, ...] = BY_NAME["tensorrt"].suffixes


def takes_one_size(fmt: Format, attention: bool) -> bool:
    """Whether ``fmt``'s file takes one input size, for a model with (``attention``) or without Transformer
    blocks."""
    return fmt.fixed_size or (attention and fmt.fixed_size_with_attention)


def format_of(path: str | os.PathLike) -> Format | None:
    """The format of a model file by its suffix (ONNX for ``.onnx``), None for other files."""
    suffix = Path(path).suffix.lower()
    return next((f for f in FORMATS if suffix in f.suffixes), None)


def suffixes(*names: str) -> tuple[str, ...]:
    """The suffixes of the named formats (all formats when none is named), in table order."""
    return tuple(s for f in FORMATS if not names or f.name in names for s in f.suffixes)


def backend_suffixes() -> dict[str, tuple[str, ...]]:
    """Backend -> the suffixes it reads: its own formats first, then those it also reads (OpenVINO: ONNX)."""
    out: dict[str, tuple[str, ...]] = {}
    for f in FORMATS:
        out[f.backend] = out.get(f.backend, ()) + f.suffixes
    for f in FORMATS:
        for backend in f.also_read_by:
            out[backend] = out[backend] + f.suffixes
    return out


def model_file_name(name: str, precision: str = "fp32") -> str:
    """The file export writes for a format at a precision: ``model.onnx``, ``model.int8.xml``, ``model.fp16.engine``."""
    fmt = BY_NAME[name]
    tag = f".{precision}" if precision != "fp32" or fmt.precision_in_name else ""
    return f"{STEM}{tag}{fmt.suffix}"


def artifact_pattern() -> re.Pattern:
    """Names an export writes into its folder: model files, their companions and sidecars, export.json."""
    written = sorted({f.suffix for f in FORMATS} | {c for f in FORMATS for c in f.companions})
    alternatives = "|".join(re.escape(s[1:]) for s in written)
    extras = "|".join(re.escape(s) for s in (SIDECAR_SUFFIX, TRTEXEC_SUFFIX))
    return re.compile(rf"^({re.escape(EXPORT_JSON)}|{STEM}(\.\w+)?\.({alternatives})({extras})?)$")


def formats_help() -> str:
    """The ``--formats`` help: the table's names with their help, then ``auto``."""
    names = ", ".join(f"{f.name} ({f.help})" for f in FORMATS if f.option)
    return (f"files to write, comma-separated: {names}; or {AUTO} (time the runtimes installed here, ship the fastest "
            "within --max-dice-drop)")


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (a module hidden as None counts as missing)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(name: str, precision: str) -> str | None:
    """The ``pip install`` line a format's export at a precision needs here, None when its libraries are installed."""
    fmt = BY_NAME[name]
    absent = [package for module, package in fmt.needs(precision) if not installed(module)]
    if not absent:
        return None
    return f"{', '.join(absent)} not installed: run `pip install 'edgeunet[{fmt.extra}]'`"
