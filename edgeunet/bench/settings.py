"""``BenchSettings``: every option of a benchmark run in one frozen object, validated once where it is built.

The ``edgeunet bench`` flags are made from the fields (``edgeunet.cli.options.add_fields``), so a flag's
default, type and help are written here and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import UserError
from ..fields import option
from ..runtime.session import DEFAULT_SPINNING, SPINNING, spinning_mode
from ..timing import TimingSettings

DEVICES = ("auto", "cpu", "cuda")
TORCH = "torch"  # the backend name of .pt checkpoints (edgeunet.bench.torch_backend)


def known_backends() -> tuple[str, ...]:
    """Backend names ``--backends`` accepts: PyTorch, then every backend of ``runtime.backends`` but "auto"."""
    from ..runtime.backends import BACKENDS

    return (TORCH, *(b for b in BACKENDS if b != "auto"))


def _positive_ints(values, what: str, example: str) -> tuple[int, ...]:
    """Sorted unique ints, or UserError naming the flag ``what`` with an example."""
    try:
        ints = [int(v) for v in values if not isinstance(v, bool)]
    except (TypeError, ValueError):
        ints = []
    if not ints or len(ints) != len(values) or any(v < 1 for v in ints):
        raise UserError(f"{what} {values!r}: give positive whole numbers, e.g. {what} {example}")
    return tuple(sorted(set(ints)))


def _set(obj, name: str, value) -> None:
    """Sets a field of a frozen dataclass: normalized values are stored once, in ``__post_init__``."""
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class BenchSettings:
    """What ``run_bench`` measures and how.

    Attributes:
        data: ``"synthetic"`` or a data set folder; the same images score every model.
        num_images: Images for Dice/IoU (synthetic ones are made at the largest size).
        sizes: Square input sides (px) to time, stored sorted and unique.
        batches: Batch sizes to time, stored sorted and unique.
        threads: CPU threads for PyTorch and ONNX Runtime; None: all usable cores.
        device: ``"auto"`` (CUDA where present), ``"cpu"`` or ``"cuda"`` (a UserError where there is no GPU).
        backends: Only models of these backends run (``known_backends()``); None: all.
        reference: Label or path of the model whose rows the speed ratios are taken against;
            None: the first FP32 ONNX Runtime model (else the first model that ran).
        timing: Warm-up, minimum time and rounds of the interleaved timing.
        max_dice_drop: Largest mean Dice loss of an FP16/INT8 model against its FP32 sibling.
        spinning: When ONNX Runtime's intra-op threads busy-wait (``runtime.session.SPINNING``): ``"run"``
            (default, as the runtime ships) spins within a call and stops when it returns, so the rows,
            open side by side and timed round-robin, do not steal each other's cores; ``"always"``
            (ONNX Runtime's default) keeps idle threads spinning after a call, which steals the next
            row's cores; ``"off"`` never spins.
        openvino_precisions: The inference precisions each OpenVINO file is timed in, one row each
            (``INFERENCE_PRECISION_HINT``: ``f32``, ``bf16``, ``f16``); ``f32`` computes as verified.
        memory: Measure each CPU row's ``peak_rss_mb``: the peak RSS of a fresh process that opens the file
            with its runtime and runs it at the row's shape (``memory.process_peak_rss_mb``); False: None.
    """

    data: str = option("synthetic", "data", "DIR with images/ and masks/ (val/ when split), or 'synthetic'")
    num_images: int = option(16, "count", "images for Dice/IoU, the same for every model", aliases=("--n-images",))
    sizes: tuple[int, ...] = option((256,), "sizes", "square input sides to time, e.g. 256,512", flag="--img-size",
                                    metavar="PX[,PX...]", aliases=("--sizes",))
    batches: tuple[int, ...] = option((1,), "sizes", "batch sizes to time, e.g. 1,8", flag="--batch-size",
                                      aliases=("--batch",))
    threads: int | None = option(None, "count", "CPU threads for PyTorch and ONNX Runtime (default: all usable cores)")
    device: str = option("auto", "choice", "PyTorch / ONNX Runtime device; cuda without a GPU is an error",
                         choices=DEVICES)
    backends: tuple[str, ...] | None = option(None, "names", "only these backends, e.g. torch,onnxruntime (default "
                                              "all)", metavar="BACKENDS")
    reference: str | None = option(None, "text", "label or path of the model the speed ratios are taken against "
                                   "(default: the first FP32 ONNX model)", metavar="MODEL")
    timing: TimingSettings = field(default_factory=TimingSettings)
    max_dice_drop: float = option(0.01, "number", "largest allowed mean Dice loss vs the baseline and vs the FP32 "
                                  "sibling")
    spinning: str = option(DEFAULT_SPINNING, "choice", "when ONNX Runtime's intra-op threads busy-wait: run (as the "
                           "runtime ships: within a call, stopping when it returns), always (ONNX Runtime's default, "
                           "also between calls: idle threads steal the next row's cores; a bare --spinning means this) "
                           "or off", choices=SPINNING, const="always")
    openvino_precisions: tuple[str, ...] = option(("f32",), "names", "time each OpenVINO file in these inference "
                                                  "precisions, a row each: f32, bf16, f16 (f32 computes as verified; "
                                                  "bf16 is OpenVINO's own choice on CPUs that have it)",
                                                  flag="--openvino-precision")
    memory: bool = option(True, "switch", "measure each row's memory: the peak RSS of a fresh process that opens the "
                          "file with its runtime and runs it at the row's shape (a second or more per row; CPU rows)")

    def __post_init__(self):
        _set(self, "data", os.fspath(self.data))
        _set(self, "sizes", _positive_ints(self.sizes, "--img-size", "256,512"))
        _set(self, "batches", _positive_ints(self.batches, "--batch-size", "1,8"))
        if isinstance(self.num_images, bool) or int(self.num_images) < 1:
            raise UserError(f"--num-images {self.num_images}: score on at least 1 image (default 16)")
        _set(self, "num_images", int(self.num_images))
        if self.threads is not None and int(self.threads) < 1:
            raise UserError(f"--threads {self.threads}: use 1 or more (default: all usable cores)")
        _set(self, "threads", None if self.threads is None else int(self.threads))
        if self.device not in DEVICES:
            raise UserError(f"device {self.device!r}: use auto, cpu or cuda")
        if self.backends is not None:
            _set(self, "backends", tuple(dict.fromkeys(self.backends)))
            unknown = sorted(set(self.backends) - set(known_backends()))
            if unknown or not self.backends:
                raise UserError(f"unknown backend(s) {', '.join(unknown) or '(none given)'}: "
                                f"use some of {', '.join(known_backends())}")
        if self.reference is not None and not str(self.reference).strip():
            raise UserError("--reference is empty: give a model label or path from the command line")
        _set(self, "memory", bool(self.memory))
        if not isinstance(self.timing, TimingSettings):
            raise UserError(f"timing must be a TimingSettings, got {type(self.timing).__name__}")
        if not float(self.max_dice_drop) >= 0:
            raise UserError(f"--max-dice-drop {self.max_dice_drop} is negative: give a Dice difference such as 0.01")
        _set(self, "max_dice_drop", float(self.max_dice_drop))
        _set(self, "spinning", spinning_mode(self.spinning))
        from ..runtime.backend_openvino import PRECISIONS

        _set(self, "openvino_precisions", tuple(dict.fromkeys(self.openvino_precisions)))
        unknown = sorted(set(self.openvino_precisions) - set(PRECISIONS))
        if unknown or not self.openvino_precisions:
            raise UserError(f"--openvino-precision {','.join(unknown) or '(none given)'}: use some of "
                            f"{', '.join(PRECISIONS)}, e.g. f32,bf16")

    def to_dict(self) -> dict:
        """JSON-able settings as a result records them (timing flattened: warmup, min_time, min_iters, max_time)."""
        return {"data": self.data, "num_images": self.num_images, "sizes": list(self.sizes),
                "batches": list(self.batches),
                "threads": self.threads, "device": self.device,
                "backends": list(self.backends) if self.backends else list(known_backends()),
                "reference": self.reference, "warmup": self.timing.warmup, "min_time": self.timing.min_time,
                "min_iters": self.timing.min_rounds, "max_time": self.timing.max_time,
                "max_dice_drop": self.max_dice_drop, "spinning": self.spinning,
                "openvino_precisions": list(self.openvino_precisions), "memory": self.memory}
