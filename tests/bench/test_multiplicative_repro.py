"""The multiplicative reproduction: the quick version writes its report, data and plots."""

import csv

import pytest
import torch

from beyondsgd.bench import problems
from beyondsgd.bench.reproductions import ReproduceContext, get_reproduction
from beyondsgd.bench.reproductions import multiplicative as repro


def test_robustness_summary_counts_cells_near_the_rules_own_best():
    rows = [
        {"base": "sgd", "rule": r, "test_accuracy": a, "step": 0.1, "init_scale": c}
        for r, accs in (("A", [0.905, 0.5]), ("M", [0.895, 0.885]), ("H", [float("nan"), 0.91]))
        for a, c in zip(accs, (1.0, 3.0))
    ]
    s = {x["rule"]: x for x in repro.robustness_summary(rows)}
    # own best: M's cells 0.895 and 0.885 are both within 1 point of M's best (0.895), although
    # 0.885 is more than 1 point below A's best -- the old all-rules metric scored M 0.5 there
    assert s["A"]["fraction_within_own"] == 1 / 2 and s["M"]["fraction_within_own"] == 1.0
    assert s["H"]["fraction_within_own"] == 1 / 2 and s["H"]["worst"] == 0.0  # diverged counts as 0
    assert s["M"]["best_cell"] == 0.895
    assert s["A"]["init_spread_at_best_step"] == pytest.approx(0.405) and s["M"]["best_step"] == 0.1


# A hand-worked grid: 7 step sizes, half a decade apart (1e-3 .. 1e0).
STEPS = [10 ** (-3 + k / 2) for k in range(7)]
NARROW = [0.10, 0.10, 0.50, 0.95, 0.50, 0.10, 0.10]  # best peak, one good cell
WIDE = [0.10, 0.92, 0.93, 0.93, 0.925, 0.92, 0.10]  # 2 points lower at its peak, good over 2 decades


def test_sensitivity_on_a_hand_worked_grid():
    n = repro.sensitivity(STEPS, NARROW, within=0.02)
    w = repro.sensitivity(STEPS, WIDE, within=0.02)
    assert n["peak"] == 0.95 and w["peak"] == 0.93 and n["peak_x"] == pytest.approx(10**-1.5)
    # NARROW: level 0.93; crossings at (0.95 - 0.93) / (0.95 - 0.50) = 0.0444 grid steps either side
    # of the peak, a grid step being 0.5 decades -> width 2 * 0.0444 * 0.5 = 0.0444 decades.
    assert n["width_decades"] == pytest.approx(2 * (0.02 / 0.45) * 0.5)
    # WIDE: level 0.91; cells 1..5 are >= 0.91; left crossing (0.92 - 0.91) / 0.82 of a step before
    # cell 1, right one the same after cell 5 -> (4 + 2 * 0.01 / 0.82) * 0.5 decades.
    assert w["width_decades"] == pytest.approx((4 + 2 * 0.01 / 0.82) * 0.5)
    # area: NARROW scores 1 at the peak only -> trapezoids 0.5 * 0.5 * 2 = 0.5 decades.
    # WIDE scores (0, 0.5, 1, 1, 0.75, 0.5, 0) -> trapezoids 0.5 * (0.25 + 0.75 + 1 + 0.875 + 0.625 + 0.25).
    assert n["area_decades"] == pytest.approx(0.5)
    assert w["area_decades"] == pytest.approx(0.5 * (0.25 + 0.75 + 1 + 0.875 + 0.625 + 0.25))
    # the point of the metric: worse at the peak but wider must score wider
    assert w["width_decades"] > n["width_decades"] and w["area_decades"] > n["area_decades"]
    assert not (n["left_censored"] or n["right_censored"] or w["left_censored"] or w["right_censored"])


def test_sensitivity_censoring_nan_and_errors():
    s = repro.sensitivity([1e-2, 1e-1, 1.0], [0.9, 0.9, float("nan")], within=0.01)
    assert s["left_censored"] and not s["right_censored"]
    assert s["width_decades"] == pytest.approx(1 + 0.01 / 0.9)  # NaN = diverged = 0
    with pytest.raises(ValueError, match="xs"):
        repro.sensitivity([1.0], [0.5])
    with pytest.raises(ValueError, match="xs"):
        repro.sensitivity([0.0, 1.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="within"):
        repro.sensitivity([0.1, 1.0], [0.5, 0.5], within=0)


def test_robustness_summary_width_prefers_the_wider_rule():
    rows = [
        {"base": "adam", "rule": rule, "test_accuracy": a, "step": s, "init_scale": c}
        for rule, accs in (("A", NARROW), ("M", WIDE))
        for s, a in zip(STEPS, accs, strict=True)
        for c in (0.5, 2.0)
    ]
    s = {x["rule"]: x for x in repro.robustness_summary(rows, within=0.02)}
    assert s["A"]["best_cell"] > s["M"]["best_cell"]
    assert s["M"]["step_width_decades"] > s["A"]["step_width_decades"]
    assert s["M"]["fraction_within_own"] > s["A"]["fraction_within_own"]


def test_batched_grid_equals_separate_runs():
    p = problems.beale()
    grid = repro._minimize_grid(p, "adam", "H", [1e-2, 1e-1], 20)
    x = torch.nn.Parameter(p.x0.clone())
    opt = repro.BASES["adam"]([x], **repro._rule_options("H", 1e-1))
    for _ in range(20):
        opt.zero_grad()
        p.f(x).backward()
        opt.step()
    assert grid[-1, 1] == pytest.approx(float(p.gap(x.detach())), rel=1e-9, abs=1e-15)


def test_quick_reproduction_writes_report(tmp_path, monkeypatch):
    # Still smaller than --quick, so the test stays fast; the CLI test below runs the real --quick path.
    small = problems.quadratic
    monkeypatch.setattr(repro.P, "quadratic", lambda c: small(c, dim=4))
    ctx = ReproduceContext(out=tmp_path, quick=True, device=torch.device("cpu"), progress=False)
    report = get_reproduction("multiplicative").run(ctx)
    text = report.read_text()
    for needle in (
        "## Verdict",
        "## 1. Test functions",
        "## 2. Image classification",
        "## 3. Robustness",
        "robustness.png",
        "problems.png",
    ):
        assert needle in text
    for name in (
        "problems.png",
        "robustness.png",
        "images_digits-mlp_epoch.png",
        "images_digits-mlp_time_s.png",
        "problems.csv",
        "images.csv",
        "robustness.csv",
        "summary.json",
    ):
        assert (tmp_path / name).stat().st_size > 0
    with open(tmp_path / "problems.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["rule"] for r in rows} == {"A", "M", "H"} and len({r["base"] for r in rows}) == 4
