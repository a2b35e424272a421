"""``advise``: a complete report on a tiny budget, the budget kept, Ctrl-C, bad inputs, the statistics."""

import json

import pytest

pytest.importorskip("optuna")

from beyondsgd.advise import advise, parse_budget
from beyondsgd.cli import main
from beyondsgd.data import Dataset, load_dataset

TINY = {
    "algorithms": ["sgd", "adam", "hb"],
    "epochs": 3,
    "dataset_options": {"n_train": 300},
    "model_options": {"widths": [16]},
    "progress": False,
}


def test_tiny_budget_gives_a_complete_report_within_budget(tmp_path):
    res = advise("digits", "mlp", budget=20, out=tmp_path, **TINY)
    assert res.elapsed_s <= 1.1 * 20
    assert res.recommended in {"sgd", "adam", "hb"} and not res.interrupted
    md = res.report.read_text()
    assert f"**Recommended: `{res.recommended}`**" in md
    assert "Statistically tied with it" in md
    assert "## Each family's best against tuned Adam and tuned SGD" in md
    for fam in ("| baseline |", "| momentum |"):
        assert fam in md
    for f in ("advice.html", "advice.json", "trials.csv", "finals.csv", "curves.png", "finalists.png"):
        assert (tmp_path / f).is_file(), f
    verdict = json.loads((tmp_path / "advice.json").read_text())["verdict"]
    assert verdict["recommended"] == res.recommended and verdict["final_accuracy"]["seeds"] >= 5
    assert set(res.tied) <= {"sgd", "adam", "hb"} - {res.recommended}
    rows = (tmp_path / "finals.csv").read_text().splitlines()[1:]
    for alg in [res.recommended, *res.tied]:  # compared finalists ran all their >= 5 seeds
        assert sum(r.startswith(alg + ",") for r in rows) >= 5
    trials = (tmp_path / "trials.csv").read_text().splitlines()[1:]
    assert {r.split(",")[0] for r in trials} == {"sgd", "adam", "hb"}  # every algorithm raced


def test_ctrl_c_writes_the_report_of_what_finished(tmp_path, monkeypatch):
    import beyondsgd.advise.core as core

    real, calls = core.run_experiment, [0]

    def interrupting(*a, **kw):
        calls[0] += 1
        if calls[0] > 12:  # 3 probes, then some trials
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(core, "run_experiment", interrupting)
    full = load_dataset("digits", seed=0, n_train=300)  # tensors, as a user's own data would come
    mine = Dataset(
        "mine",
        full.X_train,
        full.y_train,
        full.X_test,
        full.y_test,
        full.input_shape,
        10,
        "classification",
        "my tensors",
    )
    res = advise(mine, "mlp", budget=60, out=tmp_path, **{**TINY, "dataset_options": None})
    assert res.interrupted and res.elapsed_s < 60
    md = res.report.read_text()
    assert "Interrupted (Ctrl-C)" in md and "No recommendation" in md  # no final ran
    assert len((tmp_path / "trials.csv").read_text().splitlines()) - 1 == 12 - 3


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"budget": 0}, "must be > 0"),
        ({"budget": "-1m"}, "invalid budget"),
        ({"budget": "ten minutes"}, "invalid budget"),
        ({"families": ["quantum"]}, "unknown algorithm family 'quantum'; available families: "),
        ({"algorithms": ["lion"]}, "unknown algorithm 'lion'"),
        ({"seeds": 3}, "at least 5 seeds"),
        ({"model": "transformer"}, "unknown model 'transformer'"),
    ],
)
def test_bad_inputs_fail_early_and_clearly(tmp_path, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        advise(**{"data": "digits", "out": tmp_path / "o", "budget": 10, **kwargs})
    assert not (tmp_path / "o").exists()


def test_family_by_first_word_or_prefix_in_any_case():
    from beyondsgd.advise.core import _candidates

    tiam = _candidates(None, ["tiam"])
    assert {c.family for c in tiam} >= {"TIAM (alternating minimization)"}
    assert "tiam" in {c.algorithm for c in tiam}
    assert {c.algorithm for c in _candidates(None, ["Mult"])} == {
        c.algorithm for c in _candidates(None, ["multiplicative"])
    }
    with pytest.raises(ValueError, match=r"ambiguous algorithm family 'm' \(matches momentum, multiplicative\)"):
        _candidates(None, ["m"])


def test_cli_bad_budget_and_family(capsys, tmp_path):
    assert main(["advise", "--budget", "0", "--out", str(tmp_path)]) == 2
    assert "budget" in capsys.readouterr().err
    assert main(["advise", "--families", "nope", "--budget", "5", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown algorithm family 'nope'" in err and "Traceback" not in err


def test_parse_budget():
    assert parse_budget("10m") == 600 and parse_budget("90s") == 90 and parse_budget("1.5h") == 5400
    assert parse_budget(12) == 12 and parse_budget("30") == 30


def test_progress_bar_shows_trials_pruned_and_best(capsys):
    from beyondsgd.advise.core import _Progress

    bar = _Progress(10, show=True)
    bar.phase, bar.done, bar.pruned, bar.best = "tuning", 7, 3, ("hb", 0.9312)
    bar.tick()
    bar.close()
    err = capsys.readouterr().err
    assert "tuning: 7 trials, 3 pruned, best val acc hb 0.9312" in err


def test_search_ranges_stay_inside_the_hyperparameters_range():
    # DSGD's lr lives on (0, 2): its x/10 range around 1 stops below 2 (a trial at lr > 2 is refused).
    from beyondsgd.advise.core import _candidates

    (dsgd,) = [c for c in _candidates(["dsgd"], None) if c.algorithm == "dsgd"]
    lo, hi = dsgd.space["lr"]
    assert lo == 0.1 and 1.9 < hi < 2.0
