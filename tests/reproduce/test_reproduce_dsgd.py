"""The DSGD reproduction end to end (shrunk to a few iterations per setting) and its baseline tuning."""

import csv
import json
import math

import pytest
import torch

from beyondsgd.reproduce import ReproduceContext, get_reproduction
from beyondsgd.reproduce import dsgd as repro

_REAL_SETTINGS = repro._settings


def _tiny(quick, datasets, preset="default"):
    """The reproduction's settings with 12 iterations each (evaluated every 4)."""
    return [
        repro.Setting(s.name, s.dataset, s.activation, s.mode, s.batch_size, 12, 4)
        for s in _REAL_SETTINGS(quick, datasets, preset)
    ]


def _ctx(out, **kw):
    return ReproduceContext(out=out, quick=True, device=torch.device("cpu"), progress=False, **kw)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``--quick`` reproduction, shrunk to 12 iterations per setting: (output folder, report text)."""
    out = tmp_path_factory.mktemp("dsgd")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(repro, "_settings", _tiny)
        report = get_reproduction("dsgd").run(_ctx(out))
    return out, report.read_text()


def test_reproduce_dsgd_writes_report_plots_and_bound_check(quick_run):
    tmp_path, text = quick_run
    for name in (
        "loss_vs_iteration.png",
        "loss_vs_time.png",
        "stationarity.png",
        "layer_frequency.png",
        "curves.csv",
        "decrease_checks.csv",
        "bound_check.json",
        "tuning.csv",
        "tuning.json",
        "tuning_curves.csv",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    checks = json.loads((tmp_path / "bound_check.json").read_text())
    assert checks and all(c["violations"] == 0 and c["steps_checked"] > 0 for c in checks)
    assert {c["algorithm"] for c in checks} >= {"dsgd", "dsgd_cyclic", "dsgd_random"}
    assert "below the predicted one **0 times**" in text
    assert "digits-relu-adaptive-batch64" in text and "sgd@" in text
    assert "greedy DSGD lower loss than dsgd_cyclic" in text and "Verdict rule (beyondsgd.bench.evidence)" in text


def test_dsgd_claims_on_hand_made_curves():
    curves = [
        {"setting": "s", "algorithm": a, "seed": sd, "train_loss": loss}
        for sd in range(5)
        for a, loss in (
            ("dsgd", 1.0 + 0.01 * sd),
            ("dsgd_cyclic", 2.0 + 0.01 * sd),
            ("dsgd_random", (1.0 + 0.01 * sd) * (1 + (0.002, -0.002, 0.001, -0.001, 0.0)[sd])),
        )
    ] + [{"setting": "s", "algorithm": "gd@1", "seed": sd, "train_loss": 0.1} for sd in range(5)]
    v = repro.dsgd_claims(curves, {"s": "gd@1"}, min_seeds=5)
    assert v["s: greedy DSGD lower loss than dsgd_cyclic"].word == "holds"
    assert v["s: greedy DSGD lower loss than dsgd_random"].word == "does not hold"  # equal within 0.5%
    assert v["s: greedy DSGD lower loss than gd@1"].word == "does not hold"  # GD is far better


def test_tuning_seeds_are_disjoint_from_the_evaluation_seeds():
    assert repro.tuning_seeds([0, 1, 2, 3, 4], 2) == [1000, 1001]
    assert repro.tuning_seeds([0, 1], 1) == [1000]
    for k in (1, 5, 999, 1000, 1500):
        eval_seeds = list(range(k))
        tune = repro.tuning_seeds(eval_seeds, 2)
        assert len(tune) == 2 and not set(tune) & set(eval_seeds)
    with pytest.raises(ValueError, match="invalid n=0"):
        repro.tuning_seeds([0], 0)


def test_tune_baseline_chooses_the_argmin_of_mean_ln_final_loss():
    finals = {
        0.1: [0.5, 0.5],  # arithmetic mean 0.5, mean ln -0.693
        0.3: [0.05, 1.0],  # arithmetic mean 0.525 (worse), mean ln -1.498 (better): the stated criterion picks it
        1.0: [math.nan, 0.001],  # one tuning seed diverged: +inf
    }
    t = repro.tune_baseline("s", "gd", [1000, 1001], finals)
    assert t.grid == (0.1, 0.3, 1.0) and t.seeds == (1000, 1001)
    assert t.scores[0.1] == pytest.approx(math.log(0.5))
    assert t.scores[0.3] == pytest.approx((math.log(0.05) + math.log(1.0)) / 2)
    assert t.scores[1.0] == math.inf
    assert t.lr == 0.3 and t.label == "gd@0.3"
    # Ties go to the smaller learning rate; all diverged: the smallest.
    assert repro.tune_baseline("s", "sgd", [7], {0.3: [0.2], 0.1: [0.2]}).lr == 0.1
    assert repro.tune_baseline("s", "sgd", [7], {0.3: [math.inf], 0.1: [math.nan]}).lr == 0.1
    with pytest.raises(ValueError, match=r"invalid finals\[0.1\]"):
        repro.tune_baseline("s", "gd", [1000, 1001], {0.1: [0.5]})
    with pytest.raises(ValueError, match="invalid finals"):
        repro.tune_baseline("s", "gd", [1000], {})


def test_reproduce_dsgd_tunes_the_baseline_on_other_seeds_and_reports_it(quick_run):
    tmp_path, text = quick_run
    tunings = json.loads((tmp_path / "tuning.json").read_text())
    with open(tmp_path / "curves.csv") as f:
        curves = list(csv.DictReader(f))
    with open(tmp_path / "tuning.csv") as f:
        tuning_rows = list(csv.DictReader(f))
    eval_seeds = {int(r["seed"]) for r in curves}
    tune_seeds = {int(r["seed"]) for r in tuning_rows}
    assert eval_seeds == {0, 1} and tune_seeds == {1000} and not eval_seeds & tune_seeds
    assert "## Baseline tuning (seeds disjoint from the evaluation)" in text
    settings = {r["setting"] for r in curves}
    assert {t["setting"] for t in tunings} == settings
    for t in tunings:
        grid = repro.GD_LRS if t["baseline"] == "gd" else repro.SGD_LRS
        assert t["grid"] == list(grid) and t["tuning_seeds"] == [1000]
        # The choice is the argmin of the recorded scores, and the scores are mean ln of the recorded losses.
        for lr in grid:
            assert t["score"][f"{lr:g}"] == pytest.approx(math.log(t["final_train_loss"][f"{lr:g}"][0]))
        assert t["chosen_lr"] == min(grid, key=lambda lr: t["score"][f"{lr:g}"])
        assert t["chosen"] == f"{t['baseline']}@{t['chosen_lr']:g}"
        # Only the chosen rate ran on the evaluation seeds.
        baselines = {r["algorithm"] for r in curves if r["setting"] == t["setting"] and "@" in r["algorithm"]}
        assert baselines == {t["chosen"]}
        # The report lists every grid point with its loss and score, and marks the choice.
        for lr in grid:
            loss = t["final_train_loss"][f"{lr:g}"][0]
            row = f"| {t['setting']} | {t['baseline']} | {lr:g} | {loss:.4g} | {t['score'][f'{lr:g}']:.4f} |"
            assert row in text
        assert f"| {t['setting']} | {t['baseline']} | {t['chosen_lr']:g} |" in text
        chosen_rows = [
            line for line in text.splitlines() if line.startswith(f"| {t['setting']} |") and "**chosen**" in line
        ]
        assert len(chosen_rows) == 1 and f"| {t['chosen_lr']:g} |" in chosen_rows[0]
        assert f"{t['setting']}: {t['chosen']}" in text
    edge = [t for t in tunings if t["chosen_lr"] in (t["grid"][0], t["grid"][-1])]
    assert ("at the edge of the grid in" in text) == bool(edge)


def test_reproduce_dsgd_interrupted_after_a_tuning_resumes_to_the_same_choice(quick_run, tmp_path, monkeypatch):
    """Killed between a setting's tuning and its evaluation, a rerun resumes from the checkpoints and agrees."""
    monkeypatch.setattr(repro, "_settings", _tiny)
    real_tune, calls = repro.tune_baseline, {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_tune(*args, **kwargs)

    monkeypatch.setattr(repro, "tune_baseline", dying)
    with pytest.raises(KeyboardInterrupt):
        get_reproduction("dsgd").run(_ctx(tmp_path, checkpoint_every=4))
    saved = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt"))
    assert any(n.startswith("quick-tune-") for n in saved) and not (tmp_path / "tuning.json").exists()
    monkeypatch.setattr(repro, "tune_baseline", real_tune)
    get_reproduction("dsgd").run(_ctx(tmp_path, checkpoint_every=4))
    uninterrupted = json.loads((quick_run[0] / "tuning.json").read_text())
    assert json.loads((tmp_path / "tuning.json").read_text()) == uninterrupted
