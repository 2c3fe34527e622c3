"""A run's record of its epochs: RUN_DIR/metrics.jsonl (every figure), results.csv (one row per epoch, as
Ultralytics writes it) and results.png (loss and per-class Dice per epoch), all written atomically.

``metrics.jsonl`` rows keep ``epoch`` as the 0-based index they always had; ``results.csv``, the
per-epoch line and checkpoints count completed epochs (1-based), as a user reads "epoch 3/10".
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path

from ..atomic import atomic_path, write_text
from ..errors import require

logger = logging.getLogger(__name__)


class History:
    """RUN_DIR/metrics.jsonl and results.csv, rewritten whole after every epoch.

    Args:
        out: The run folder.
        class_names: Names of the classes, for the per-class columns.
        keep: On ``--resume``, the number of completed epochs whose rows are kept; None starts afresh.
    """

    def __init__(self, out: Path, class_names: list[str], keep: int | None = None):
        self.out, self.class_names = Path(out), list(class_names)
        path = self.out / "metrics.jsonl"
        lines = path.read_text().splitlines() if keep is not None and path.exists() else []
        rows = [json.loads(line) for line in lines if line.strip()]
        self.rows = [row for row in rows if keep is not None and row["epoch"] < keep]
        self._write()

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        write_text(self.out / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in self.rows))
        write_text(self.out / "results.csv", results_csv(self.rows, self.class_names))

    def plot(self) -> Path | None:
        """RUN_DIR/results.png (None when there is no epoch to draw)."""
        if not self.rows:
            return None
        return plot_results(self.rows, self.class_names, self.out / "results.png")


def results_csv(rows: list[dict], class_names: list[str]) -> str:
    """One line per epoch: epoch (1-based), train_loss, val_mean_dice, val_mean_iou, val_dice_<class>..., lr, time_s."""
    header = ["epoch", "train_loss", "val_mean_dice", "val_mean_iou",
              *[f"val_dice_{name}" for name in class_names], "lr", "time_s"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        dice = list(row.get("val_dice") or []) + [None] * len(class_names)
        values = [row["epoch"] + 1, row["train_loss"], row.get("val_mean_dice"), row.get("val_mean_iou"),
                  *dice[: len(class_names)], row.get("lr"), row.get("time_s")]
        writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in values])
    return buffer.getvalue()


def epoch_line(row: dict, epochs: int) -> str:
    """``epoch 3/10  loss 0.4123  val Dice 0.8123  12.3 s`` for one metrics.jsonl row."""
    dice = row.get("val_mean_dice")
    dice_text = "n/a" if dice is None else f"{dice:.4f}"
    return (f"epoch {row['epoch'] + 1}/{epochs}  loss {row['train_loss']:.4f}  val Dice {dice_text}  "
            f"{row['time_s']:.1f} s")


def plot_results(rows: list[dict], class_names: list[str], path: str | Path) -> Path:
    """Draws training loss and per-class validation Dice per epoch into ``path`` (PNG, matplotlib's Agg)."""
    require("matplotlib", "train")
    from matplotlib.figure import Figure  # a bare Figure renders with Agg; pyplot's global state is not touched

    epochs = [row["epoch"] + 1 for row in rows]
    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    loss_axes, dice_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [row["train_loss"] for row in rows], marker="o", label="train loss")
    loss_axes.set(xlabel="epoch", ylabel="loss", title="training loss")
    for index, name in enumerate(class_names):
        values = [_at(row.get("val_dice"), index) for row in rows]
        dice_axes.plot(epochs, values, marker=".", label=name)
    dice_axes.plot(epochs, [_nan(row.get("val_mean_dice")) for row in rows], color="black", linewidth=2,
                   label="mean (foreground)")
    dice_axes.set(xlabel="epoch", ylabel="Dice", title="validation Dice", ylim=(0, 1))
    for axes in (loss_axes, dice_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
        axes.xaxis.get_major_locator().set_params(integer=True)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


def _nan(value) -> float:
    return math.nan if value is None else float(value)


def _at(values, index: int) -> float:
    return _nan(values[index]) if values and index < len(values) else math.nan
