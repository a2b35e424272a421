"""Performance profiles (Dolan & Moré, 2002) over a set of problems.

For problems ``p`` and algorithms ``s`` with costs ``t[p, s] > 0`` (time or
iterations to reach the problem's target; ``inf`` when the target is never
reached), the performance ratio is ``r[p, s] = t[p, s] / min_s t[p, s]`` and the
profile of algorithm ``s`` is

    rho_s(tau) = |{p : r[p, s] <= tau}| / |P|,

the fraction of problems it solves within a factor ``tau`` of the best
algorithm.  ``rho_s(1)`` is the fraction of problems where ``s`` is (one of) the
fastest; ``rho_s(inf)`` the fraction it solves at all.  A problem no algorithm
solves stays in the denominator (nobody gets credit for it).

As one score per algorithm we report the normalized area under the profile on
``[1, tau_max]`` (``tau_max = 4`` by default):

    area_s = 1/(tau_max - 1) ∫_1^{tau_max} rho_s(tau) dtau
           = mean_p max(0, tau_max - r[p, s]) / (tau_max - 1),

exact because ``rho`` is a step function.  It is 1 for an algorithm that is the
fastest on every problem and 0 for one that is never within ``tau_max`` of the
best.  (AlgoPerf integrates the same kind of profile; its ``tau_max`` and
normalization differ, so scores are not comparable across the two.)

References:
    E. D. Dolan and J. J. Moré, "Benchmarking optimization software with
    performance profiles", Math. Program. 91 (2002), 201-213.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def performance_ratios(costs: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[str], np.ndarray]:
    """Ratios ``r[p, s]`` from ``costs[problem][algorithm]`` (missing or NaN cost = inf).

    Returns:
        ``(problems, algorithms, ratios)`` with ``ratios`` of shape (problems, algorithms).

    Raises:
        ValueError: a cost that is zero or negative (a ratio needs a positive cost).
    """
    problems = sorted(costs)
    algorithms = sorted({a for row in costs.values() for a in row})
    t = np.full((len(problems), len(algorithms)), math.inf)
    for i, p in enumerate(problems):
        for j, a in enumerate(algorithms):
            c = costs[p].get(a)
            if c is None or math.isnan(c):
                continue
            if c <= 0:
                raise ValueError(f"invalid cost {c!r} for problem {p!r}, algorithm {a!r}: expected > 0")
            t[i, j] = c
    best = t.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(np.isfinite(best), t / best, math.inf)
    return problems, algorithms, r


def profile(ratios: np.ndarray, taus: Sequence[float] | np.ndarray) -> np.ndarray:
    """``rho[s, k]``: fraction of problems with ``ratio <= taus[k]``, per algorithm (column)."""
    taus = np.asarray(taus, dtype=float)
    if ratios.shape[0] == 0:
        return np.zeros((ratios.shape[1], taus.size))
    return (ratios[:, :, None] <= taus[None, None, :]).mean(axis=0)


def profile_area(ratios: np.ndarray, tau_max: float = 4.0) -> np.ndarray:
    """Normalized area under each algorithm's profile on ``[1, tau_max]`` (exact; see module doc)."""
    if tau_max <= 1:
        raise ValueError(f"invalid tau_max={tau_max!r}: expected a number > 1")
    if ratios.shape[0] == 0:
        return np.zeros(ratios.shape[1])
    contrib = np.clip(tau_max - np.maximum(ratios, 1.0), 0.0, None)  # inf ratio -> 0
    contrib = np.where(np.isfinite(ratios), contrib, 0.0)
    return contrib.mean(axis=0) / (tau_max - 1)


def plot_profiles(ratios: np.ndarray, algorithms: Sequence[str], path, tau_max: float = 4.0, title: str = ""):
    """Step plot of every algorithm's ``rho(tau)`` on ``[1, tau_max]``, area in the legend."""
    import io

    from beyondsgd.bench.io import write_atomic
    from beyondsgd.bench.plots import _pyplot

    plt = _pyplot()
    taus = np.linspace(1.0, tau_max, 301)
    rho = profile(ratios, taus)
    area = profile_area(ratios, tau_max)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    cmap = plt.get_cmap("tab20" if len(algorithms) > 10 else "tab10")
    order = np.argsort(-area, kind="stable")
    for k, j in enumerate(order):
        ax.step(
            taus,
            rho[j],
            where="post",
            color=cmap(j % cmap.N),
            lw=1.6,
            label=f"{algorithms[j]} (area {area[j]:.2f})",
            ls="-" if k < 10 else "--",
        )
    ax.set_xlim(1, tau_max)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ (cost within a factor τ of the best algorithm)")
    ax.set_ylabel("ρ(τ): fraction of problems")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return write_atomic(path, buf.getvalue())
