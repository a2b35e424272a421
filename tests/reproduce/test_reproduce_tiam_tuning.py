"""TIAM reproduction: every method is tuned on a validation split of the training set, never on test."""

import csv
import math

import pytest
import torch

from beyondsgd.data import load_dataset
from beyondsgd.reproduce import ReproduceContext
from beyondsgd.reproduce import tiam as repro
from beyondsgd.reproduce.common import validation_split


def _tiny_plan(quick, ctx=None):
    return repro.Plan(
        datasets=("digits",),
        downloadable=(),
        activations=("relu",),
        iterations=3,
        seeds=(0, 1),
        am_variants=("tiam", "am"),
        mini_batch_am=False,
        widths=((16,),),
        tune_seeds=(0,),
    )


def test_validation_rows_are_training_rows_disjoint_from_the_rows_tuned_on():
    d = load_dataset("digits")
    n = d.X_train.shape[0]
    n_val = repro._validation_rows(d)
    tune_data, _ = validation_split(d, n_val, seed=0)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    val, fit = perm[:n_val], perm[n_val:]
    assert set(val.tolist()).isdisjoint(fit.tolist()) and len(val) + len(fit) == n
    assert torch.equal(tune_data.X_test, d.X_train[val]) and torch.equal(tune_data.X_train, d.X_train[fit])
    assert tune_data.n_test == n_val == round(repro.VAL_FRACTION * n)


def test_choose_takes_the_best_validation_mean_diverged_is_worst_ties_go_to_the_middle():
    cells = []
    for label, (_, grid) in repro.TUNE_GRIDS.items():
        for k, v in enumerate(grid):
            for seed, noise in ((0, 0.01), (1, -0.01)):
                acc = {"tiam": [0.5, 0.6, 0.7], "gd": [0.8, 0.7, math.nan], "am": [0.4, 0.4, 0.4]}.get(
                    label, [0.9, 0.5, 0.5]
                )[k]
                cells.append({"method": label, "value": v, "val_accuracy": acc + noise, "seed": seed})
    chosen = repro.choose(cells)
    assert chosen["tiam"] == repro.TUNE_GRIDS["tiam"][1][2]
    assert chosen["gd"] == repro.TUNE_GRIDS["gd"][1][0]  # the diverged (NaN) cell is never picked
    assert chosen["am"] == repro.TUNE_GRIDS["am"][1][1]  # all tied: the middle (the default)
    assert chosen["adam_mb"] == repro.TUNE_GRIDS["adam_mb"][1][0]


def test_grids_have_equal_size_for_every_method():
    sizes = {len(grid) for _, grid in repro.TUNE_GRIDS.values()}
    assert sizes == {3}
    assert set(repro.TUNE_GRIDS) == {"tiam", "am", "dladmm", *repro.GRADIENT}


def test_tuning_never_reads_test_and_the_report_lists_grids_and_choices(tmp_path, monkeypatch, guarded_digits):
    torch.set_num_threads(1)
    data = guarded_digits
    object.__setattr__(data, "armed", True)
    monkeypatch.setattr(repro, "plan", _tiny_plan)
    monkeypatch.setattr(repro, "_load", lambda *a, **k: data)
    seen: list = []
    real_run, real_tune = repro._run, repro.tune

    def spy_run(label, alg, hp, d, *args, **kwargs):
        seen.append((label, d))
        return real_run(label, alg, hp, d, *args, **kwargs)

    def tune(*args, **kwargs):
        out = real_tune(*args, **kwargs)
        object.__setattr__(data, "armed", False)  # tuning is over: the headline may read the test split
        return out

    monkeypatch.setattr(repro, "_run", spy_run)
    monkeypatch.setattr(repro, "tune", tune)
    ctx = ReproduceContext(out=tmp_path, quick=True, device=torch.device("cpu"), progress=False)
    text = repro.run(ctx).read_text()
    # every tuning run trained and was scored on the split of the training set, the headline on the real data
    tune_runs = [d for label, d in seen if label.startswith("tune-")]
    assert tune_runs and all(d is not data and d.n_test == repro._validation_rows(data) for d in tune_runs)
    assert all(d is data for label, d in seen if not label.startswith("tune-"))
    # the cells and the choices are in tuning.csv; the choice is the best validation mean
    cells = list(csv.DictReader((tmp_path / "tuning.csv").open()))
    assert {c["method"] for c in cells} == set(repro.TUNE_GRIDS)
    for label, (knob, grid) in repro.TUNE_GRIDS.items():
        mine = [c for c in cells if c["method"] == label]
        assert len(mine) == len(grid) and all(c["knob"] == knob for c in mine)
        best = max(float(c["val_accuracy"]) if c["val_accuracy"] != "nan" else -1 for c in mine)
        picked = [c for c in mine if c["chosen"] == "True"]
        assert len(picked) == 1 and float(picked[0]["val_accuracy"]) == pytest.approx(best)
        # the report's tuning table shows the grid and the chosen value, the headline ran at it
        section = text.split("## Tuning")[1].split("## Results")[0]
        row = next(line for line in section.splitlines() if line.startswith((f"| {label} |", f"| {label} (")))
        assert ", ".join(f"{v:g}" for v in grid) in row and f"**{float(picked[0]['value']):g}**" in row
    summary = list(csv.DictReader((tmp_path / "summary.csv").open()))
    chosen = {c["method"]: float(c["value"]) for c in cells if c["chosen"] == "True"}
    for r in summary:
        label = r["algorithm"]
        assert r["tuned_setting"].startswith(f"{repro.TUNE_GRIDS[label][0]}={chosen[label]:g}")
    assert "## Tuning (validation split of the training set, equal budget)" in text
    assert "TIAM beats dlADMM (equal iterations)" in text and "TIAM vs dlADMM" in text
