"""``--target``: where the files will run, and everything that decides, in one table.

==========  ==============  ===================  ===========  ============  ===================================
target      activations     weights              timed here   INT8 search   other formats
==========  ==============  ===================  ===========  ============  ===================================
``cpu``     uint8 (asym.)   int8 per-channel,    yes          on            as this machine runs them
                            7-bit on x86 w/o VNNI
``arm``     int8 (asym.)    int8 per-channel     no           off           ORT format in ARM's layout; auto
                                                                            skips OpenVINO
``tensorrt`` int8 (sym.)    int8 per-channel     no           off           Q/DQ only on Conv inputs; engines
==========  ==============  ===================  ===========  ============  ===================================

* ``cpu``: ONNX Runtime's CPU kernels run u8s8 fastest; ``reduce_range`` (7-bit weights) on x86 CPUs
  without VNNI, where 8-bit products can saturate the 16-bit intermediate sums of the non-VNNI kernels.
* ``arm``: s8s8 is the fast path of ONNX Runtime and XNNPACK on ARM (dot-product instructions).
* ``tensorrt``: TensorRT's explicit quantization takes symmetric int8 only (zero points 0). Q/DQ sit on
  the inputs of every Conv and not on its output, so TensorRT fuses DQ -> Conv -> ReLU -> Q into one
  int8 kernel.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..formats import AUTO

FLAVOUR_KEY = "int8_flavour"  # metadata_props key of an INT8 file: the --target it was written for


@dataclass(frozen=True)
class Target:
    """One ``--target``.

    Attributes:
        name: The ``--target`` value.
        help: Its words in the ``--target`` help.
        activation_type: ``QUInt8`` or ``QInt8`` (ONNX Runtime's QuantType names).
        activation_symmetric: Zero points 0 for activations.
        no_output_quantization: Op types whose outputs get no Q/DQ.
        reduce_range_applies: 7-bit weights may be chosen (x86 CPUs without VNNI); else always off.
        local: This machine is the target: INT8 is timed here and the INT8 search may run (on by default).
        engine_int8: INT8 files TensorRT engines can be built from (symmetric).
        ort_platform: ORT format's ``target_platform`` (None: this machine's).
        auto_skips: Formats ``--formats auto`` does not consider for this target.
        auto_skip_reason: Why, in words.
    """

    name: str
    help: str
    activation_type: str
    activation_symmetric: bool = False
    no_output_quantization: tuple[str, ...] = ()
    reduce_range_applies: bool = False
    local: bool = False
    engine_int8: bool = False
    ort_platform: str | None = None
    auto_skips: tuple[str, ...] = ()
    auto_skip_reason: str = ""
    per_channel: bool = True

    def quant_settings(self, reduce_range: bool | None = None) -> dict:
        """The ``quantize_static`` options of this target: ``activation_type`` / ``weight_type`` (QuantType
        names), ``per_channel``, ``reduce_range`` (None: decided for this CPU) and ``extra_options``."""
        extra: dict = {"WeightSymmetric": True}
        if self.activation_symmetric:
            extra = {"ActivationSymmetric": True, **extra}
        if self.no_output_quantization:
            extra["OpTypesToExcludeOutputQuantization"] = list(self.no_output_quantization)
        return {"activation_type": self.activation_type, "weight_type": "QInt8", "per_channel": self.per_channel,
                "reduce_range": self.reduce_range(reduce_range), "extra_options": extra}

    def reduce_range(self, wanted: bool | None = None) -> bool:
        """The one place ``reduce_range`` is decided: None means on for a target where it applies when this is an
        x86 CPU without VNNI; asking for it where it does not apply is a UserError."""
        if not self.reduce_range_applies:
            if wanted:
                raise UserError(f"reduce_range does not apply to --target {self.name} (7-bit weights work around x86 "
                                "CPUs without VNNI; this target uses full 8-bit ranges): drop it")
            return False
        return cpu_lacks_vnni() if wanted is None else bool(wanted)


TARGETS_TABLE: tuple[Target, ...] = (
    Target("cpu", "cpu (this machine: uint8 activations, INT8 timed here)", "QUInt8", reduce_range_applies=True,
           local=True),
    Target("arm", "arm (phones and ARM boards: int8 activations, the fast path of ONNX Runtime and XNNPACK on ARM, "
                  "ORT-format files for ARM; verified here, not timed)", "QInt8", ort_platform="arm",
           auto_skips=("openvino",), auto_skip_reason="phones and ARM boards run ONNX Runtime, ExecuTorch or LiteRT "
                                                      "files"),
    # Q/DQ only on the inputs of Conv (TensorRT's placement advice): no Q/DQ between Conv and ReLU.
    Target("tensorrt", "tensorrt (symmetric int8 for TensorRT engines)", "QInt8", activation_symmetric=True,
           no_output_quantization=("Conv", "ConvTranspose"), engine_int8=True),
)
TARGETS: tuple[str, ...] = tuple(t.name for t in TARGETS_TABLE)
_BY_NAME = {t.name: t for t in TARGETS_TABLE}


def target_named(name: str) -> Target:
    """The row of a ``--target`` value; UserError naming the valid ones for an unknown one."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UserError(f"unknown --target {name!r}: use one of {', '.join(TARGETS)}") from None


def target_help() -> str:
    """The ``--target`` help, from the table."""
    return "where the files will run: " + ", ".join(t.help for t in TARGETS_TABLE[:-1]) + \
        f" or {TARGETS_TABLE[-1].help}"


def cpu_lacks_vnni(machine: str | None = None, cpuinfo: str | None = None) -> bool:
    """True on x86 CPUs without an 8-bit dot-product instruction (AVX512-VNNI or AVX-VNNI).

    Args:
        machine: ``platform.machine()`` value; read from this host when None.
        cpuinfo: Text of ``/proc/cpuinfo``; read from this host when None.
    """
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False  # ARM and others: no 16-bit saturation issue in ORT's int8 kernels
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return True  # unknown x86 CPU: the safe choice
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return not ({"avx512_vnni", "avx_vnni"} & flags)


def resolve_reduce_range(target: str, reduce_range: bool | None = None) -> bool:
    """``reduce_range`` for a ``--target`` value (see ``Target.reduce_range``)."""
    return target_named(target).reduce_range(reduce_range)


def quant_settings(target: str, reduce_range: bool | None = None) -> dict:
    """The ``quantize_static`` options for a ``--target`` value (see ``Target.quant_settings``)."""
    return target_named(target).quant_settings(reduce_range)


def where_note(options) -> str:
    """Where the files of an export (``ExportOptions``) were verified and timed, for the console and export.json."""
    target = options.target_row
    timed = AUTO in options.formats or (options.int8 and target.local)
    if target.local:
        return "verified and timed on this machine" if timed else "verified on this machine"
    return (f"written for --target {options.target}: verified here, " +
            ("but timed on this CPU only" if timed else "not timed here") +
            "; time them on the device with `edgeunet bench`")
