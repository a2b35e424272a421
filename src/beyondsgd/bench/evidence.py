"""The one evidence standard: confidence intervals, paired tests, Holm's correction, ties and verdicts.

Every headline comparison of a reproduction (and the compare report's tie verdict) is decided
here, from plain numbers, by rules written down as module constants so that the rule can be
printed next to every verdict it produced:

* :func:`mean_ci` -- mean with a Student-t confidence interval (delegates to
  :func:`beyondsgd.bench.stats.summarize_values`, the single implementation).
* :func:`ratio_ci` -- geometric mean of paired ratios (e.g. step times timed in turn) with its
  Student-t interval on the log scale.
* :func:`holm` -- Holm's step-down adjusted p-values (family-wise error control).
* :func:`ties_with_best` -- which algorithms are statistically tied with the best one
  (Welch's t-test of each against the best by mean, Holm-corrected) -> :class:`TieVerdict`.
* :func:`paired_difference` -- same seeds, same data order: mean difference, t interval,
  paired t-test p-value and Cohen's d_z -> :class:`PairedDifference`.
* :func:`verdict` -- holds / holds partly / does not hold / inconclusive for one claim,
  by :data:`VERDICT_RULE`; :func:`combine_verdicts` for a claim made of several parts.

All functions work on hand-made numbers, so they are tested without training anything.

References:
    S. Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6 (1979).
    B. L. Welch, "The generalization of 'Student's' problem when several different population
    variances are involved", Biometrika 34 (1947).
    J. Cohen, "Statistical Power Analysis for the Behavioral Sciences", 2nd ed. (1988), d_z for
    paired designs.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from beyondsgd.bench.stats import Summary, summarize_values

#: The four verdict words, in the order used by reports.
VERDICTS = ("holds", "holds partly", "does not hold", "inconclusive")

#: Fewest paired seeds a headline comparison needs before :func:`verdict` decides anything.
MIN_SEEDS = 5

#: Significance level of every test here (two-sided); confidence intervals use level 1 - ALPHA.
ALPHA = 0.05


def verdict_rule(min_seeds: int = 5, alpha: float = 0.05) -> str:
    """The text of the rule :func:`verdict` applies with these settings (print it next to every verdict)."""
    return (
        "Verdict rule (beyondsgd.bench.evidence): the claim is 'A beats B by at least delta' "
        "(delta = the smallest difference that matters, stated with the claim). With d = A - B per seed "
        "(paired: same seeds, same data order; sign flipped when lower is better), a two-sided paired t-test "
        "(the exact sign test, p = 2 * 2^-n, when every d is the same non-zero value) "
        f"(p Holm-adjusted when several claims are tested together) and the {1 - alpha:.0%} t-interval [lo, hi] "
        f"of mean(d): n < {min_seeds} seeds -> inconclusive (too few seeds); "
        f"p < {alpha:g} and mean(d) >= delta > 0 -> holds; "
        f"p < {alpha:g} and 0 < mean(d) < delta -> holds partly (a real effect, smaller than delta); "
        f"p < {alpha:g} and mean(d) < 0 -> does not hold (the opposite is significant); "
        f"p >= {alpha:g} and hi < delta -> does not hold (the interval excludes an effect of size delta); "
        f"p >= {alpha:g} and hi >= delta -> inconclusive (no significant effect, too little power to exclude delta)."
    )


#: The rule :func:`verdict` applies with the default settings, verbatim.
VERDICT_RULE = verdict_rule(MIN_SEEDS, ALPHA)

#: How several part-claims combine into one verdict (:func:`combine_verdicts`).
COMBINE_RULE = (
    "Combined verdict: all parts hold -> holds; all parts do not hold -> does not hold; "
    "some hold (fully or partly) and the rest do not hold or are inconclusive -> holds partly; "
    "no part holds and at least one is inconclusive -> inconclusive."
)

#: The rule :func:`ties_with_best` applies, verbatim.
TIE_RULE = (
    "Tie rule (beyondsgd.bench.evidence): the best algorithm is the one with the best mean; every other "
    "algorithm is compared with it by Welch's two-sided t-test, p-values Holm-adjusted over those comparisons; "
    f"adjusted p >= {ALPHA} -> tied with the best, < {ALPHA} -> different; an algorithm with fewer than 2 "
    "finite values (or a best with fewer than 2) cannot be called tied or different (undecided)."
)


def mean_ci(values: Iterable[float | None], level: float = 0.95, bounds: tuple[float, float] | None = None) -> Summary:
    """Mean with a two-sided Student-t confidence interval of the finite entries of ``values``.

    Args:
        values: one number per seed; NaN/inf/None are dropped (a diverged run is no number).
        level: confidence level in (0, 1).
        bounds: the range the quantity cannot leave (``(0, 1)`` for an accuracy): the interval
            is cut to it, which keeps its coverage.

    Returns:
        :class:`beyondsgd.bench.stats.Summary` (``ci_low``/``ci_high`` are NaN for fewer than 2 values).

    References:
        :func:`beyondsgd.bench.stats.summarize_values` (the one implementation).
    """
    return summarize_values(values, level, bounds)


def ratio_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Geometric mean of the paired ratios ``a_i / b_i`` and its two-sided Student-t interval.

    The interval is :func:`mean_ci` of ``log(a_i / b_i)``, mapped back with ``exp``: the
    right scale for ratios of positive quantities such as step times measured in turn.

    Args:
        a, b: positive numbers, paired by position (same length).
        level: confidence level in (0, 1).

    Returns:
        ``(ratio, low, high)``; ``low`` and ``high`` are NaN for fewer than 2 pairs.
    """
    if len(a) != len(b):
        raise ValueError(f"ratio_ci: a and b must pair up, got {len(a)} and {len(b)} values")
    s = mean_ci([math.log(x / y) for x, y in zip(a, b)], level)
    return math.exp(s.mean), math.exp(s.ci_low), math.exp(s.ci_high)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order of ``pvalues``.

    With the raw p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted value of the
    i-th smallest is ``max_{j <= i} min(1, (m - j + 1) p_(j))``.  Rejecting where the adjusted
    value is below alpha controls the family-wise error rate at alpha (the same numbers as
    ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``).

    Args:
        pvalues: raw p-values in [0, 1]; NaN entries stay NaN and do not count in m.

    Returns:
        Adjusted p-values, same length and order.

    Raises:
        ValueError: a p-value outside [0, 1].

    References:
        S. Holm (1979), Scand. J. Statist. 6, 65-70.
    """
    ps = [float(p) for p in pvalues]
    for i, p in enumerate(ps):
        if not math.isnan(p) and not 0.0 <= p <= 1.0:
            raise ValueError(f"invalid pvalues[{i}]={p!r}: expected a probability in [0, 1] (or NaN)")
    order = sorted((i for i, p in enumerate(ps) if not math.isnan(p)), key=lambda i: ps[i])
    m = len(order)
    out = [math.nan] * len(ps)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def _finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


#: Relative size of float rounding below which a spread counts as none (a few ulps of the values).
_ROUNDING = 64 * sys.float_info.epsilon


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test of equal means (NaN with fewer than 2 values on a side).

    Two samples without any spread (up to float rounding) give 1.0 when their means are
    equal and otherwise the exact two-sided permutation p-value, ``2 / C(na + nb, na)`` for
    ``na = nb`` and ``1 / C(na + nb, na)`` otherwise (the t statistic is 0/0 or x/0 there;
    with 2 + 2 seeds that is 1/3, not 0).
    """
    a, b = _finite(a), _finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    sa, sb = summarize_values(a), summarize_values(b)
    se2 = sa.std**2 / sa.n + sb.std**2 / sb.n
    scale = max(abs(v) for v in (*a, *b))
    if max(a) - min(a) <= _ROUNDING * scale and max(b) - min(b) <= _ROUNDING * scale:
        # No spread on either side (up to rounding): the t statistic is 0/0 or x/0. The exact
        # permutation test is not: of the C(na + nb, na) ways to label the pooled values, one puts all
        # of a's value on a's side, and with na = nb its mirror image is as extreme, so the two-sided
        # p is 1 / C (2 / C for na = nb: 2 + 2 seeds give 1/3, not the p = 0 a t-test would claim).
        if abs(sa.mean - sb.mean) <= _ROUNDING * scale:
            return 1.0
        return min(1.0, (2.0 if sa.n == sb.n else 1.0) / math.comb(sa.n + sb.n, sa.n))
    from scipy import stats as _st

    va, vb = sa.std**2 / sa.n, sb.std**2 / sb.n
    t = (sa.mean - sb.mean) / math.sqrt(se2)
    df = se2**2 / (va**2 / (sa.n - 1) + vb**2 / (sb.n - 1))  # Welch-Satterthwaite
    return float(2 * _st.t.sf(abs(t), df))


