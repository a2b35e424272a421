"""Statistics over seeds on hand-made numbers."""

import math

import pytest

from beyondsgd.bench.stats import best_value, final_value, metric_range, summarize_values, to_target


def test_mean_std_and_t_interval_by_hand():
    s = summarize_values([1.0, 2.0, 3.0])
    assert s.mean == 2.0 and s.n == 3
    assert s.std == pytest.approx(1.0)  # sqrt(((1-2)^2 + 0 + (3-2)^2) / 2)
    half = 4.302652729749462 / math.sqrt(3)  # t_{0.975, 2} * std / sqrt(n)
    assert (s.ci_low, s.ci_high) == pytest.approx((2 - half, 2 + half))
    s90 = summarize_values([1.0, 2.0, 3.0], level=0.9)
    assert s90.half_width < s.half_width  # a lower level gives a narrower interval


def test_four_values_interval():
    s = summarize_values([0.90, 0.92, 0.94, 0.96])
    std = math.sqrt((0.03**2 + 0.01**2 + 0.01**2 + 0.03**2) / 3)
    assert s.mean == pytest.approx(0.93) and s.std == pytest.approx(std)
    assert s.half_width == pytest.approx(3.1824463052837078 * std / 2)


def test_an_interval_is_cut_to_the_range_of_a_bounded_metric():
    accs = [0.99, 1.0, 0.97]
    plain = summarize_values(accs)
    assert plain.ci_high > 1.0  # the t interval knows nothing of the range
    cut = summarize_values(accs, bounds=metric_range("test_accuracy"))
    assert (cut.mean, cut.std, cut.ci_low) == (plain.mean, plain.std, plain.ci_low) and cut.ci_high == 1.0
    low = summarize_values([0.0, 0.02, 0.01], bounds=(0.0, 1.0))
    assert low.ci_low == 0.0 and low.ci_high < 1.0
    assert metric_range("val_accuracy") == (0.0, 1.0) and metric_range("test_loss") is None


def test_non_finite_values_are_dropped_and_edge_counts():
    s = summarize_values([1.0, math.nan, None, math.inf, 3.0])
    assert s.n == 2 and s.mean == 2.0
    one = summarize_values([5.0])
    assert (one.mean, one.std, one.n) == (5.0, 0.0, 1) and math.isnan(one.ci_low)
    none = summarize_values([math.nan])
    assert none.n == 0 and math.isnan(none.mean)
    with pytest.raises(ValueError, match="level"):
        summarize_values([1.0], level=1.0)


HIST = [
    {"step": 0, "epoch": 0.0, "time_s": 0.0, "test_accuracy": 0.10, "test_loss": 2.3},
    {"step": 10, "epoch": 1.0, "time_s": 0.5, "test_accuracy": 0.80, "test_loss": 0.9},
    {"step": 20, "epoch": 2.0, "time_s": 1.1, "test_accuracy": 0.93, "test_loss": 0.4},
    {"step": 30, "epoch": 3.0, "time_s": 1.6, "test_accuracy": 0.91, "test_loss": 0.45},
]


def test_time_and_iterations_to_target():
    assert to_target(HIST, "test_accuracy", 0.9, "time_s") == 1.1
    assert to_target(HIST, "test_accuracy", 0.9, "step") == 20
    assert to_target(HIST, "test_accuracy", 0.8, "epoch") == 1.0  # reaching exactly counts
    assert math.isnan(to_target(HIST, "test_accuracy", 0.95, "time_s"))
    assert to_target(HIST, "test_loss", 0.5, "step") == 20  # losses must go *below* the target
    assert to_target(HIST, "test_loss", 3.0, "step") == 0


def test_final_and_best_values():
    assert final_value(HIST, "test_accuracy") == 0.91
    assert best_value(HIST, "test_accuracy") == 0.93
    assert best_value(HIST, "test_loss") == 0.4
    assert math.isnan(final_value(HIST, "test_accuracy", status="diverged"))
    assert best_value(HIST, "test_accuracy", status="diverged") == 0.93  # best before diverging still counts
