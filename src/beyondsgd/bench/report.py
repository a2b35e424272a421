"""Summaries over seeds and the Markdown report of a comparison: tables with 95% CIs and a verdict.

The statistics are those of :mod:`beyondsgd.bench.evidence` (the one standard):
means with Student-t 95% confidence intervals, the best algorithm and who is
statistically tied with it (Welch's t-test against the best, Holm-corrected),
and each family's best member against the best baseline as a paired difference
over seeds with its CI.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from beyondsgd.bench import evidence
from beyondsgd.bench.runner import RunResult
from beyondsgd.bench.stats import lower_is_better, metric_range, summarize_values, to_target

#: The family whose best member every other family is measured against.
BASELINE_FAMILY = "baseline"


def summary_columns(metric: str = "test_accuracy") -> tuple[str, ...]:
    """Columns of ``summary.csv`` for a report on ``metric``."""
    return (
        "algorithm",
        "family",
        "runs",
        "diverged",
        f"final_{metric}_mean",
        f"final_{metric}_ci_low",
        f"final_{metric}_ci_high",
        f"final_{metric}_std",
        f"best_{metric}_mean",
        f"best_{metric}_ci_low",
        f"best_{metric}_ci_high",
        "final_train_loss_mean",
        "time_to_target_s_mean",
        "time_to_target_s_std",
        "epochs_to_target_mean",
        "epochs_to_target_std",
        "reached_target",
        "train_time_s_mean",
        "vs_best",
        "p_vs_best_holm",
        "batch_size",
        "hyperparams",
    )


SUMMARY_COLUMNS = summary_columns("test_accuracy")


def report_metric(task: str) -> str:
    """The metric a report decides on: test accuracy for classification, test loss for regression."""
    return "test_accuracy" if task == "classification" else "test_loss"


def _by_algorithm(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    groups: dict[str, list[RunResult]] = defaultdict(list)
    for r in results:
        groups[r.experiment.algorithm].append(r)
    for runs in groups.values():
        runs.sort(key=lambda r: r.experiment.seed)
    return groups


def final_by_seed(results: Sequence[RunResult], metric: str = "test_accuracy") -> dict[str, dict[int, float]]:
    """Per algorithm: seed -> final value of ``metric`` (NaN for a diverged run)."""
    return {alg: {r.experiment.seed: r.final(metric) for r in runs} for alg, runs in _by_algorithm(results).items()}


def summarize(
    results: Sequence[RunResult],
    target_accuracy: float,
    families: Mapping[str, str] | None = None,
    metric: str = "test_accuracy",
) -> list[dict[str, Any]]:
    """One row per algorithm: statistics over its seeds, and its standing against the best.

    Diverged runs are counted but never enter the means (their curves stop early).
    Time and epochs to target are over the seeds that reached it (mean and std).
    ``vs_best`` is ``best``, ``tied``, ``different`` or ``undecided`` by
    :func:`beyondsgd.bench.evidence.ties_with_best` on the final ``metric``.

    Args:
        results: the runs.
        target_accuracy: the test accuracy whose time and epochs to reach are reported
            (classification only).
        families: algorithm -> family, for the ``family`` column.
        metric: the metric the rows are about (``test_accuracy`` or ``test_loss``).

    Returns:
        Rows sorted best first (algorithms whose every seed diverged last).
    """
    lower = lower_is_better(metric)
    bounds = metric_range(metric)
    groups = _by_algorithm(results)
    finals = {alg: [r.final(metric) for r in runs] for alg, runs in groups.items()}
    ties = evidence.ties_with_best(finals, higher_is_better=not lower) if finals else None
    rows: list[dict[str, Any]] = []
    for alg, runs in groups.items():
        ok = [r for r in runs if r.status == "ok"]
        final = summarize_values(finals[alg], bounds=bounds)
        pick = min if lower else max
        best = summarize_values(
            (
                pick((h[metric] for h in r.history if math.isfinite(h.get(metric, math.nan))), default=math.nan)
                for r in ok
            ),
            bounds=bounds,
        )
        if metric == "test_accuracy":
            ttt = [to_target(r.history, metric, target_accuracy, "time_s") for r in ok]
            ett = [to_target(r.history, metric, target_accuracy, "epoch") for r in ok]
        else:
            ttt = ett = []
        reached = sum(math.isfinite(t) for t in ttt)
        ttt_s, ett_s = summarize_values(ttt), summarize_values(ett)
        rows.append(
            {
                "algorithm": alg,
                "family": (families or {}).get(alg, ""),
                "runs": len(runs),
                "diverged": len(runs) - len(ok),
                f"final_{metric}_mean": final.mean,
                f"final_{metric}_ci_low": final.ci_low,
                f"final_{metric}_ci_high": final.ci_high,
                f"final_{metric}_std": final.std,
                f"best_{metric}_mean": best.mean,
                f"best_{metric}_ci_low": best.ci_low,
                f"best_{metric}_ci_high": best.ci_high,
                "final_train_loss_mean": summarize_values(r.final("train_loss") for r in ok).mean,
                "time_to_target_s_mean": ttt_s.mean,
                "time_to_target_s_std": ttt_s.std if ttt_s.n > 1 else math.nan,
                "epochs_to_target_mean": ett_s.mean,
                "epochs_to_target_std": ett_s.std if ett_s.n > 1 else math.nan,
                "reached_target": f"{reached}/{len(runs)}" if metric == "test_accuracy" else "",
                "train_time_s_mean": summarize_values(r.history[-1]["time_s"] for r in ok).mean,
                "vs_best": ties.status(alg) if ties else "",
                "p_vs_best_holm": ties.p_adjusted.get(alg, math.nan) if ties else math.nan,
                "batch_size": runs[0].experiment.batch_size,
                "hyperparams": _fmt_hp(runs[0].hyperparams),
            }
        )
    sign = 1.0 if lower else -1.0
    rows.sort(key=lambda r: (_nan_last(sign * float(r[f"final_{metric}_mean"])), r["algorithm"]))
    return rows


def _nan_last(x: float) -> float:
    return math.inf if not math.isfinite(x) else x


def _fmt_hp(hp: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(hp.items())) or "defaults"


def _num(x: Any, fmt: str) -> str:
    return "—" if x is None or not isinstance(x, (int, float)) or not math.isfinite(x) else format(x, fmt)


def _ci(mean: float, lo: float, hi: float, fmt: str) -> str:
    if not math.isfinite(mean):
        return "—"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{format(mean, fmt)} [n<2]"
    return f"{format(mean, fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def _spread(mean: float, std: float, fmt: str) -> str:
    if not math.isfinite(mean):
        return "—"
    return format(mean, fmt) + (f" ± {format(std, fmt)}" if math.isfinite(std) else "")


def _best_index(rows: Sequence[Mapping[str, Any]], key: str, lower: bool) -> set[int]:
    vals = [(i, r[key]) for i, r in enumerate(rows) if isinstance(r[key], (int, float)) and math.isfinite(r[key])]
    if not vals:
        return set()
    best = (min if lower else max)(v for _, v in vals)
    return {i for i, v in vals if v == best}


def markdown_table(rows: Sequence[Mapping[str, Any]], target_accuracy: float, metric: str = "test_accuracy") -> str:
    """The summary as a Markdown table; the best value of each numeric column is bold.

    Means are shown with their 95% t-interval over seeds ``[low, high]``
    (``[n<2]`` when one seed gives no interval); times and epochs to target
    as mean ± std over the seeds that reached it.
    """
    lower = lower_is_better(metric)
    name = metric.replace("_", " ")
    f = ".4f" if metric.endswith("accuracy") else ".4g"
    cols: list[tuple[str, str, Any, bool | None]] = [
        ("algorithm", "algorithm", lambda r: r["algorithm"], None),
        ("vs best", "vs_best", lambda r: r.get("vs_best", ""), None),
        (
            f"final {name} (mean [95% CI])",
            f"final_{metric}_mean",
            lambda r: _ci(r[f"final_{metric}_mean"], r[f"final_{metric}_ci_low"], r[f"final_{metric}_ci_high"], f),
            lower,
        ),
        (
            f"best {name} (mean [95% CI])",
            f"best_{metric}_mean",
            lambda r: _ci(r[f"best_{metric}_mean"], r[f"best_{metric}_ci_low"], r[f"best_{metric}_ci_high"], f),
            lower,
        ),
        ("final train loss", "final_train_loss_mean", lambda r: _num(r["final_train_loss_mean"], ".4g"), True),
    ]
    if metric == "test_accuracy":
        cols += [
            (
                f"time to {target_accuracy:.0%} [s] (mean ± std)",
                "time_to_target_s_mean",
                lambda r: _spread(r["time_to_target_s_mean"], r["time_to_target_s_std"], ".3g"),
                True,
            ),
            (
                "epochs to target (mean ± std)",
                "epochs_to_target_mean",
                lambda r: _spread(r["epochs_to_target_mean"], r["epochs_to_target_std"], ".1f"),
                True,
            ),
            ("reached", "reached_target", lambda r: r["reached_target"], None),
        ]
    cols += [
        ("diverged", "diverged", lambda r: f"{r['diverged']}/{r['runs']}", None),
        ("train time [s]", "train_time_s_mean", lambda r: _num(r["train_time_s_mean"], ".2f"), True),
        ("batch", "batch_size", lambda r: str(r["batch_size"]), None),
        ("hyperparameters", "hyperparams", lambda r: r["hyperparams"], None),
    ]
    bold = {key: _best_index(rows, key, low) for _, key, _, low in cols if low is not None}
    head = "| " + " | ".join(c[0] for c in cols) + " |\n|" + "---|" * len(cols) + "\n"
    lines = []
    for i, r in enumerate(rows):
        cells = []
        for _, key, fmt, _low in cols:
            text = str(fmt(r))
            cells.append(f"**{text}**" if i in bold.get(key, ()) and text != "—" else text)
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def verdict_lines(
    results: Sequence[RunResult], families: Mapping[str, str], metric: str = "test_accuracy"
) -> list[str]:
    """The report's verdict block: the best algorithm, who is tied with it, each family against the baseline.

    Uses :func:`beyondsgd.bench.evidence.ties_with_best` (Welch's t against the
    best, Holm's correction) and :func:`beyondsgd.bench.evidence.paired_difference`
    (same seeds). The rules are printed with the numbers.

    Returns:
        Markdown lines.
    """
    lower = lower_is_better(metric)
    name = metric.replace("_", " ")
    by_seed = final_by_seed(results, metric)
    if not by_seed:
        return ["No finished run: nothing to decide."]
    ties = evidence.ties_with_best({a: list(s.values()) for a, s in by_seed.items()}, higher_is_better=not lower)
    lines = []
    if ties.best is None:
        return ["Every run diverged: no algorithm has a final value, nothing to decide."]
    b = ties.summaries[ties.best]
    f = ".4f" if metric.endswith("accuracy") else ".4g"
    lines.append(
        f"- **Best final {name}: `{ties.best}`**, {_ci(b.mean, b.ci_low, b.ci_high, f)} (mean [95% CI], {b.n} seed(s))."
    )
    if ties.tied:
        tied = ", ".join(
            f"`{a}` ({ties.summaries[a].mean:{f}}, p={ties.p_adjusted[a]:.2g})"
            for a in sorted(ties.tied, key=lambda a: ties.p_adjusted[a], reverse=True)
        )
        lines.append(f"- **Statistically tied with `{ties.best}`** ({len(ties.tied)}): {tied}.")
    else:
        lines.append(f"- Tied with `{ties.best}`: none.")
    if ties.different:
        lines.append(
            f"- Significantly worse than `{ties.best}` ({len(ties.different)}): "
            + ", ".join(f"`{a}`" for a in ties.different)
            + "."
        )
    if ties.undecided:
        lines.append(
            f"- Undecided (fewer than 2 finite seeds, no test possible): {', '.join(f'`{a}`' for a in ties.undecided)}."
        )
    if ties.note:
        lines.append(f"- Note: {ties.note}.")
    if len(ties.summaries) > 1 and (ties.tied or ties.undecided or not ties.decidable):
        lines.append(
            f"- So the data do not single out one winner: `{ties.best}` is best by mean, "
            + (
                "but it cannot be told apart from the algorithms tied with it."
                if ties.tied
                else "but not all were testable."
            )
        )
    elif len(ties.summaries) > 1:
        lines.append(f"- `{ties.best}` is better than every other algorithm compared here.")
    n_min = min((s.n for s in ties.summaries.values() if s.n), default=0)
    if ties.tied and n_min < evidence.MIN_SEEDS:
        lines.append(
            f"- Caution: with {n_min} seed(s) the test has little power: 'tied' means 'not shown to differ', "
            f"not 'equal'; use at least {evidence.MIN_SEEDS} seeds (--seeds) to separate close algorithms."
        )
    lines.append(f"- Test: {ties.rule}")
    lines += family_lines(by_seed, families, metric)
    return lines


def family_lines(
    by_seed: Mapping[str, Mapping[int, float]], families: Mapping[str, str], metric: str = "test_accuracy"
) -> list[str]:
    """Each family's best member minus the best baseline, paired over seeds, with its 95% CI."""
    lower = lower_is_better(metric)
    sign = -1.0 if lower else 1.0

    def mean(alg: str) -> float:
        s = summarize_values(by_seed[alg].values())
        return sign * s.mean if s.n else -math.inf

    baselines = [a for a in by_seed if families.get(a) == BASELINE_FAMILY]
    others = sorted({families.get(a, "") for a in by_seed} - {BASELINE_FAMILY, ""})
    if not baselines or not others:
        return ["- Families against the baseline: not applicable (needs a baseline and another family)."]
    base = max(baselines, key=mean)
    lines = [
        f"- **Each family's best member against the best baseline `{base}`** (difference of final {metric.replace('_', ' ')}, "
        f"member − `{base}`, paired by seed, 95% t-interval; {'negative' if lower else 'positive'} favours the family):"
    ]
    for fam in others:
        members = [a for a in by_seed if families.get(a) == fam]
        top = max(members, key=mean)
        seeds = sorted(set(by_seed[top]) & set(by_seed[base]))
        d = evidence.paired_difference([by_seed[top][s] for s in seeds], [by_seed[base][s] for s in seeds])
        if d.n == 0:
            lines.append(f"  - {fam}: `{top}` — no seed where both finished")
            continue
        if d.n < 2:
            lines.append(f"  - {fam}: `{top}` {d.mean:+.4f} (1 seed: no interval)")
            continue
        excl = d.ci_low > 0 or d.ci_high < 0
        better = (d.mean > 0) != lower
        judgement = ("better" if better else "worse") if excl else "no clear difference (CI contains 0)"
        lines.append(
            f"  - {fam}: `{top}` {d.mean:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}] "
            f"(n={d.n}, paired t p={d.p_value:.2g}): {judgement}"
        )
    return lines