@dataclass(frozen=True)
class TieVerdict:
    """Which algorithms are tied with the best one (:func:`ties_with_best`).

    Attributes:
        best: name of the best algorithm by mean (None when no algorithm has a finite value).
        tied: algorithms not distinguishable from the best (adjusted p >= alpha), best excluded.
        different: algorithms significantly worse than the best.
        undecided: algorithms that cannot be called tied or different (fewer than 2 values).
        p_raw, p_adjusted: Welch p-value against the best, raw and Holm-adjusted.
        summaries: mean/CI per algorithm.
        decidable: False when nothing at all could be tested (e.g. every algorithm has < 2 seeds).
        note: a one-line human explanation (why nothing is decidable, if so).
        rule: :data:`TIE_RULE`.
    """

    best: str | None
    tied: tuple[str, ...]
    different: tuple[str, ...]
    undecided: tuple[str, ...]
    p_raw: dict[str, float]
    p_adjusted: dict[str, float]
    summaries: dict[str, Summary]
    decidable: bool
    note: str
    rule: str = field(default=TIE_RULE)

    def status(self, name: str) -> str:
        """``"best"``, ``"tied"``, ``"different"`` or ``"undecided"`` for one algorithm."""
        if name == self.best:
            return "best"
        if name in self.tied:
            return "tied"
        if name in self.different:
            return "different"
        if name in self.undecided:
            return "undecided"
        raise KeyError(f"unknown algorithm {name!r}: expected one of {sorted(self.summaries)}")


