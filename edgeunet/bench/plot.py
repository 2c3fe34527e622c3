"""Pareto plot of a bench result: p50 latency per image against mean Dice, one panel per size.

Each point is one (model, precision, backend, batch); the Pareto front links the points that
no other point beats on both speed and accuracy. Drawn on a bare matplotlib Figure, which
renders with Agg (no display, no pyplot state), and written atomically as PNG.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..errors import require
from .report import write_atomic


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


def plot_points(result: dict) -> dict[int, list[dict]]:
    """Plottable rows (timed and scored) by size: label, latency per image (ms), Dice, status."""
    by_size: dict[int, list[dict]] = {}
    for r in result["rows"]:
        if r["latency_ms"] and r["mean_dice"] is not None:
            label = f"{r['model']} {r['precision']} {r['backend']}" + (f" b{r['batch']}" if r["batch"] > 1 else "")
            by_size.setdefault(r["size"], []).append(
                {"label": label, "latency": r["latency_ms"]["p50"] / r["batch"], "dice": r["mean_dice"], "status": r["status"]})
    return dict(sorted(by_size.items()))


def save_pareto_plot(result: dict, path: str | os.PathLike) -> Path:
    """Writes the Pareto plot of ``result`` to ``path`` (PNG).

    Raises:
        UserError: No row was both timed and scored, so there is nothing to plot.
    """
    from ..errors import UserError

    require("matplotlib", "train")
    from matplotlib.figure import Figure  # a bare Figure renders with Agg; pyplot's global state is not touched

    by_size = plot_points(result)
    if not by_size:
        raise UserError("no row was both timed and scored, so there is no Pareto plot: fix the failed rows first")
    figure = Figure(figsize=(6.5 * len(by_size), 5), layout="constrained")
    axes = figure.subplots(1, len(by_size), squeeze=False)[0]
    for ax, (size, points) in zip(axes, by_size.items()):
        for p in points:
            hollow = p["status"] != "ok"
            ax.scatter(p["latency"], p["dice"], s=40, facecolors="none" if hollow else None, edgecolors="C3" if hollow else None)
            ax.annotate(p["label"], (p["latency"], p["dice"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        front = pareto_front([(p["latency"], p["dice"]) for p in points])
        ax.step([f[0] for f in front], [f[1] for f in front], where="post", color="C1", linewidth=1.5, marker="o",
                markersize=11, markerfacecolor="none", label="Pareto front")
        latencies = [p["latency"] for p in points]
        if min(latencies) > 0 and max(latencies) / min(latencies) > 20:
            ax.set_xscale("log")
        ax.set_title(f"{size} x {size} px")
        ax.set_xlabel("p50 latency per image (ms)")
        ax.set_ylabel("mean foreground Dice")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    figure.suptitle(f"edgeunet bench: {result['environment']['cpu']['model']}, {result['environment'].get('threads')} threads", fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return write_atomic(path, buffer.getvalue())
