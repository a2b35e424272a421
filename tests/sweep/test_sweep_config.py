"""Sweep configs: clear errors for bad input, deterministic search spaces."""

import pytest

from beyondsgd.sweep.config import (
    ConfigError,
    Dim,
    final_tasks,
    load_config,
    parse_config,
    trials,
    tuning_tasks,
)

PROBLEM = {"name": "d", "dataset": "digits", "epochs": 1}


def cfg(**kw):
    base = {"problems": [dict(PROBLEM)], "algorithms": {"sgd": {"lr": [0.01, 0.1]}}}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "raw,needle",
    [
        ({}, "problems: expected a non-empty list"),
        (cfg(problems=[]), "problems: expected a non-empty list"),
        (cfg(problems=[{"dataset": "imagenet"}]), "problems[0].dataset: unknown dataset 'imagenet'"),
        (cfg(problems=[{"dataset": "digits", "model": "resnet"}]), "problems[0].model: unknown model 'resnet'"),
        (cfg(problems=[{"dataset": "digits", "epochs": 0}]), "problems[0].epochs: expected an integer >= 1, got 0"),
        (cfg(problems=[{"dataset": "digits", "batch_size": -3}]), "problems[0].batch_size"),
        (cfg(problems=[{"dataset": "digits", "target": {"f1": 0.9}}]), "problems[0].target: unknown metric 'f1'"),
        (cfg(problems=[{"dataset": "digits", "epoch": 3}]), "problems[0]: unknown key(s) epoch"),
        (cfg(problems=[PROBLEM, PROBLEM]), "duplicate problem name(s) d"),
        (cfg(algorithms={"nope": {}}), "algorithms.nope: unknown algorithm 'nope'"),
        (cfg(algorithms={"sgd": {"lr": [0.1, -1.0]}}), "algorithms.sgd.lr: invalid lr=-1.0"),
        (cfg(algorithms={"sgd": {"lrr": [0.1]}}), "unknown hyperparameter 'lrr'"),
        (cfg(algorithms={"sgd": {"lr": {"log_uniform": [0.0, 1.0]}}}), "bounds must be > 0"),
        (cfg(algorithms={"sgd": {"lr": {"log_uniform": [1.0, 0.1]}}}), "low < high"),
        (cfg(algorithms={"sgd": {"lr": {"normal": [0, 1]}}}), "unknown search kind 'normal'"),
        (cfg(algorithms={"sgd": {"lr": {"grid": []}}}), "non-empty list"),
        (
            cfg(algorithms={"sgd": {"lr": {"log_uniform": [1e-3, 1.0]}}}, search={"method": "grid"}),
            "method=grid cannot enumerate continuous dimensions ['lr']",
        ),
        (cfg(search={"method": "bayes"}), "search.method: expected one of auto, grid, random, tpe"),
        (cfg(search={"trials": 0}), "search.trials: expected an integer >= 1"),
        (cfg(search={"validation_fraction": 1.5}), "search.validation_fraction"),
        (cfg(search={"budget": 3}), "search: unknown key(s) budget"),
        (cfg(seeds=0), "seeds: expected an integer >= 1"),
        (cfg(seed=3), "config: unknown key(s) seed"),
        (cfg(algorithms={}), "no algorithm to run"),
    ],
)
def test_config_errors_name_the_entry(raw, needle):
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert needle in str(err.value)


def test_skip_missing_records_the_note():
    c = parse_config(cfg(algorithms={"sgd": {}, "future_alg": {}}, skip_missing=True))
    assert list(c.spaces) == ["sgd"] and "future_alg" in c.skipped


def test_families_all_includes_every_algorithm_with_auto_lr_grid():
    from beyondsgd.bench import algorithm_info, available_algorithms

    c = parse_config(cfg(algorithms={}, families=["all"]))
    assert set(c.spaces) == set(available_algorithms())
    lr = algorithm_info("adam").defaults["lr"]
    assert c.spaces["adam"]["lr"].values == pytest.approx([lr * f for f in (0.1, 0.3, 1, 3, 10)])


def test_grid_and_random_trials():
    space = {"lr": Dim("grid", (0.1, 0.01)), "momentum": Dim("grid", (0.0, 0.9))}
    assert trials(space, "grid", 1, 0) == [
        {"lr": 0.1, "momentum": 0.0},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.01, "momentum": 0.0},
        {"lr": 0.01, "momentum": 0.9},
    ]
    assert len(trials(space, "auto", 4, 0)) == 4  # small discrete space: enumerated
    cont = {"lr": Dim("log_uniform", (), 1e-4, 1.0)}
    a, b = trials(cont, "random", 50, 7), trials(cont, "random", 50, 7)
    assert a == b and len(a) == 50  # deterministic
    lrs = [p["lr"] for p in a]
    assert all(1e-4 <= x <= 1.0 for x in lrs)
    # log-uniform: about half the draws below the geometric midpoint 1e-2
    assert 15 <= sum(x < 1e-2 for x in lrs) <= 35
    assert trials(cont, "random", 50, 8) != a


