"""Performance profiles against a hand-worked example."""

import math

import numpy as np
import pytest

from beyondsgd.bench.profiles import performance_ratios, profile, profile_area

# Costs (e.g. seconds to target) of algorithms A, B, C on problems p1..p4.
COSTS = {
    "p1": {"A": 1.0, "B": 2.0, "C": 4.0},
    "p2": {"A": 3.0, "B": 1.5, "C": math.inf},  # C never reaches the target
    "p3": {"A": 10.0, "B": 10.0, "C": 20.0},  # tie for best
    "p4": {"A": math.nan, "B": math.inf},  # nobody solves p4; C missing
}
# Ratios by hand:       A     B     C
#   p1                  1     2     4
#   p2                  2     1     inf
#   p3                  1     1     2
#   p4                  inf   inf   inf


def test_ratios_by_hand():
    problems, algs, r = performance_ratios(COSTS)
    assert problems == ["p1", "p2", "p3", "p4"] and algs == ["A", "B", "C"]
    expected = np.array([[1, 2, 4], [2, 1, math.inf], [1, 1, 2], [math.inf] * 3])
    np.testing.assert_array_equal(r, expected)


def test_profile_by_hand():
    _, _, r = performance_ratios(COSTS)
    rho = profile(r, [1.0, 1.5, 2.0, 4.0, 100.0])
    # A: ratios {1, 2, 1, inf}; B: {2, 1, 1, inf}; C: {4, inf, 2, inf}; |P| = 4.
    np.testing.assert_allclose(rho[0], [0.5, 0.5, 0.75, 0.75, 0.75])
    np.testing.assert_allclose(rho[1], [0.5, 0.5, 0.75, 0.75, 0.75])
    np.testing.assert_allclose(rho[2], [0.0, 0.0, 0.25, 0.5, 0.5])


def test_area_by_hand():
    _, _, r = performance_ratios(COSTS)
    # area = mean_p max(0, 4 - r) / 3:  A: (3 + 2 + 3 + 0)/4/3 = 2/3;  B: same;  C: (0 + 0 + 2 + 0)/4/3 = 1/6.
    np.testing.assert_allclose(profile_area(r, 4.0), [2 / 3, 2 / 3, 1 / 6])


def test_area_matches_numerical_integral():
    rng = np.random.default_rng(0)
    r = np.where(rng.random((7, 3)) < 0.2, np.inf, 1 + rng.exponential(1.5, (7, 3)))
    r[np.arange(7), rng.integers(0, 3, 7)] = 1.0
    taus = np.linspace(1, 4, 300_001)
    numeric = profile(r, taus).mean(axis=1)  # Riemann mean over [1, 4] = integral / 3
    np.testing.assert_allclose(profile_area(r, 4.0), numeric, atol=1e-4)


def test_bad_costs_and_tau():
    with pytest.raises(ValueError, match="expected > 0"):
        performance_ratios({"p": {"A": 0.0}})
    _, _, r = performance_ratios({"p": {"A": 1.0}})
    with pytest.raises(ValueError, match="tau_max"):
        profile_area(r, 1.0)
