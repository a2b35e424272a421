"""The evidence standard on hand-made numbers (no training)."""

import math

import pytest
from scipy import stats as st

from beyondsgd.bench import evidence as ev


def test_mean_ci_is_summarize_values():
    s = ev.mean_ci([1.0, 2.0, 3.0, None, math.nan])
    assert s.n == 3 and s.mean == pytest.approx(2.0)
    half = st.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (s.ci_low, s.ci_high) == pytest.approx((2 - half, 2 + half))


def test_ratio_ci_is_the_t_interval_of_the_log_ratios():
    a, b = [2.0, 4.0, 2.0], [1.0, 1.0, 2.0]
    logs = [math.log(2.0), math.log(4.0), 0.0]
    mean, sd = sum(logs) / 3, st.tstd(logs)
    half = st.t.ppf(0.975, 2) * sd / math.sqrt(3)
    ratio, low, high = ev.ratio_ci(a, b)
    assert (ratio, low, high) == pytest.approx((math.exp(mean), math.exp(mean - half), math.exp(mean + half)))
    assert ev.ratio_ci([3.0, 6.0], [1.5, 3.0]) == pytest.approx((2.0, 2.0, 2.0))  # constant ratio: no spread
    one = ev.ratio_ci([3.0], [1.0])
    assert one[0] == pytest.approx(3.0) and math.isnan(one[1]) and math.isnan(one[2])
    with pytest.raises(ValueError, match="pair up"):
        ev.ratio_ci([1.0, 2.0], [1.0])


def test_holm_known_example():
    # Hand computation: sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005=0.02, 3*0.01=0.03, 2*0.03=0.06,
    # max(0.06, 1*0.04)=0.06 (monotone); back in input order:
    assert ev.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1, NaN ignored (m = 2)
    out = ev.holm([0.6, math.nan, 0.7])
    assert out[0] == pytest.approx(1.0) and out[2] == pytest.approx(1.0) and math.isnan(out[1])
    assert ev.holm([]) == []
    with pytest.raises(ValueError, match="pvalues"):
        ev.holm([1.5])


def test_paired_difference_matches_scipy():
    a = [0.81, 0.83, 0.80, 0.84, 0.82]
    b = [0.78, 0.81, 0.79, 0.80, 0.80]
    d = ev.paired_difference(a, b)
    ref = st.ttest_rel(a, b)
    assert d.n == 5 and d.p_value == pytest.approx(ref.pvalue)
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    mean = sum(diffs) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / 4)
    assert d.mean == pytest.approx(mean) and d.d_z == pytest.approx(mean / sd)
    assert d.ci_low < mean < d.ci_high
    with pytest.raises(ValueError, match="same number of seeds"):
        ev.paired_difference([1.0], [1.0, 2.0])


def test_verdict_clear_effect_holds():
    a = [0.90, 0.91, 0.905, 0.92, 0.915]
    b = [0.85, 0.855, 0.86, 0.86, 0.865]
    v = ev.verdict(ev.paired_difference(a, b), delta=0.01)
    assert v.word == "holds" and v.rule == ev.VERDICT_RULE


def test_verdict_small_real_effect_holds_partly():
    b = [0.80, 0.81, 0.82, 0.83, 0.84, 0.85]
    a = [x + 0.003 + e for x, e in zip(b, [0.0, 0.0005, -0.0005, 0.0002, -0.0002, 0.0], strict=True)]
    assert ev.verdict(ev.paired_difference(a, b), delta=0.01).word == "holds partly"


def test_verdict_no_effect_with_power_does_not_hold():
    b = [0.80, 0.81, 0.82, 0.83, 0.84, 0.85]
    a = [x + e for x, e in zip(b, [0.001, -0.001, 0.0005, -0.0005, 0.0, 0.0], strict=True)]
    v = ev.verdict(ev.paired_difference(a, b), delta=0.01)
    assert v.word == "does not hold" and "excludes delta" in v.reason