def test_yaml_and_toml_files_and_plan(tmp_path):
    y = tmp_path / "s.yaml"
    y.write_text(
        "problems:\n  - {dataset: digits, epochs: 1}\nalgorithms:\n  sgd: {lr: [0.01, 0.1]}\n"
        "  adam: {betas: [[0.9, 0.999]]}\nseeds: 2\n"
    )
    t = tmp_path / "s.toml"
    t.write_text(
        "seeds = 2\nalgorithms = {sgd = {lr = [0.01, 0.1]}, adam = {betas = [[0.9, 0.999]]}}\n"
        '[[problems]]\ndataset = "digits"\nepochs = 1\n'
    )
    a, b = load_config(y), load_config(t)
    assert a.fingerprint() == b.fingerprint()
    assert a.spaces["adam"]["betas"].values == ((0.9, 0.999),)  # nested lists become tuples
    tune = tuning_tasks(a)
    assert [(x.algorithm, x.trial) for x in tune] == [("sgd", 0), ("sgd", 1)]  # adam: a single setting
    assert len({x.key for x in tune}) == 2
    # With no tuning results every trial scores -inf and the first is chosen; 2 algs x 2 seeds.
    fin = final_tasks(a, {})
    assert len(fin) == 4 and len({x.key for x in fin}) == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("problems: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_the_documented_example_config_is_valid():
    from pathlib import Path

    c = load_config(Path(__file__).resolve().parents[2] / "docs" / "examples" / "sweep.yaml")
    assert [p.name for p in c.problems] == ["digits-mlp", "mnist1d-mlp"]
    assert len(tuning_tasks(c)) == 2 * (8 + 4 + 5)  # sgd: 8 random draws, adam: 4-point grid, rmsprop: auto


def test_auto_space_finds_the_step_size_or_keeps_defaults():
    from beyondsgd import optim
    from beyondsgd.sweep.config import auto_space
    from beyondsgd.validation import NONNEGATIVE

    optim.register(optim.OptimizerSpec("test_eta", torch_sgd_eta, {"eta_out": NONNEGATIVE}, {"eta_out": 0.02}))
    optim.register(optim.OptimizerSpec("test_nostep", torch_sgd_eta, {"rho": NONNEGATIVE}, {"rho": 1.0}))
    try:
        assert auto_space("test_eta")["eta_out"].values == pytest.approx((0.002, 0.006, 0.02, 0.06, 0.2))
        assert auto_space("test_nostep") == {}
    finally:
        optim.registry._REGISTRY.pop("test_eta")
        optim.registry._REGISTRY.pop("test_nostep")


def torch_sgd_eta(params, eta_out=0.02, rho=1.0):
    import torch

    return torch.optim.SGD(params, lr=eta_out)


def test_auto_with_a_named_hyperparameter():
    c = parse_config(cfg(algorithms={"sgd": "auto:lr"}))
    assert c.spaces["sgd"]["lr"].values == pytest.approx((0.005, 0.015, 0.05, 0.15, 0.5))
    with pytest.raises(ConfigError, match="auto:momentum needs a positive numeric registered default"):
        parse_config(cfg(algorithms={"sgd": "auto:momentum"}))


def test_a_data_file_as_dataset_relative_to_the_config(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    (tmp_path / "sweep.yaml").write_text(
        "problems:\n  - {dataset: data/mine.csv, epochs: 1, dataset_options: {target: label}}\n"
        "algorithms:\n  sgd: {lr: [0.1]}\n"
    )
    c = load_config(tmp_path / "sweep.yaml")
    (prob,) = c.problems
    assert prob.dataset == str((tmp_path / "data" / "mine.csv").resolve()) and prob.name == "mine-mlp"
    with pytest.raises(ConfigError, match=r"problems\[0\]\.dataset: data file '.*missing.csv' not found"):
        parse_config(cfg(problems=[{"dataset": "missing.csv"}]), base=tmp_path)
    from beyondsgd.sweep.run import _probe

    bad = tmp_path / "bad.csv"
    bad.write_text("a,label\nx,1\ny,0\n")
    with pytest.raises(ValueError, match="feature column 'a' is not numeric"):
        _probe(parse_config(cfg(problems=[{"dataset": str(bad), "epochs": 1}])))


def test_auto_space_keeps_to_the_hyperparameters_range():
    # DSGD's lr lives on (0, 2) (its guaranteed decrease): the multiples 3 and 10 are left out.
    from beyondsgd.sweep.config import auto_space

    assert auto_space("dsgd")["lr"].values == pytest.approx((0.1, 0.3, 1.0))
