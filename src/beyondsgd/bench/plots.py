"""Training-curve plots: one line per algorithm, the spread over seeds shaded."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _curves(rows: Iterable[Mapping[str, Any]], x: str, y: str) -> dict[str, tuple[np.ndarray, ...]]:
    """Per algorithm: x (mean over seeds), y mean, y min and y max over seeds, aligned by step.

    The band is min-max rather than mean +- std: it stays positive, so it is
    drawn correctly on the log axes used for losses.

    Seeds are aligned by their step; a diverged seed contributes only the points it reached.
    """
    by_alg: dict[str, dict[float, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        xv, yv = float(r[x]), float(r[y])
        if math.isfinite(xv) and math.isfinite(yv):
            by_alg[str(r["algorithm"])][float(r["step"])].append((xv, yv))
    out: dict[str, tuple[np.ndarray, ...]] = {}
    for alg, points in by_alg.items():
        steps = sorted(points)
        xs = np.array([np.mean([p[0] for p in points[s]]) for s in steps])
        ys = np.array([[p[1] for p in points[s]] for s in steps], dtype=object)
        mean = np.array([np.mean(v) for v in ys], dtype=float)
        low = np.array([np.min(v) for v in ys], dtype=float)
        high = np.array([np.max(v) for v in ys], dtype=float)
        out[alg] = (xs, mean, low, high)
    return out


def _spans_decades(values: Sequence[float]) -> bool:
    v = np.asarray([x for x in values if np.isfinite(x) and x > 0])
    return v.size > 1 and v.max() / v.min() > 30


LABELS = {
    "epoch": "epoch",
    "time_s": "training wall time [s] (evaluation excluded)",
    "train_loss": "training loss",
    "test_loss": "test loss",
    "train_accuracy": "training accuracy",
    "test_accuracy": "test accuracy",
}


def plot_metric_grid(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    x: str,
    metrics: Sequence[str] = ("train_loss", "test_loss", "test_accuracy"),
    title: str = "",
    dpi: int = 110,
) -> Path:
    """Save a row of panels, one per metric, against ``x`` (``"epoch"`` or ``"time_s"``).

    Loss axes use a log scale when the values span more than ~1.5 decades.

    Returns:
        The path written.
    """
    import io

    from beyondsgd.bench.io import write_atomic

    plt = _pyplot()
    algs = sorted({str(r["algorithm"]) for r in rows})
    cmap = plt.get_cmap("tab20" if len(algs) > 10 else "tab10")
    colors = {a: cmap(i % cmap.N) for i, a in enumerate(algs)}
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        curves = _curves(rows, x, metric)
        for alg in algs:
            if alg not in curves:
                continue
            xs, mean, low, high = curves[alg]
            ax.plot(xs, mean, label=alg, color=colors[alg], lw=1.6)
            if np.any(high > low):
                ax.fill_between(xs, low, high, color=colors[alg], alpha=0.18, lw=0)
        if "loss" in metric and _spans_decades([float(r[metric]) for r in rows]):
            ax.set_yscale("log")
        ax.set_xlabel(LABELS.get(x, x))
        ax.set_ylabel(LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
        title="algorithm (mean, band: min–max over seeds)",
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return write_atomic(path, buf.getvalue())
