import math

from beyondsgd.bench import Experiment, RunResult
from beyondsgd.bench.report import markdown_table, summarize


def run(alg, seed, accs, status="ok", times=None):
    times = times or [float(i) for i in range(len(accs))]
    hist = [
        {"epoch": i, "step": i, "test_accuracy": a, "train_loss": 1.0 / (i + 1), "time_s": t}
        for i, (a, t) in enumerate(zip(accs, times))
    ]
    return RunResult(
        Experiment(algorithm=alg, seed=seed),
        {"lr": 0.1},
        hist,
        status=status,
        diverged_step=None if status == "ok" else 3,
    )


def test_summary_statistics_by_hand():
    rows = summarize(
        [
            run("a", 0, [0.1, 0.5, 0.8]),
            run("a", 1, [0.1, 0.7, 0.9]),
            run("b", 0, [0.1, 0.95, math.nan], status="diverged"),
        ],
        target_accuracy=0.75,
    )
    a, b = rows  # sorted by final accuracy, diverged-only algorithms last
    assert a["algorithm"] == "a" and b["algorithm"] == "b"
    assert a["final_test_accuracy_mean"] == math.fsum([0.8, 0.9]) / 2
    assert math.isclose(a["final_test_accuracy_std"], math.sqrt(((0.8 - 0.85) ** 2 + (0.9 - 0.85) ** 2) / 1))
    assert a["time_to_target_s_mean"] == 2.0 and a["reached_target"] == "2/2"
    # The diverged run is counted but never enters the means, even though it reached 0.95 before blowing up.
    assert b["diverged"] == 1 and b["runs"] == 1
    assert math.isnan(b["final_test_accuracy_mean"]) and math.isnan(b["time_to_target_s_mean"])
    assert "| b | undecided | — | — |" in markdown_table(rows, 0.75)


def test_accuracy_intervals_stay_inside_zero_one():
    rows = summarize([run("a", s, [0.5, acc]) for s, acc in enumerate((0.99, 1.0, 0.97))], target_accuracy=0.9)
    (a,) = rows
    assert a["final_test_accuracy_ci_high"] == 1.0 and a["final_test_accuracy_ci_low"] < a["final_test_accuracy_mean"]


def test_time_panels_of_a_family_that_diverged_at_its_start(tmp_path):
    # Before: every point of the panel was at t = 0, and the log time axis raised
    # "Data cannot be log-scaled", so no report was written for the whole comparison.
    from beyondsgd.bench.plots import plot_family_panels

    rows = [  # (as `compare --algorithms hb,madam --set hb.lr=1000` wrote them; no baseline in the panels)
        {"algorithm": "hb", "seed": 0, "step": 0, "epoch": 0, "time_s": 0.0, "train_loss": 2.3, "test_accuracy": 0.1},
        {
            "algorithm": "madam",
            "seed": 0,
            "step": 0,
            "epoch": 0,
            "time_s": 0.0,
            "train_loss": 2.3,
            "test_accuracy": 0.1,
        },
        {
            "algorithm": "madam",
            "seed": 0,
            "step": 1,
            "epoch": 1,
            "time_s": 0.5,
            "train_loss": 0.05,
            "test_accuracy": 0.9,
        },
    ]
    families = {"hb": "momentum", "madam": "multiplicative"}
    out = plot_family_panels(rows, tmp_path / "t.png", "time_s", families)
    assert out.stat().st_size > 0
