"""Pareto plot of a bench result: p50 latency per image against mean Dice, one panel per size.

Each point is one (model, precision, backend, batch), colored by backend and shaped by
precision, labelled with its model and its speed ratio to the reference row (``x1.62``: 1.62
times as fast; ``ref``: the reference). The Pareto front links the points that no other point
beats on both speed and accuracy. Made to be read at a glance: plain tick numbers (no offset
notation), a Dice axis at least ``MIN_DICE_SPAN`` tall, a log latency axis when the points span
more than ``LOG_SPAN`` times, every point and label inside its axes, the legend below the
panels. Drawn on a bare matplotlib Figure (Agg, no pyplot state) and written atomically as PNG.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from .. import atomic
from ..errors import UserError, require
from .ratios import ratio_text, row_ratio

MIN_DICE_SPAN = 0.02
LOG_SPAN = 10.0
MARKERS = {"fp32": "o", "fp16": "s", "int8": "^"}


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points not dominated by another (lower latency is better, higher Dice is better).

    Args:
        points: (latency ms, Dice) pairs.

    Returns:
        The front, sorted by latency, Dice strictly rising along it.
    """
    front: list[tuple[float, float]] = []
    for latency, dice in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or dice > front[-1][1]:
            front.append((latency, dice))
    return front


def _speed_label(row: dict) -> str:
    if row.get("verdict") == "reference":
        return "ref"
    text = ratio_text(row_ratio(row))
    return "" if text == "-" else "x" + text.split(" ")[0]


def plot_points(result: dict, names: dict[str, str] | None = None) -> dict[int, list[dict]]:
    """Plottable rows (timed and scored) by size: label, latency per image (ms), Dice, status, backend, precision.

    Args:
        result: A ``run_bench`` result.
        names: Shorter point names by row ``path`` (default: the row's ``model`` label).
    """
    by_size: dict[int, list[dict]] = {}
    for r in result["rows"]:
        if r["latency_ms"] and r["mean_dice"] is not None:
            label = (names or {}).get(r["path"], r["model"]) + (f" b{r['batch']}" if r["batch"] > 1 else "")
            speed = _speed_label(r)
            by_size.setdefault(r["size"], []).append(
                {"label": f"{label} ({speed})" if speed else label, "latency": r["latency_ms"]["p50"] / r["batch"],
                 "dice": r["mean_dice"], "status": r["status"], "backend": r["backend"], "precision": r["precision"]})
    return dict(sorted(by_size.items()))


def dice_limits(values: list[float], min_span: float = MIN_DICE_SPAN) -> tuple[float, float]:
    """Y limits around the Dice values: at least ``min_span`` tall, 20% head room, within [0, 1] where possible."""
    lo, hi = min(values), max(values)
    span = max(hi - lo, min_span)
    middle = (lo + hi) / 2
    lo, hi = middle - 0.6 * span, middle + 0.6 * span
    if hi > 1.0:
        lo, hi = lo - (hi - 1.0), 1.0
    if lo < 0.0:
        lo, hi = 0.0, hi - lo
    return lo, hi


def latency_limits(values: list[float]) -> tuple[float, float, bool]:
    """X limits (ms) with room for labels, and whether the axis is logarithmic (points span more than LOG_SPAN)."""
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo > LOG_SPAN:
        return lo / 1.6, hi * 1.6, True
    span = max(hi - lo, 0.1 * hi, 1e-3)
    return max(0.0, lo - 0.3 * span), hi + 0.3 * span, False


def _plain_ticks(ax, log_x: bool) -> None:
    """Tick labels as plain numbers: no offset or scientific notation on either axis."""
    from matplotlib.ticker import FuncFormatter, NullFormatter, ScalarFormatter

    ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    ax.yaxis.get_major_formatter().set_scientific(False)
    if log_x:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        ax.xaxis.get_major_formatter().set_scientific(False)


def _draw_panel(ax, size: int, points: list[dict], colors: dict[str, str]) -> list:
    """Points, labels and Pareto front of one size; returns the label artists (placed later, see ``_place_labels``)."""
    latencies, dices = [p["latency"] for p in points], [p["dice"] for p in points]
    x_lo, x_hi, log_x = latency_limits(latencies)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(*dice_limits(dices))
    _plain_ticks(ax, log_x)
    front = pareto_front(list(zip(latencies, dices)))
    ax.step([f[0] for f in front], [f[1] for f in front], where="post", color="0.5", linewidth=1.2, zorder=1)
    labels = []
    for p in points:
        color = colors[p["backend"]]
        ax.scatter(p["latency"], p["dice"], s=46, marker=MARKERS.get(p["precision"], "D"), zorder=3,
                   facecolors="none" if p["status"] != "ok" else color, edgecolors=color)
        labels.append(ax.annotate(p["label"], (p["latency"], p["dice"]), textcoords="offset points", xytext=(6, 4),
                                  fontsize=7, zorder=4, annotation_clip=False,
                                  arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.6, "shrinkA": 1,
                                              "shrinkB": 4}))
    ax.set_title(f"{size} x {size} px")
    ax.set_xlabel("p50 latency per image (ms)" + (", log scale" if log_x else ""))
    ax.set_ylabel("mean foreground Dice")
    ax.grid(True, which="major", alpha=0.3)
    return labels