def ties_with_best(
    samples: Mapping[str, Sequence[float | None]], higher_is_better: bool = True, alpha: float = ALPHA
) -> TieVerdict:
    """Which algorithms are statistically tied with the best one, by :data:`TIE_RULE`.

    Args:
        samples: algorithm name -> one value per seed (non-finite values are dropped).
        higher_is_better: True for accuracies, False for losses.
        alpha: family-wise significance level of the Holm-corrected comparisons.

    Returns:
        :class:`TieVerdict`.

    Raises:
        ValueError: empty ``samples`` or alpha outside (0, 1).

    References:
        Welch (1947); Holm (1979).
    """
    if not samples:
        raise ValueError("invalid samples={}: expected at least one algorithm with values")
    if not 0 < alpha < 1:
        raise ValueError(f"invalid alpha={alpha!r}: expected a number in (0, 1)")
    clean = {k: _finite(v) for k, v in samples.items()}
    summaries = {k: summarize_values(v, 1 - alpha) for k, v in clean.items()}
    with_values = [k for k, s in summaries.items() if s.n > 0]
    if not with_values:
        return TieVerdict(None, (), (), tuple(clean), {}, {}, summaries, False, "no algorithm has a finite value")
    sign = 1.0 if higher_is_better else -1.0
    best = max(with_values, key=lambda k: sign * summaries[k].mean)
    others = [k for k in clean if k != best]
    raw = {k: welch_p(clean[k], clean[best]) for k in others}
    names = [k for k in others if not math.isnan(raw[k])]
    adj_list = holm([raw[k] for k in names])
    adjusted = {k: math.nan for k in others}
    adjusted.update(dict(zip(names, adj_list, strict=True)))
    tied = tuple(k for k in names if adjusted[k] >= alpha)
    different = tuple(k for k in names if adjusted[k] < alpha)
    undecided = tuple(k for k in others if math.isnan(raw[k]))
    decidable = bool(names) or not others
    if summaries[best].n < 2 and others:
        note = f"the best ({best}) has fewer than 2 seeds: nothing can be called tied or different"
    elif undecided:
        note = f"fewer than 2 seeds for {', '.join(undecided)}: those cannot be called tied or different"
    else:
        note = ""
    return TieVerdict(best, tied, different, undecided, raw, adjusted, summaries, decidable, note)


@dataclass(frozen=True)
class PairedDifference:
    """Paired comparison of A and B on the same seeds (:func:`paired_difference`).

    Attributes:
        mean: mean of d = a - b over the n pairs where both are finite.
        std: sample std of d.
        n: number of pairs.
        ci_low, ci_high: two-sided t-interval of mean(d) at ``level`` (NaN for n < 2).
        p_value: two-sided paired t-test of mean(d) = 0 (NaN for n < 2); when every pair differs by the
            same non-zero amount, the exact two-sided sign test ``2 * 2^-n``.
        d_z: Cohen's d_z = mean(d) / std(d) (inf-signed when std = 0 and mean != 0, NaN for n < 2).
        level: confidence level.
    """

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    p_value: float
    d_z: float
    level: float

    def flipped(self) -> PairedDifference:
        """The same comparison as B - A."""
        return PairedDifference(
            -self.mean, self.std, self.n, -self.ci_high, -self.ci_low, self.p_value, -self.d_z, self.level
        )

    def describe(self, unit: str = "") -> str:
        """``"+0.012 [0.004, 0.020] (n=5, paired t p=0.012, d_z=1.9)"``."""
        return (
            f"{self.mean:+.4g}{unit} [{self.ci_low:.4g}, {self.ci_high:.4g}] "
            f"(n={self.n}, paired t p={self.p_value:.3g}, d_z={self.d_z:.2g})"
        )


