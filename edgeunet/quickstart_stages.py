"""What the 2-D (``edgeunet.quickstart``) and 3-D (``edgeunet.quickstart3d``) demos share.

The settings checks, the two synthetic folders (training and held-out, another seed), the bench
stage and the export's report lines: one piece each, so both demos check, write and report alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .errors import UserError


@dataclass(frozen=True)
class DemoSettings:
    """The settings both demos share, and their checks (``check_settings``) when a demo's settings are made.

    A subclass adds its sizes (with ``prune_ratio``) and names its minimums in ``MINIMUMS``.
    """

    MINIMUMS: ClassVar[dict[str, int]] = {}
    PRUNE_EXAMPLE: ClassVar[str] = "0.5"

    bench_seconds: float = 0.5
    int8_search_seconds: float = 15.0
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        check_settings(self, self.MINIMUMS, self.PRUNE_EXAMPLE)


def check_settings(settings, minimums: dict[str, int], prune_example: str) -> None:
    """UserError naming the flag when a size is below its minimum, the seed is negative, ``prune_ratio`` is not
    in (0, 1) or ``bench_seconds`` / ``int8_search_seconds`` are not positive."""
    for name, low in minimums.items():
        if int(getattr(settings, name)) < low:
            raise UserError(f"--{name.replace('_', '-')} {getattr(settings, name)} must be at least {low}")
    if settings.seed < 0:
        raise UserError(f"--seed {settings.seed} must be 0 or more")
    if not 0 < settings.prune_ratio < 1:
        raise UserError(f"prune_ratio {settings.prune_ratio} must be between 0 and 1, e.g. {prune_example}")
    if not (settings.bench_seconds > 0 and settings.int8_search_seconds > 0):
        raise UserError("bench_seconds and int8_search_seconds must be positive numbers of seconds")


def write_folders(out: Path, write: Callable[[Path, int, int], object], counts: tuple[int, int],
                  seed: int) -> tuple[Path, Path]:
    """``out/data`` (``counts[0]`` samples, ``seed``) and ``out/heldout`` (``counts[1]``, the validation seed of
    ``seed``: samples training never saw), each written by ``write(folder, n, seed)`` unless it exists."""
    from .data.sources import split_seed

    data_dir, heldout_dir = out / "data", out / "heldout"
    for folder, n, folder_seed in ((data_dir, counts[0], seed), (heldout_dir, counts[1], split_seed(seed, "val"))):
        if not (folder / "images").is_dir():
            write(folder, n, folder_seed)
    return data_dir, heldout_dir


def bench_stage(models: Sequence[Path], heldout_dir: Path, sizes: tuple[int, ...], num_images: int,
                settings, out: Path) -> tuple[Path, str]:
    """Runs ``run_bench`` on ``models`` with the held-out samples; writes ``out/bench.json``.

    Returns:
        (path of bench.json, its table as ``format_table`` prints it).
    """
    from .bench import BenchSettings, format_table, run_bench, write_json
    from .env import has_bf16
    from .timing import TimingSettings

    # OpenVINO files also in bfloat16 where the CPU has it: OpenVINO's own choice there, and often the fastest
    bench_settings = BenchSettings(data=str(heldout_dir), num_images=num_images, sizes=sizes,
                                   timing=TimingSettings(min_time=settings.bench_seconds),
                                   openvino_precisions=("f32", "bf16") if has_bf16() else ("f32",))
    bench = run_bench([str(m) for m in models], bench_settings, progress=settings.progress)
    write_json(bench, out / "bench.json")
    return out / "bench.json", format_table(bench, saved=str(out / "bench.json"))


def prune_stage(settings, best: Path, prune_dir: Path, data_dir: Path, at: str, **sizes) -> tuple[dict, str]:
    """``prune_checkpoint`` with the demo's ratio, fine-tuning and seed; ``sizes``: its size arguments (``img_size``
    or ``patch``, ``round_to``, ``lr``). ``at`` names the shape the MACs are counted at (``{}`` for the side).

    Returns:
        (prune report, its ``[3] prune`` line).
    """
    from .prune import prune_checkpoint

    pruned = prune_checkpoint(best, prune_dir, data=str(data_dir), ratio=settings.prune_ratio,
                              finetune_epochs=settings.finetune_epochs, batch_size=settings.batch_size,
                              samples_per_epoch=settings.samples_per_epoch, seed=settings.seed, device="cpu",
                              progress=settings.progress, exist_ok=True, **sizes)
    params, macs, dice = pruned["parameters"], pruned["macs"], pruned["dice"]
    line = (f"[3] prune     ratio {settings.prune_ratio}: {params['before'] / 1e6:.3f} M -> "
            f"{params['after'] / 1e6:.3f} M parameters (-{params['reduction']:.0%}), {macs['before'] / 1e9:.3f} -> "
            f"{macs['after'] / 1e9:.3f} GMACs at {at.format(pruned['img_size'])}; Dice {fmt(dice['before'])} -> "
            f"{fmt(dice['pruned'])} pruned -> {fmt(dice['finetuned'])} fine-tuned")
    return pruned, line


def export_lines(report: dict, heldout_dir: Path, samples: str = "images") -> list[str]:
    """The export's artifacts (size, parity) and its INT8 Dice check on the held-out ``samples``."""
    lines = []
    for art in report["artifacts"]:
        par = art.get("parity") or {}
        ref = "FP32 ONNX" if art.get("precision") == "int8" else "PyTorch"
        agreement = f", argmax agreement with {ref} {par['argmax_agreement']:.4%}" if par else ""
        lines.append(f"{art['file']} ({art['size_bytes'] / 1e6:.2f} MB){agreement}")
    quality = report.get("int8_quality") or {}
    if quality.get("dice_drop") is not None and quality.get("dice_check") in ("passed", "failed"):
        lines.append(f"INT8 Dice {quality['int8']['mean_dice']:.4f} vs FP32 {quality['fp32']['mean_dice']:.4f} "
                     f"(drop {quality['dice_drop']:.4f}) on {quality['count']} held-out {samples} of {heldout_dir} "
                     "that training, calibration and the INT8 search never saw")
    elif quality:
        lines.append(f"INT8 Dice check {quality.get('dice_check')}")
    return lines


def fmt(value) -> str:
    """A Dice with four decimals, or ``n/a``."""
    return "n/a" if value is None else f"{value:.4f}"
