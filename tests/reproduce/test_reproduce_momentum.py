"""The momentum reproduction end to end on a tiny configuration (no network access)."""

import csv

import torch

from beyondsgd.data import DatasetUnavailableError
from beyondsgd.reproduce import get_reproduction
from beyondsgd.reproduce import momentum as repro


def test_tiny_reproduction_writes_report_plots_and_data(tmp_path, monkeypatch):
    real_load = repro.load_dataset

    def offline(name, **kw):
        if name == "cifar10":
            raise DatasetUnavailableError("offline in tests")
        return real_load(name, **kw)

    monkeypatch.setattr(repro, "load_dataset", offline)
    cfg = repro.MomentumConfig(n=24, widths=(64, 256), iterations=40, datasets=(("cifar10", "digits"),))
    report = repro.run_momentum(tmp_path, cfg, torch.device("cpu"))
    text = report.read_text()
    assert "stand-in digits" in text and "Did NAG beat HB" in text
    for name in ("loss_curves.png", "ode_curves.png", "weight_change.png", "results.csv", "curves.csv"):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert {r["method"] for r in rows} == {"gd", "hb", "nag"} and len(rows) == 6
    for r in rows:  # every method trains, and momentum at the tuned parameters beats GD
        assert float(r["final_loss_rel"]) < 0.1
    final = {(r["method"], r["width"]): float(r["final_loss_rel"]) for r in rows}
    assert final[("hb", "256")] < final[("gd", "256")] and final[("nag", "256")] < final[("gd", "256")]
    assert get_reproduction("momentum").run is repro._run
