"""Statistics over seeds: mean ± std, confidence intervals, time- and iterations-to-target.

Everything here works on plain numbers or run histories (lists of dicts as
written by :func:`beyondsgd.bench.run_experiment`), so it is easy to test on
hand-made values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Metrics where smaller is better; every other metric is "larger is better".
LOWER_IS_BETTER = ("train_loss", "test_loss", "val_loss", "loss")


def lower_is_better(metric: str) -> bool:
    """True for loss-like metrics (``*_loss``)."""
    return metric in LOWER_IS_BETTER or metric.endswith("_loss")


@dataclass(frozen=True)
class Summary:
    """Mean, sample std and a two-sided Student-t confidence interval of finite values.

    Attributes:
        mean, std: over the ``n`` finite values (std with Bessel's correction; 0 for n = 1).
        n: how many finite values entered.
        ci_low, ci_high: ``mean ∓ t_{(1+level)/2, n-1} · std / sqrt(n)``; NaN when n < 2
            (one seed says nothing about the spread).
        level: the confidence level.
    """

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    level: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def metric_range(metric: str) -> tuple[float, float] | None:
    """The values a metric can take, when bounded: ``(0, 1)`` for accuracies, else ``None``."""
    return (0.0, 1.0) if "accuracy" in metric else None


def summarize_values(
    values: Iterable[float | None], level: float = 0.95, bounds: tuple[float, float] | None = None
) -> Summary:
    """:class:`Summary` of the finite entries of ``values`` (NaN/inf/None are dropped).

    The interval assumes the seeds' results are i.i.d. draws and roughly normal:
    with 3-10 seeds the t quantile (not 1.96) is what keeps its coverage honest.

    Args:
        values: one number per seed.
        level: the confidence level.
        bounds: the range the quantity cannot leave (e.g. ``metric_range("test_accuracy")``):
            the interval is cut to it. Its mean lies in the range, so an interval that holds
            the mean still does after the cut: the coverage is unchanged, and an accuracy's
            interval never claims values above 1.
    """
    if not 0 < level < 1:
        raise ValueError(f"invalid level={level!r}: expected a number in (0, 1)")
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(finite)
    if n == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan, level)
    mean = math.fsum(finite) / n
    if n == 1:
        return Summary(mean, 0.0, 1, math.nan, math.nan, level)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    from scipy import stats as _st

    half = float(_st.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Summary(mean, std, n, low, high, level)


def _reached(value: Any, target: float, lower: bool) -> bool:
    if value is None:
        return False
    value = float(value)
    if not math.isfinite(value):
        return False
    return value <= target if lower else value >= target


def to_target(history: Sequence[Mapping[str, Any]], metric: str, target: float, x_key: str) -> float:
    """``x_key`` at the first log point where ``metric`` reaches ``target`` (NaN if never).

    "Reaches" means ``<= target`` for losses and ``>= target`` otherwise.  With
    ``x_key="time_s"`` this is time-to-target: the runner's ``time_s`` counts
    training time only (evaluation is excluded); with ``x_key="step"`` it is
    iterations-to-target.  The resolution is the run's logging interval.
    """
    lower = lower_is_better(metric)
    for row in history:
        if _reached(row.get(metric), target, lower):
            return float(row[x_key])
    return math.nan


def final_value(history: Sequence[Mapping[str, Any]], metric: str, status: str = "ok") -> float:
    """Last logged value (NaN for a run that did not finish: diverged or failed)."""
    if status != "ok" or not history:
        return math.nan
    v = history[-1].get(metric)
    return math.nan if v is None else float(v)


def best_value(history: Sequence[Mapping[str, Any]], metric: str, status: str = "ok") -> float:
    """Best logged value over the run (min for losses, max otherwise; NaN if none).

    A diverged run still has a best value over the points it logged before diverging.
    """
    vals = [float(r[metric]) for r in history if r.get(metric) is not None and math.isfinite(float(r[metric]))]
    if not vals or status == "failed":
        return math.nan
    return min(vals) if lower_is_better(metric) else max(vals)
