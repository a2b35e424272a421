"""The multiplicative reproduction: the quick version writes its report, data and plots."""

import csv

import pytest
import torch

from beyondsgd.bench import problems
from beyondsgd.reproduce import ReproduceContext, get_reproduction
from beyondsgd.reproduce import multiplicative as repro


def test_robustness_summary_counts_cells_near_the_best():
    rows = [
        {"base": "sgd", "rule": r, "test_accuracy": a, "step": 0.1, "init_scale": c}
        for r, accs in (("A", [0.905, 0.5]), ("M", [0.895, 0.885]), ("H", [float("nan"), 0.91]))
        for a, c in zip(accs, (1.0, 3.0))
    ]
    s = {x["rule"]: x for x in repro.robustness_summary(rows)}
    assert s["A"]["fraction_within_1pt"] == 1 / 2 and s["M"]["fraction_within_1pt"] == 0.0
    assert s["H"]["fraction_within_1pt"] == 1 / 2 and s["H"]["worst"] == 0.0  # diverged counts as 0
    assert s["M"]["best_cell"] == 0.895
    assert s["A"]["init_spread_at_best_step"] == pytest.approx(0.405) and s["M"]["best_step"] == 0.1


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
