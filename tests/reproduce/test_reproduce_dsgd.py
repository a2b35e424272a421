"""The DSGD reproduction end to end, shrunk to a few iterations per setting."""

import json

import torch

from beyondsgd.reproduce import ReproduceContext, get_reproduction
from beyondsgd.reproduce import dsgd as repro


def test_reproduce_dsgd_writes_report_plots_and_bound_check(tmp_path, monkeypatch):
    real = repro._settings

    def tiny(quick, datasets, preset="default"):
        return [
            repro.Setting(s.name, s.dataset, s.activation, s.mode, s.batch_size, 12, 4)
            for s in real(quick, datasets, preset)
        ]

    monkeypatch.setattr(repro, "_settings", tiny)
    ctx = ReproduceContext(out=tmp_path, quick=True, device=torch.device("cpu"), progress=False)
    report = get_reproduction("dsgd").run(ctx)
    text = report.read_text()
    for name in (
        "loss_vs_iteration.png",
        "loss_vs_time.png",
        "stationarity.png",
        "layer_frequency.png",
        "curves.csv",
        "decrease_checks.csv",
        "bound_check.json",
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
