"""The multiplicative reproduction: the quick version writes its report, data and plots."""

import csv

import numpy as np
import pytest
import torch

from beyondsgd.bench import problems
from beyondsgd.reproduce import ReproduceContext, get_reproduction
from beyondsgd.reproduce import multiplicative as repro


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


_QUICK_PLAN = repro.study_plan(quick=True)


def _tiny_plan(**kw):
    base = _QUICK_PLAN
    fields = dict(base.__dict__)
    fields.update(
        n_train=80,
        n_val=30,
        n_test=40,
        models=(("mlp", {"widths": (8,)}), ("resnet_small", {"channels": (2, 2, 2)})),
        headline_epochs=1,
    )
    fields.update(kw)
    return repro.StudyPlan(**fields)


def test_quick_reproduction_writes_report_with_verdicts_and_the_rule(tmp_path, monkeypatch):
    # Smaller than --quick (tiny problems and data), so the test stays fast; the real --quick is run by the docs.
    small = problems.quadratic
    monkeypatch.setattr(repro.P, "quadratic", lambda c: small(c, dim=4))
    monkeypatch.setattr(repro, "study_plan", lambda quick, preset="default": _tiny_plan())
    ctx = ReproduceContext(out=tmp_path, quick=True, device=torch.device("cpu"), progress=False, dataset="digits")
    report = get_reproduction("multiplicative").run(ctx)
    text = report.read_text()
    for needle in (
        "## Verdict",
        "### Accuracy at fixed budgets",
        "### Robustness to the step size",
        "### Robustness to the initialization scale",
        "## 1. Test functions",
        "## 2. Headline runs (test split)",
        "## 3. Step-size sensitivity",
        "## 4. Initialization-scale sensitivity",
        "Verdict rule (beyondsgd.bench.evidence)",
        "mlp adam: M beats A at epoch 1",
        "resnet_small sgd: H wider than A",
        "grid_mlp.png",
        "problems.png",
    ):
        assert needle in text, needle
    assert any(f"**{w}**" in text for w in ("holds", "holds partly", "does not hold", "inconclusive"))
    for name in ("problems.png", "grid_mlp.png", "grid_resnet_small.png", "grid.csv", "headline.csv", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0
    with open(tmp_path / "grid.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["rule"] for r in rows} == {"A", "M", "H"} and {r["base"] for r in rows} == set(repro.BASES)
    assert {r["model"] for r in rows} == {"mlp", "resnet_small"}
    assert {r["eta_in"] for r in rows if r["rule"] != "A"} == {"0.1", "1.0", "10.0"}
    with open(tmp_path / "headline.csv") as fh:
        head = list(csv.DictReader(fh))
    assert {r["seed"] for r in head} == {"0", "1"}  # --quick: 2 seeds


def test_grids_span_the_requested_decades_with_two_points_per_decade():
    for quick, preset in ((False, "default"), (False, "paper")):
        plan = repro.study_plan(quick, preset)
        for exps in (plan.lr_exponents, plan.eta_out_exponents):
            assert np.allclose(np.diff(exps), 0.5)  # 2 points per decade
            assert exps[-1] - exps[0] >= 4.0  # at least 4 decades: room for both failure edges
        assert plan.lr_exponents != plan.eta_out_exponents  # separate grids (different units)
        assert set(plan.eta_in) == {0.1, 1.0, 10.0}
        assert plan.grid_seeds >= 3 and set(plan.budgets) >= {1, 3}
        assert len(plan.lrs) == len(plan.eta_outs)  # equal tuning budget: same number of candidates
    default = repro.study_plan(False)
    assert default.lr_exponents[0] <= -4 and default.lr_exponents[-1] >= 0
    assert default.eta_out_exponents[0] <= -3.5 and default.eta_out_exponents[-1] >= 0.5
    assert {m for m, _ in default.models} == {"mlp", "resnet_small"}
    quick = repro.study_plan(True)
    assert quick.grid_seeds == 2 and np.allclose(np.diff(quick.lr_exponents), 0.5)
    cells = repro._cells("adam", default)
    assert sum(c[0] == "A" for c in cells) == len(default.lrs)
    assert sum(c[0] == "M" for c in cells) == len(default.eta_outs) * 3


def test_tuning_never_reads_the_test_split(tmp_path, monkeypatch, guarded_digits):
    data = guarded_digits
    plan = _tiny_plan(models=(("mlp", {"widths": (8,)}),), grid_seeds=2)
    phases = []
    real_headline = repro._headline_phase

    def headline(*args, **kwargs):
        phases.append("headline")
        object.__setattr__(data, "armed", False)  # tuning is over: the headline may read the test split
        return real_headline(*args, **kwargs)

    real_tune = repro._tune_phase

    def tune(*args, **kwargs):
        phases.append("tune")
        return real_tune(*args, **kwargs)

    monkeypatch.setattr(repro, "_headline_phase", headline)
    monkeypatch.setattr(repro, "_tune_phase", tune)
    object.__setattr__(data, "armed", True)
    ctx = ReproduceContext(out=tmp_path, quick=True, device=torch.device("cpu"), progress=False)
    study = repro.run_image_study(ctx, data, plan)
    assert phases == ["tune", "headline"]
    assert study["headline"] and study["grid"] and study["init"]
    # the guard works: reading the test split while armed fails
    object.__setattr__(data, "armed", True)
    with pytest.raises(AssertionError, match="during tuning"):
        _ = data.X_test
    # tuning ran on the validation split, carved out of the training set (disjoint from what it fits on)
    tune_data, fit = repro.validation_split(data, plan.n_val, n_train=plan.n_train)
    assert tune_data.n_test == plan.n_val and fit[0].shape[0] == plan.n_train - plan.n_val


def test_validation_split_errors():
    from beyondsgd.data import load_dataset

    d = load_dataset("digits")
    with pytest.raises(ValueError, match="n_val"):
        repro.validation_split(d, 0)
    with pytest.raises(ValueError, match="n_train"):
        repro.validation_split(d, 50, n_train=50)


def test_tuning_picks_from_equal_budgets_and_the_own_best():
    plan = _tiny_plan(lr_exponents=(-2.0, -1.5), eta_out_exponents=(-1.0, -0.5), models=(("mlp", {}),))
    grid = []
    for base in repro.BASES:
        for rule, step, eta_in in repro._cells(base, plan):
            # A best at lr 10^-1.5; M best at eta_out 10^-1 with eta_in = 1 (eta_in = 10 better but not tuned on)
            acc = {"A": 0.8 if step > 0.02 else 0.7, "M": 0.6 if step < 0.2 else 0.5, "H": 0.5}[rule]
            if rule == "M" and eta_in == 10.0:
                acc = 0.95
            for seed in range(plan.grid_seeds):
                grid.append(
                    {"model": "mlp", "base": base, "rule": rule, "step": step, "eta_in": eta_in, "seed": seed}
                    | {"val_acc": acc}
                )
    tuned = repro.tuned_settings(grid, plan)
    assert tuned["mlp", "adam", "A"]["step"] == pytest.approx(10**-1.5)
    assert tuned["mlp", "adam", "M"]["step"] == pytest.approx(0.1) and tuned["mlp", "adam", "M"]["eta_in"] == 1.0
    assert {t["candidates"] for t in tuned.values()} == {2}
    sens = repro.grid_sensitivity(grid, plan)
    m10 = next(s for s in sens if (s["base"], s["rule"], s["eta_in"]) == ("adam", "M", 10.0))
    assert m10["peak"] == 0.95 and len(m10["per_seed_width"]) == plan.grid_seeds


def test_headline_claims_on_hand_made_histories():
    rows = []
    for seed in range(5):
        for rule, (early, final) in {"A": (0.50, 0.90), "M": (0.70, 0.90), "H": (0.50, 0.80)}.items():
            jitter = 0.002 * (seed - 2) * (1 if rule == "A" else -1)
            for epoch, acc in ((1, early + jitter), (2, final + jitter)):
                rows.append(
                    {"model": "mlp", "base": "adam", "rule": rule, "seed": seed, "epoch": epoch}
                    | {"test_accuracy": acc}
                )
    v = repro.headline_claims(rows, budgets=(1,), min_seeds=5)
    assert v["mlp adam: M beats A at epoch 1"].word == "holds"  # faster early
    assert v["mlp adam: M beats A at epoch 2 (final)"].word == "does not hold"  # same at the end, CI excludes 1 pt
    assert v["mlp adam: H beats A at epoch 2 (final)"].word == "does not hold"  # significantly worse
    assert v["mlp adam: H beats A at epoch 1"].word == "does not hold"  # equal, CI within 1 pt
    few = repro.headline_claims([r for r in rows if r["seed"] < 3], budgets=(1,), min_seeds=5)
    assert {x.word for x in few.values()} == {"inconclusive"}  # too few seeds


def test_width_claims_are_inconclusive_when_the_additive_width_is_censored():
    sens = []
    # (M - A: 1.1, 1.15, 1.05 decades. Equal differences in every seed would be a sign test, p = 0.25.)
    for rule, widths, cens in (("A", [0.5, 0.6, 0.55], [False] * 3), ("M", [1.6, 1.75, 1.6], [False] * 3)):
        sens.append(
            {"model": "mlp", "base": "adam", "rule": rule, "eta_in": None if rule == "A" else 1.0}
            | {"per_seed_width": widths, "per_seed_censored": cens}
        )
    v = repro.width_claims(sens, "per_seed_width", 0.5, min_seeds=3)
    assert v["mlp adam: M wider than A"].word == "holds"  # about +1.1 decades in every seed
    sens[0]["per_seed_censored"] = [False, True, False]  # A's region hits the grid's edge in one seed
    v = repro.width_claims(sens, "per_seed_width", 0.5, min_seeds=3)
    assert v["mlp adam: M wider than A"].word == "inconclusive"
    assert "censored" in v["mlp adam: M wider than A"].reason