# Label positions tried around each point, nearest first: (dx, dy) in points, and the alignment that keeps the text
# on that side of the point.
_DIRECTIONS = ((1, 0.3), (1, -0.3), (-1, 0.3), (-1, -0.3), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))
_RADII = (6, 14, 24, 36, 50, 66)


def _candidates():
    for radius in _RADII:
        for dx, dy in _DIRECTIONS:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top"
            yield (dx * radius, dy * radius), ha, va


def _put(label, offset: tuple[float, float], ha: str, va: str) -> None:
    label.xyann = offset
    label.set_horizontalalignment(ha)
    label.set_verticalalignment(va)


def _text_box(label, renderer):
    """The window extent of a label's text alone (``Annotation.get_window_extent`` adds its leader line)."""
    from matplotlib.text import Text

    label.update_positions(renderer)
    return Text.get_window_extent(label, renderer)


def _overlap(a, b) -> float:
    width, height = min(a.x1, b.x1) - max(a.x0, b.x0), min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


def _place_labels(ax, labels: list, renderer) -> None:
    """Puts each label at the nearest spot around its point that stays inside the axes and clear of the other
    labels and points (the least crowded spot when none is clear); labels away from their point get a thin line."""
    from matplotlib.transforms import Bbox

    frame = ax.get_window_extent(renderer)
    marks = [Bbox.from_bounds(x - 5, y - 5, 10, 10) for x, y in ax.transData.transform([t.xy for t in labels])]
    placed: list = []
    for label in sorted(labels, key=lambda t: (-t.xy[1], t.xy[0])):
        best = None
        for offset, ha, va in _candidates():
            _put(label, offset, ha, va)
            box = _text_box(label, renderer)
            outside = (max(0, frame.x0 - box.x0) + max(0, box.x1 - frame.x1) + max(0, frame.y0 - box.y0)
                       + max(0, box.y1 - frame.y1)) * 1e3
            cost = outside + sum(_overlap(box, other) for other in placed + marks)
            if best is None or cost < best[0]:
                best = (cost, offset, ha, va)
            if cost == 0:
                break
        _put(label, *best[1:])
        label.arrow_patch.set_visible(abs(best[1][0]) + abs(best[1][1]) > 12)
        placed.append(_text_box(label, renderer))


def save_pareto_plot(result: dict, path: str | os.PathLike, names: dict[str, str] | None = None) -> Path:
    """Writes the Pareto plot of ``result`` to ``path`` (PNG); ``names`` as in ``plot_points``.

    Raises:
        UserError: No row was both timed and scored, so there is nothing to plot.
    """
    require("matplotlib", "train")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # a bare Figure renders with Agg; pyplot's global state is not touched
    from matplotlib.lines import Line2D

    by_size = plot_points(result, names)
    if not by_size:
        raise UserError("no row was both timed and scored, so there is no Pareto plot: fix the failed rows first")
    backends = sorted({p["backend"] for points in by_size.values() for p in points})
    colors = {b: f"C{i}" for i, b in enumerate(backends)}
    crowd = max(len(points) for points in by_size.values())  # many points need room for their labels
    figure = Figure(figsize=(min(12.0, 6.5 + 0.12 * crowd) * len(by_size), min(10.0, 5.0 + 0.1 * crowd)),
                    layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(by_size), squeeze=False)[0]
    panels = [(ax, _draw_panel(ax, size, points, colors)) for ax, (size, points) in zip(axes, by_size.items())]
    precisions = sorted({p["precision"] for points in by_size.values() for p in points})
    handles = [Line2D([], [], color=colors[b], marker="o", linestyle="", label=b) for b in backends]
    handles += [Line2D([], [], color="0.3", marker=MARKERS.get(p, "D"), linestyle="", label=p) for p in precisions]
    handles += [Line2D([], [], color="0.5", linewidth=1.2, label="Pareto front"),
                Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="", label="not ok")]
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    env = result["environment"]
    figure.suptitle(f"edgeunet bench: {env['cpu']['model']}, {env.get('threads')} threads; "
                    "(xN) = speed relative to the reference row, ? = no verdict", fontsize=10)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax, labels in panels:
        _place_labels(ax, labels, renderer)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return atomic.write_bytes(path, buffer.getvalue())
