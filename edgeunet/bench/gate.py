"""Regression gate: compare a bench result with an earlier one (its ``--json`` file).

Rows are matched by (model, precision, backend, size, batch). A matched row regresses when
its p50 latency grew by more than ``max_slowdown`` times, when its speed ratio to the same
reference model (taken round by round within each run, so it survives a busier or slower
machine) fell by more than ``max_slowdown`` times, when its mean Dice fell by more than
``max_dice_drop``, or when it ran before and fails now. A slowdown of a row whose timings were
too scattered for a verdict says so, so that a busy machine is not mistaken for a regression.
Rows present on one side only are reported by ``unmatched_rows`` but are not regressions.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..errors import MissingFileError, UserError

logger = logging.getLogger(__name__)

RAN = ("ok", "accuracy-gate")


def check_gate_settings(max_slowdown: float, max_dice_drop: float) -> None:
    """Raises UserError naming the fix for impossible gate limits."""
    if max_slowdown <= 0:
        raise UserError(f"--max-slowdown {max_slowdown} must be positive: e.g. 1.10 allows 10 % slower")
    if max_dice_drop < 0:
        raise UserError(f"--max-dice-drop {max_dice_drop} is negative: give a Dice difference such as 0.01")


def row_key(row: dict) -> tuple:
    return (row["model"], row["precision"], row["backend"], int(row["size"]), int(row["batch"]))


def _key_text(key: tuple) -> str:
    return f"{key[0]} {key[1]} {key[2]} {key[3]}px batch {key[4]}"


def load_baseline(path: str | os.PathLike) -> dict:
    """Reads an earlier ``edgeunet bench --json`` result.

    Raises:
        MissingFileError, UserError: naming the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"baseline not found: {path} (write one with `edgeunet bench ... --json {path.name}`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"baseline {path} is not JSON ({exc}): "
                        "give the --json file of an earlier `edgeunet bench`") from None
    rows = data.get("rows") if isinstance(data, dict) else None
    keys = {"model", "precision", "backend", "size", "batch"}
    if not isinstance(rows, list) or not all(isinstance(r, dict) and keys <= r.keys() for r in rows):
        raise UserError(f"baseline {path} has no bench rows: give the --json file of an earlier `edgeunet bench`")
    return data


def unmatched_rows(result: dict, baseline: dict) -> list[str]:
    """One line per row found only in the new result or only in the baseline."""
    new, old = {row_key(r) for r in result["rows"]}, {row_key(r) for r in baseline["rows"]}
    lines = [f"new row (not in baseline): {_key_text(k)}" for k in sorted(new - old)]
    return lines + [f"missing row (in baseline only): {_key_text(k)}" for k in sorted(old - new)]


NOISY_HINT = " (timings too scattered for a verdict: rerun on an idle machine to confirm)"


def _ratio_regression(row: dict, before: dict, max_slowdown: float) -> str | None:
    """The row lost speed against the same reference model, round by round in each run."""
    now, then = row.get("ratio"), before.get("ratio")
    if not now or not then or row.get("verdict") == "reference" or row.get("reference") != before.get("reference"):
        return None
    if then / now <= max_slowdown:
        return None
    hint = NOISY_HINT if row.get("noisy") else ""
    return (f"slower against {row['reference']}: x{now:.2f} its speed vs x{then:.2f} in the baseline "
            f"(lost x{then / now:.2f} > x{max_slowdown:g}){hint}")


def _row_regressions(row: dict, before: dict, max_slowdown: float, max_dice_drop: float) -> list[str]:
    where = _key_text(row_key(row))
    if before.get("status") in RAN and row["status"] not in RAN:
        return [f"{where}: ran in the baseline, now {row['status']}: {row['reason']}"]
    out = []
    now, then = (row.get("latency_ms") or {}).get("p50"), (before.get("latency_ms") or {}).get("p50")
    if now and then and now / then > max_slowdown:
        hint = NOISY_HINT if row.get("noisy") else ""
        out.append(f"{where}: slower, p50 {now:.3f} ms vs {then:.3f} ms in the baseline "
                   f"(x{now / then:.2f} > x{max_slowdown:g}){hint}")
    relative = _ratio_regression(row, before, max_slowdown)
    if relative:
        out.append(f"{where}: {relative}")
    dice, dice_before = row.get("mean_dice"), before.get("mean_dice")
    if dice is not None and dice_before is not None and dice_before - dice > max_dice_drop:
        out.append(f"{where}: mean Dice {dice:.4f} vs {dice_before:.4f} in the baseline "
                   f"(-{dice_before - dice:.4f} > {max_dice_drop:g})")
    return out


def compare_to_baseline(result: dict, baseline: dict, max_slowdown: float = 1.10,
                        max_dice_drop: float = 0.01) -> list[str]:
    """One line per regression of ``result`` against ``baseline``; empty when it passes.

    Args:
        result: A ``run_bench`` result.
        baseline: An earlier result (``load_baseline``).
        max_slowdown: Largest allowed p50 ratio new / baseline (1.10 = 10 % slower), and largest allowed loss of
            speed relative to the reference row.
        max_dice_drop: Largest allowed mean Dice loss.
    """
    check_gate_settings(max_slowdown, max_dice_drop)
    before = {row_key(r): r for r in baseline["rows"]}
    regressions = []
    for row in result["rows"]:
        if row_key(row) in before:
            regressions += _row_regressions(row, before[row_key(row)], max_slowdown, max_dice_drop)
    for line in unmatched_rows(result, baseline):
        logger.info("%s", line)
    return regressions