def test_verdict_no_effect_without_power_is_inconclusive():
    b = [0.80, 0.81, 0.82, 0.83, 0.84]
    a = [x + e for x, e in zip(b, [0.05, -0.04, 0.03, -0.05, 0.02], strict=True)]
    v = ev.verdict(ev.paired_difference(a, b), delta=0.01)
    assert v.word == "inconclusive" and "power" in v.reason


def test_verdict_opposite_significant_does_not_hold():
    a = [0.80, 0.81, 0.80, 0.82, 0.81]
    b = [0.85, 0.855, 0.86, 0.86, 0.865]
    assert ev.verdict(ev.paired_difference(a, b), delta=0.01).word == "does not hold"


def test_verdict_too_few_seeds_is_inconclusive_even_for_a_huge_effect():
    a = [0.90, 0.91, 0.92]
    b = [0.10, 0.12, 0.11]  # (differences 0.80, 0.79, 0.81: a real spread, so the t-test applies)
    v = ev.verdict(ev.paired_difference(a, b), delta=0.01)
    assert v.word == "inconclusive" and "3 paired seeds" in v.reason
    assert ev.verdict(ev.paired_difference(a, b), delta=0.01, min_seeds=3).word == "holds"


def test_verdict_lower_is_better_and_holm_adjusted_p():
    iters_a = [100, 102, 98, 101, 99]
    iters_b = [150, 149, 152, 151, 148]
    d = ev.paired_difference(iters_a, iters_b)
    assert ev.verdict(d, delta=10, higher_is_better=False).word == "holds"
    # an adjusted p above alpha removes significance; the CI still reaches delta -> inconclusive
    assert ev.verdict(d, delta=10, higher_is_better=False, p_adjusted=0.2).word == "inconclusive"
    with pytest.raises(ValueError, match="delta"):
        ev.verdict(d, delta=0)


def test_verdicts_holm_adjusts_jointly():
    b = [0.80, 0.81, 0.82, 0.83, 0.84]
    big = [x + 0.05 + e for x, e in zip(b, [0.0, 0.001, -0.001, 0.002, -0.002], strict=True)]
    noisy = [x + e for x, e in zip(b, [0.03, -0.02, 0.025, 0.02, -0.01], strict=True)]
    diffs = {"big": ev.paired_difference(big, b), "noisy": ev.paired_difference(noisy, b)}
    out = ev.verdicts_holm(diffs, delta=0.01)
    adj = ev.holm([diffs["big"].p_value, diffs["noisy"].p_value])
    assert out["big"].p_used == pytest.approx(adj[0]) and out["big"].word == "holds"
    assert out["noisy"].word == "inconclusive"


def test_combine_verdicts():
    assert ev.combine_verdicts(["holds", "holds"]) == "holds"
    assert ev.combine_verdicts(["holds", "does not hold"]) == "holds partly"
    assert ev.combine_verdicts(["holds partly", "inconclusive"]) == "holds partly"
    assert ev.combine_verdicts(["does not hold", "inconclusive"]) == "inconclusive"
    assert ev.combine_verdicts(["does not hold"]) == "does not hold"
    with pytest.raises(ValueError, match="verdict"):
        ev.combine_verdicts(["maybe"])


def test_ties_with_best():
    samples = {
        "adam": [0.90, 0.91, 0.905, 0.912, 0.908],
        "sgd": [0.905, 0.90, 0.91, 0.903, 0.909],  # indistinguishable from adam
        "gd": [0.70, 0.71, 0.705, 0.69, 0.70],  # clearly worse
        "one_seed": [0.95],  # best by mean, but one seed: nothing can be tested against it
    }
    tv = ev.ties_with_best({k: v for k, v in samples.items() if k != "one_seed"})
    assert tv.best == "adam" and tv.tied == ("sgd",) and tv.different == ("gd",) and tv.decidable
    raw = st.ttest_ind(samples["gd"], samples["adam"], equal_var=False).pvalue
    assert tv.p_raw["gd"] == pytest.approx(raw)
    assert tv.p_adjusted["gd"] == pytest.approx(ev.holm([tv.p_raw["sgd"], raw])[1])
    tv2 = ev.ties_with_best(samples)
    assert tv2.best == "one_seed" and tv2.undecided == ("adam", "sgd", "gd") and not tv2.decidable
    assert "fewer than 2 seeds" in tv2.note
    assert tv2.status("gd") == "undecided"
    # losses: lower is better
    tv3 = ev.ties_with_best({"a": [1.0, 1.1, 1.05], "b": [2.0, 2.1, 2.05]}, higher_is_better=False)
    assert tv3.best == "a" and tv3.different == ("b",)


