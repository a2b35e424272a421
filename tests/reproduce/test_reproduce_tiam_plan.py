"""Sizes of the TIAM reproduction: quick, default, paper preset, --dataset and --seeds."""

import math

import torch

from beyondsgd.reproduce import ReproduceContext
from beyondsgd.reproduce import tiam as repro


def _ctx(tmp_path, **kw):
    return ReproduceContext(out=tmp_path, device=torch.device("cpu"), progress=False, **{"quick": False, **kw})


def test_plans(tmp_path):
    quick = repro.plan(True, _ctx(tmp_path, quick=True))
    assert len(quick.seeds) >= 2
    full = repro.plan(False, _ctx(tmp_path))
    assert len(full.seeds) >= 5 and "fashion-mnist" in full.downloadable and "mnist5k" in full.datasets
    paper = repro.plan(False, _ctx(tmp_path, preset="paper"))
    assert (1000, 1000) in paper.widths and paper.n_train is None
    one = repro.plan(True, _ctx(tmp_path, quick=True, dataset="fashion_mnist", seeds=3))
    assert one.downloadable == ("fashion-mnist",) and one.datasets == () and one.seeds == (0, 1, 2)


class _Fake:
    def __init__(self, finals, time_s=1.0):
        self.status = "ok"
        self.history = [{"test_accuracy": a, "time_s": time_s * (k + 1) / len(finals)} for k, a in enumerate(finals)]

    def final(self, key):
        return self.history[-1][key]


def test_claims_are_paired_over_seeds():
    problem = {
        "tiam": [_Fake([0.5, 0.90 + 0.001 * s]) for s in range(5)],
        "am": [_Fake([0.5, 0.80 + 0.002 * s]) for s in range(5)],
        "dladmm": [_Fake([0.5, 0.70 + 0.003 * s]) for s in range(5)],
        "gd": [_Fake([0.5, 0.85]) for s in range(5)],
        "adam_full": [_Fake([0.5, 0.95 - 0.001 * s]) for s in range(5)],
    }
    cl = repro._claims(problem)
    d = cl["diffs"]["TIAM beats plain AM (equal iterations)"]
    assert d.n == 5 and math.isclose(d.mean, 0.1 - 0.001 * 2, rel_tol=1e-9)
    assert any("adam_full" in k for k in cl["diffs"]) and cl["ties"].best == "adam_full"
    dl = cl["diffs"]["TIAM beats dlADMM (equal iterations)"]
    assert dl.n == 5 and math.isclose(dl.mean, 0.2 - 0.002 * 2, rel_tol=1e-9)


def test_activation_option_selects_one_activation_and_is_refused_where_not_offered(tmp_path, capsys):
    import pytest

    from beyondsgd.cli import main

    leaky = repro.plan(False, _ctx(tmp_path, dataset="mnist5k", activation="leaky_relu"))
    assert leaky.activations == ("leaky_relu",) and leaky.datasets == ("mnist5k",)
    assert repro.plan(False, _ctx(tmp_path)).activations == ("relu",)  # the default full run: ReLU only
    paper = repro.plan(False, _ctx(tmp_path, preset="paper", activation="relu"))
    assert paper.activations == ("relu",)
    ctx = _ctx(tmp_path, dataset="digits", activation="leaky_relu")
    assert ctx.command("tiam") == "beyondsgd reproduce tiam --dataset digits --activation leaky_relu"
    with pytest.raises(ValueError, match="invalid activation='elu'"):
        repro.plan(False, _ctx(tmp_path, activation="elu"))  # dlADMM has no ELU
    with pytest.raises(ValueError, match="invalid activation=''"):
        _ctx(tmp_path, activation="")
    out = str(tmp_path / "r")
    assert main(["reproduce", "tiam", "--quick", "--out", out, "--activation", "tanh"]) == 2
    assert "invalid --activation 'tanh' for reproduction 'tiam': expected one of relu, leaky_relu" in (
        capsys.readouterr().err
    )
    assert main(["reproduce", "dsgd", "--quick", "--out", out, "--activation", "relu"]) == 2
    assert "reproduction 'dsgd' has no --activation option; it is offered by: tiam" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything was created
