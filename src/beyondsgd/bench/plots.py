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


#: Colours of the compared family's members (tab10 without the greys and browns kept for baselines).
_MEMBER_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:pink", "tab:cyan")
#: Baselines: dark, distinct colours, each with its own dash pattern, the same in every panel.
_BASELINE_STYLES = (
    ("black", (0, (4, 1.5))),
    ("tab:brown", (0, (1, 1))),
    ("tab:olive", (0, (5, 1, 1, 1))),
    ("tab:gray", (0, (2, 2))),
)
_MEMBER_DASHES = ("-", (0, (6, 2)), (0, (3, 1, 1, 1, 1, 1)))


def line_styles(members: Sequence[str], baselines: Sequence[str]) -> dict[str, tuple[str, Any]]:
    """A (colour, line style) pair per algorithm, distinct within one panel.

    Members get solid lines in distinct colours (a dash pattern once the seven
    colours are used up); baselines get dark colours and dashes of their own,
    so a baseline is never mistaken for a member.
    """
    out: dict[str, tuple[str, Any]] = {}
    for i, alg in enumerate(members):
        out[alg] = (_MEMBER_COLORS[i % len(_MEMBER_COLORS)], _MEMBER_DASHES[(i // len(_MEMBER_COLORS)) % 3])
    for i, alg in enumerate(baselines):
        out[alg] = _BASELINE_STYLES[i % len(_BASELINE_STYLES)]
    return out


def plot_family_panels(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    x: str,
    families: Mapping[str, str],
    metrics: Sequence[str] = ("train_loss", "test_accuracy"),
    baseline_family: str = "baseline",
    title: str = "",
    dpi: int = 100,
) -> Path:
    """One row of panels per family, the baselines repeated in each, one column per metric.

    Each algorithm is drawn as its mean over seeds with a min–max band, in a
    colour *and* line style distinct within its panel. ``x="time_s"`` uses a
    log axis (fast and slow methods differ by orders of magnitude; the point at
    t = 0 is left out). Loss axes are logarithmic when they span decades. When
    every algorithm is a baseline (or no family is given), a single row holds them all.

    Args:
        rows: history rows (``algorithm``, ``step``, ``x``, metrics).
        path: the PNG to write (atomically).
        x: ``"epoch"`` or ``"time_s"``.
        families: algorithm -> family.
        metrics: one column each.
        baseline_family: the family repeated in every row.
        title: figure title.
        dpi: resolution.

    Returns:
        The path written.
    """
    import io

    from beyondsgd.bench.io import write_atomic

    plt = _pyplot()
    algs = sorted({str(r["algorithm"]) for r in rows})
    baselines = [a for a in algs if families.get(a) == baseline_family]
    groups: dict[str, list[str]] = defaultdict(list)
    for a in algs:
        if a not in baselines:
            groups[families.get(a) or "other"].append(a)
    panels = sorted(groups.items()) or [(baseline_family, [])]
    curves = {m: _curves(rows, x, m) for m in metrics}
    nrows, ncols = len(panels), len(metrics)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.6 * ncols + 2.2, 3.3 * nrows + 0.6), squeeze=False)
    for row, (family, members) in enumerate(panels):
        styles = line_styles(members, baselines)
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            plotted = 0
            for alg in members + baselines:
                if alg not in curves[metric]:
                    continue
                xs, mean, low, high = curves[metric][alg]
                if x == "time_s":
                    keep = xs > 0
                    xs, mean, low, high = xs[keep], mean[keep], low[keep], high[keep]
                plotted += len(xs)
                color, dash = styles[alg]
                width = 1.4 if alg in baselines else 1.9
                ax.plot(xs, mean, label=alg, color=color, linestyle=dash, lw=width)
                if np.any(high > low):
                    ax.fill_between(xs, low, high, color=color, alpha=0.12, lw=0)
            if x == "time_s" and plotted:  # (a log axis needs a positive time: none if all diverged at once)
                ax.set_xscale("log")
            elif x == "time_s":
                ax.text(
                    0.5,
                    0.5,
                    "no point after t = 0\n(every run stopped at its start)",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    fontsize=9,
                    color="0.4",
                )
            if plotted and "loss" in metric and _spans_decades([float(r[metric]) for r in rows]):
                ax.set_yscale("log")
            ax.set_title(f"{family}" + (" vs baselines" if members and baselines else ""), fontsize=10)
            ax.set_xlabel(LABELS.get(x, x) + (" (log)" if x == "time_s" else ""), fontsize=9)
            ax.set_ylabel(LABELS.get(metric, metric), fontsize=9)
            ax.grid(alpha=0.3, which="both" if x == "time_s" else "major")
        handles, labels = axes[row][0].get_legend_handles_labels()
        axes[row][-1].legend(handles, labels, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize=8)
    fig.suptitle((title + "\n" if title else "") + "mean over seeds, band: min–max; dashed dark lines: baselines")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return write_atomic(path, buf.getvalue())