def test_ties_with_best_single_seed_everywhere_is_undecidable():
    tv = ev.ties_with_best({"a": [0.9], "b": [0.8]})
    assert tv.best == "a" and tv.tied == () and tv.different == () and tv.undecided == ("b",)
    assert not tv.decidable and "nothing can be called tied or different" in tv.note


def test_verdict_carries_the_rule_it_used():
    d = ev.paired_difference([1.0, 2.0], [0.0, 1.5])
    assert ev.verdict(d, delta=0.1).rule == ev.VERDICT_RULE
    quick = ev.verdict(d, delta=0.1, min_seeds=2)
    assert "n < 2 seeds" in quick.rule and quick.rule != ev.VERDICT_RULE


def test_verdict_table_prints_every_verdict_with_its_rule():
    b = [0.80, 0.81, 0.82, 0.83, 0.84]
    a = [x + 0.05 for x in b]
    vs = ev.verdicts_holm({"a beats b": ev.paired_difference([x + 0.001 * i for i, x in enumerate(a)], b)}, 0.01)
    text = "\n".join(ev.verdict_table(vs))
    assert "a beats b" in text and "**holds**" in text and ev.VERDICT_RULE in text and "Combined" in text


def test_identical_differences_use_the_exact_sign_test_not_p_zero():
    """Accuracies on a finite test set often differ by the same count on every seed: the t-test is then
    undefined (sd 0), and a p of 0 made two seeds look decisive. The sign test gives 2 * 2^-n."""
    exact = ev.paired_difference([1.0, 2.0], [0.0, 1.0])
    assert exact.std == 0.0 and exact.p_value == 0.5 and exact.d_z == math.inf
    assert ev.paired_difference([1.0] * 6, [0.0] * 6).p_value == pytest.approx(2 * 0.5**6)
    assert ev.paired_difference([1.0] * 6, [1.0] * 6).p_value == 1.0
    # With n = 5 the sign test cannot reach 0.05 (0.0625): a constant +2 points is then not significant, and
    # its zero-width interval lies above delta, so the verdict is inconclusive rather than "holds".
    v = ev.verdict(ev.paired_difference([0.52] * 5, [0.50] * 5), delta=0.01)
    assert v.word == "inconclusive"
    v = ev.verdict(ev.paired_difference([0.52] * 7, [0.50] * 7), delta=0.01)
    assert v.word == "holds"


def test_equal_differences_up_to_rounding_are_no_spread():
    # Found by a user trial: both seeds differ by 2/360 but the differences are not bit-equal, so the
    # spread was 7.9e-17 and the t-test gave p = 6e-15 ("better" from 2 seeds). The sign test applies.
    a, b = [0.9694444444444444, 0.9583333333333334], [0.9638888888888889, 0.9527777777777777]
    d = ev.paired_difference(a, b)
    assert d.std == 0.0 and d.p_value == 0.5 and d.ci_low == d.ci_high == d.mean


def test_welch_without_spread_on_either_side_is_the_exact_permutation_test():
    # Before: p = 0 for (0.9722, 0.9722) against (1, 1), so two seeds made a "significantly worse".
    assert ev.welch_p([0.9722, 0.9722], [1.0, 1.0]) == pytest.approx(1 / 3)  # 2 / C(4, 2)
    assert ev.welch_p([0.5] * 5, [0.6] * 5) == pytest.approx(2 / 252)
    assert ev.welch_p([0.5] * 2, [0.6] * 3) == pytest.approx(1 / 10)  # unequal counts: no mirror arrangement
    assert ev.welch_p([0.5, 0.5], [0.5, 0.5 + 1e-17]) == 1.0
    assert 0.0 < ev.welch_p([0.5, 0.51], [0.6, 0.6]) < 0.1  # spread on one side: Welch's t
