"""Checks of FP16/INT8 models against their FP32 sibling: the same model config, in full precision.

The sibling of a reduced-precision model is, in order of preference, the FP32 model of the
same config in the same folder with the same backend, any FP32 ONNX model of that config,
then any FP32 model of that config (a ``.pt`` checkpoint). Its accuracy is the reference for
the Dice gate. Its timing on the same backend (e.g. ``model.onnx`` for ``model.int8.onnx``),
at the same size and batch, gives the row's ``vs_fp32`` ratio, taken round by round
(``ratios.pair_ratio``), and the "slower than fp32" note (quantization that does not pay off on
this CPU, e.g. without VNNI) when that ratio is clearly below 1; a ratio too noisy for a verdict
says so instead.
"""

from __future__ import annotations

from pathlib import Path

from .ratios import pair_ratio

REDUCED = ("fp16", "bf16", "int8")
# Slower by less than this is not worth a note, even when the interval is clear of 1.
NOTE_MIN_RATIO = 1.05


def _sibling_rank(row: dict, candidate: dict) -> tuple[int, int]:
    same_folder = Path(candidate["path"]).parent == Path(row["path"]).parent
    backend = 0 if candidate["backend"] == row["backend"] else 1 if candidate["backend"] == "onnxruntime" else 2
    return (0 if same_folder else 1, backend)


def _fp32_models(rows: list[dict], group: str) -> list[dict]:
    """One row per FP32 model of ``group`` that was scored (accuracy is the same in all its rows)."""
    seen, out = set(), []
    for r in rows:
        if (r.get("_group") == group and r["precision"] == "fp32" and r["mean_dice"] is not None
                and r["path"] not in seen):
            seen.add(r["path"])
            out.append(r)
    return out


def _dice_gate(row: dict, reference: dict, max_dice_drop: float) -> None:
    drop = reference["mean_dice"] - row["mean_dice"]
    if drop > max_dice_drop and row["status"] == "ok":
        row["status"] = "accuracy-gate"
        row["reason"] = (f"mean Dice {row['mean_dice']:.4f} is {drop:.4f} below fp32 {reference['model']} "
                         f"({reference['mean_dice']:.4f}; max drop {max_dice_drop:g})")


def _add_note(row: dict, note: str) -> None:
    row["note"] = f"{row['note']}; {note}" if row.get("note") else note


def _speed_check(row: dict, rows: list[dict], candidates: list[dict]) -> None:
    same_backend = [c for c in candidates if c["backend"] == row["backend"]]
    if not same_backend or not row.get("latency_ms"):
        return
    sibling = min(same_backend, key=lambda c: _sibling_rank(row, c))
    match = next((r for r in rows if r["path"] == sibling["path"] and r["size"] == row["size"]
                  and r["batch"] == row["batch"] and r.get("latency_ms")), None)
    ratio = pair_ratio(match, row) if match else None
    if ratio is None:
        return
    row["vs_fp32"] = {"model": match["model"], **ratio}
    slower_by = 1.0 / ratio["ratio"]
    if ratio["rounds"] and ratio["noisy"]:
        _add_note(row, f"{row['precision']} vs fp32: no verdict, timings too scattered (machine busy)")
    elif ratio["verdict"] in ("slower", "no verdict") and slower_by > NOTE_MIN_RATIO:
        _add_note(row, f"{row['precision']} slower than fp32 x{slower_by:.2f}")


def apply_sibling_checks(rows: list[dict], max_dice_drop: float) -> None:
    """Sets ``accuracy-gate`` statuses, ``vs_fp32`` ratios and notes in place; drops the private ``_group`` keys.

    Args:
        rows: Result rows; each scored row carries ``_group`` (its model config as JSON).
        max_dice_drop: Largest allowed mean Dice loss against the FP32 sibling.
    """
    for row in rows:
        group = row.get("_group")
        if row["precision"] not in REDUCED or not group or group == "{}":
            continue
        candidates = [c for c in _fp32_models(rows, group) if c["path"] != row["path"]]
        if not candidates:
            continue
        reference = min(candidates, key=lambda c: _sibling_rank(row, c))
        if row["mean_dice"] is not None:
            _dice_gate(row, reference, max_dice_drop)
        _speed_check(row, rows, candidates)
    for row in rows:
        row.pop("_group", None)
