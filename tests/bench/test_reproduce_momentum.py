"""The momentum reproduction end to end on a tiny configuration (no network access)."""

import csv

import torch

from beyondsgd.bench import evidence as ev
from beyondsgd.bench.reproductions import ReproduceContext, get_reproduction
from beyondsgd.bench.reproductions import momentum as repro
from beyondsgd.data import DatasetUnavailableError


def test_tiny_reproduction_writes_report_plots_and_data(tmp_path, monkeypatch):
    real_load = repro.load_dataset

    def offline(name, **kw):
        if name == "cifar10":
            raise DatasetUnavailableError("offline in tests")
        return real_load(name, **kw)

    monkeypatch.setattr(repro, "load_dataset", offline)
    cfg = repro.MomentumConfig(n=24, widths=(64, 256), iterations=40, datasets=(("cifar10", "digits"),), seeds=(0, 1))
    report = repro.run_momentum(tmp_path, cfg, torch.device("cpu"))
    text = report.read_text()
    assert "stand-in digits" in text and "Did NAG beat HB" in text
    assert ev.VERDICT_RULE.split(":")[0] in text and "Combined" in text  # the rule next to the verdicts
    for name in ("loss_curves.png", "ode_curves.png", "weight_change.png", "results.csv", "curves.csv"):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert {r["method"] for r in rows} == {"gd", "hb", "nag"} and len(rows) == 12  # 3 methods x 2 widths x 2 seeds
    for r in rows:  # every method trains, and momentum at the tuned parameters beats GD
        assert float(r["final_loss_rel"]) < 0.1
    final = {(r["method"], r["width"]): float(r["final_loss_rel"]) for r in rows if r["seed"] == "0"}
    assert final[("hb", "256")] < final[("gd", "256")] and final[("nag", "256")] < final[("gd", "256")]
    assert get_reproduction("momentum").run is repro._run


def _rows(pairs):
    return [
        {"dataset": "d", "width": 10, "seed": sd, "method": m, "iters_to_eps": k}
        for sd, (hb, nag) in enumerate(pairs)
        for m, k in (("hb", hb), ("nag", nag))
    ]


def test_nag_vs_hb_verdict_on_hand_made_rows():
    cfg = repro.MomentumConfig(seeds=(0, 1, 2, 3, 4))
    # ~30% fewer iterations on every seed, delta = 10% -> holds
    (v,) = repro.nag_vs_hb(_rows([(100, 70), (104, 72), (98, 69), (101, 71), (99, 70)]), [10], 200, cfg).values()
    assert v.word == "holds" and v.diff.n == 5
    # equal within 1% -> the CI excludes a 10% gain -> does not hold
    (v,) = repro.nag_vs_hb(_rows([(100, 101), (102, 101), (99, 100), (100, 100), (101, 100)]), [10], 200, cfg).values()
    assert v.word == "does not hold"
    # neither reaches eps: both count as budget + 1 -> no difference at all
    (v,) = repro.nag_vs_hb(_rows([(None, None)] * 5), [10], 200, cfg).values()
    assert v.diff.mean == 0 and v.word == "does not hold"
    # two seeds only (quick): decided with the quick minimum, and the report says so
    cfg2 = repro.MomentumConfig(seeds=(0, 1))
    (v,) = repro.nag_vs_hb(_rows([(100, 70), (104, 72)]), [10], 200, cfg2).values()
    assert "n < 2 seeds" in v.rule


def test_config_for_presets_dataset_and_seeds(tmp_path):
    ctx = ReproduceContext(out=tmp_path, quick=False, device=torch.device("cpu"), progress=False)
    assert repro.config_for(ctx) == repro.FULL and len(repro.FULL.seeds) >= 5
    assert repro.FULL.datasets == (("fashion-mnist", "fashion-mnist"),)  # real data, no stand-in
    paper = ReproduceContext(out=tmp_path, quick=False, device=torch.device("cpu"), progress=False, preset="paper")
    assert max(repro.config_for(paper).widths) == 100000 and repro.config_for(paper).n == 1000
    q = ReproduceContext(
        out=tmp_path, quick=True, device=torch.device("cpu"), progress=False, dataset="digits", seeds=3
    )
    cfg = repro.config_for(q)
    assert cfg.datasets == (("digits", "digits"),) and cfg.seeds == (0, 1, 2) and len(repro.QUICK.seeds) >= 2