def paired_difference(a: Sequence[float | None], b: Sequence[float | None], level: float = 0.95) -> PairedDifference:
    """Paired comparison of ``a`` and ``b`` (entry i of both comes from seed i).

    Pairs where either value is not finite are dropped (both entries).

    Args:
        a, b: one value per seed, same length and same seed order.
        level: confidence level of the interval.

    Returns:
        :class:`PairedDifference` of d = a - b.

    Raises:
        ValueError: different lengths, or level outside (0, 1).

    References:
        Student's paired t-test; Cohen (1988) for d_z.
    """
    if len(a) != len(b):
        raise ValueError(f"invalid a, b: expected the same number of seeds, got {len(a)} and {len(b)}")
    if not 0 < level < 1:
        raise ValueError(f"invalid level={level!r}: expected a number in (0, 1)")
    d = []
    scale = 0.0  # the largest value compared: the rounding of every difference is below scale * eps
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            continue
        x, y = float(x), float(y)
        if math.isfinite(x) and math.isfinite(y):
            d.append(x - y)
            scale = max(scale, abs(x), abs(y))
    s = summarize_values(d, level)
    if s.n < 2:
        return PairedDifference(s.mean, s.std, s.n, math.nan, math.nan, math.nan, math.nan, level)
    if max(d) - min(d) <= _ROUNDING * scale:
        # (Equal differences up to float rounding: 0.9722 - 0.9667 is not bit-equal in every pair, and a
        # spread of 1e-17 would give a t statistic of 1e14 and p ~ 1e-15.)
        s = replace(s, std=0.0, ci_low=s.mean, ci_high=s.mean)
        # Every pair differs by the same amount (common with accuracies on a finite test set). The
        # t statistic is undefined; the exact sign test is not: all n signs agree with probability
        # 2 * 2^-n under no effect (n = 2: 0.5, not the p = 0 a degenerate t-test would claim).
        none = abs(s.mean) <= _ROUNDING * scale
        p = 1.0 if none else min(1.0, 2.0 * 0.5**s.n)
        dz = 0.0 if none else math.copysign(math.inf, s.mean)
    else:
        from scipy import stats as _st

        t = s.mean / (s.std / math.sqrt(s.n))
        p = float(2 * _st.t.sf(abs(t), s.n - 1))
        dz = s.mean / s.std
    return PairedDifference(s.mean, s.std, s.n, s.ci_low, s.ci_high, p, dz, level)


@dataclass(frozen=True)
class Verdict:
    """A verdict with the numbers and the rule that produced it.

    Attributes:
        word: one of :data:`VERDICTS`.
        reason: which clause of the rule fired, with the numbers.
        diff: the paired difference (oriented so that positive supports the claim).
        delta: smallest difference that matters.
        p_used: the p-value the rule used (Holm-adjusted if one was given).
        rule: the text of the rule with the settings used (:func:`verdict_rule`).
    """

    word: str
    reason: str
    diff: PairedDifference | None
    delta: float
    p_used: float
    rule: str = field(default=VERDICT_RULE)

    def line(self) -> str:
        """One line for a report: the word, then why."""
        return f"{self.word.upper()}: {self.reason}"


def verdict(
    diff: PairedDifference,
    delta: float,
    *,
    higher_is_better: bool = True,
    p_adjusted: float | None = None,
    alpha: float = ALPHA,
    min_seeds: int = MIN_SEEDS,
) -> Verdict:
    """Verdict on the claim "A beats B by at least ``delta``" by :data:`VERDICT_RULE`.

    Args:
        diff: :func:`paired_difference` of (A, B).
        delta: the smallest difference that matters (> 0, in the metric's units; e.g. 0.01 = 1
            accuracy point); state it with the claim.
        higher_is_better: False for losses/iterations (then "beats" means smaller and the
            difference is flipped before the rule is applied).
        p_adjusted: the Holm-adjusted p-value of this claim when several are tested together
            (default: ``diff.p_value``).
        alpha: significance level.
        min_seeds: fewest pairs before anything is decided (default :data:`MIN_SEEDS`; a grid
            scan may pass 3, a ``--quick`` run 2, and its verdict then says so).

    Returns:
        :class:`Verdict`.

    Raises:
        ValueError: delta <= 0 or not finite, alpha outside (0, 1), min_seeds < 2.
    """
    if not (math.isfinite(delta) and delta > 0):
        raise ValueError(f"invalid delta={delta!r}: expected the smallest difference that matters, a number > 0")
    if not 0 < alpha < 1:
        raise ValueError(f"invalid alpha={alpha!r}: expected a number in (0, 1)")
    if min_seeds < 2:
        raise ValueError(f"invalid min_seeds={min_seeds!r}: expected an integer >= 2")
    d = diff if higher_is_better else diff.flipped()
    p = d.p_value if p_adjusted is None else float(p_adjusted)
    rule = verdict_rule(min_seeds, alpha)
    nums = f"mean diff {d.mean:+.4g}, 95% CI [{d.ci_low:.4g}, {d.ci_high:.4g}], n={d.n}, p={p:.3g}, delta={delta:g}"
    if d.n < min_seeds:
        return Verdict("inconclusive", f"only {d.n} paired seeds (< {min_seeds}); {nums}", d, delta, p, rule)
    if p < alpha and d.mean > 0 and d.mean >= delta:
        return Verdict("holds", f"significant and at least delta; {nums}", d, delta, p, rule)
    if p < alpha and d.mean > 0:
        return Verdict("holds partly", f"significant but smaller than delta; {nums}", d, delta, p, rule)
    if p < alpha:
        return Verdict("does not hold", f"the opposite is significant; {nums}", d, delta, p, rule)
    if d.ci_high < delta:
        return Verdict("does not hold", f"no significant effect and the CI excludes delta; {nums}", d, delta, p, rule)
    return Verdict(
        "inconclusive", f"no significant effect, too little power to exclude delta; {nums}", d, delta, p, rule
    )


def verdicts_holm(
    diffs: Mapping[str, PairedDifference],
    delta: float,
    *,
    higher_is_better: bool = True,
    alpha: float = ALPHA,
    min_seeds: int = MIN_SEEDS,
) -> dict[str, Verdict]:
    """:func:`verdict` for a family of claims, their p-values Holm-adjusted together."""
    names = list(diffs)
    adj = holm([diffs[k].p_value for k in names])
    return {
        k: verdict(diffs[k], delta, higher_is_better=higher_is_better, p_adjusted=pa, alpha=alpha, min_seeds=min_seeds)
        for k, pa in zip(names, adj, strict=True)
    }


def combine_verdicts(words: Iterable[str]) -> str:
    """One verdict for a claim made of several parts, by :data:`COMBINE_RULE`.

    Raises:
        ValueError: an empty list or a word not in :data:`VERDICTS`.
    """
    ws = list(words)
    if not ws:
        raise ValueError("invalid words=[]: expected at least one verdict")
    for w in ws:
        if w not in VERDICTS:
            raise ValueError(f"invalid verdict {w!r}: expected one of {VERDICTS}")
    if all(w == "holds" for w in ws):
        return "holds"
    if all(w == "does not hold" for w in ws):
        return "does not hold"
    if any(w in ("holds", "holds partly") for w in ws):
        return "holds partly"
    return "inconclusive"  # no part holds, not all fail: at least one is inconclusive


def verdict_table(verdicts: Mapping[str, Verdict], title: str = "claim") -> list[str]:
    """Markdown lines for a family of verdicts: one row per claim, then the combined verdict and the rule.

    Args:
        verdicts: claim text -> :class:`Verdict` (e.g. from :func:`verdicts_holm`).
        title: header of the first column.

    Returns:
        Lines of a markdown table, a "combined" line and the rule's text (every verdict printed
        next to the rule that produced it).
    """
    lines = [
        f"| {title} | mean diff | 95% CI | n | p (Holm) | d_z | delta | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rules = []
    for claim, v in verdicts.items():
        d = v.diff
        if d is None:
            lines.append(f"| {claim} | — | — | 0 | — | — | {v.delta:g} | {v.word} |")
        else:
            lines.append(
                f"| {claim} | {d.mean:+.4g} | [{d.ci_low:.4g}, {d.ci_high:.4g}] | {d.n} | {v.p_used:.3g} | "
                f"{d.d_z:.3g} | {v.delta:g} | **{v.word}** |"
            )
        if v.rule not in rules:
            rules.append(v.rule)
    if verdicts:
        lines += ["", f"Combined: **{combine_verdicts(v.word for v in verdicts.values())}** ({COMBINE_RULE})"]
    lines += [""] + [f"> {r}" for r in rules]
    return lines
