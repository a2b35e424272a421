"""Optuna-backed search (``method: tpe``): distributions, pruning, resume after SIGKILL, shared studies."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from beyondsgd.cli import main  # noqa: E402
from beyondsgd.sweep.config import ConfigError, parse_config  # noqa: E402
from beyondsgd.sweep.executor import Dispatcher  # noqa: E402
from beyondsgd.sweep.optuna_search import (  # noqa: E402
    TrialReporter,
    distributions,
    open_storage,
    open_studies,
    run_tpe_tuning,
    trial_counts,
)
from beyondsgd.sweep.run import run_sweep  # noqa: E402
from beyondsgd.sweep.store import RunStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _cfg(search=None, algorithms=None, epochs=6):
    return parse_config(
        {
            "name": "opt",
            "problems": [
                {
                    "name": "d",
                    "dataset": "digits",
                    "model": "mlp",
                    "model_options": {"widths": [16]},
                    "dataset_options": {"n_train": 300},
                    "epochs": epochs,
                    "batch_size": 64,
                }
            ],
            "algorithms": algorithms or {"sgd": {"lr": {"log_uniform": [0.001, 1.0]}}},
            "search": {"method": "tpe", "trials": 8, **(search or {})},
            "seeds": 1,
        }
    )


def test_config_maps_onto_optuna_distributions():
    cfg = _cfg(
        algorithms={
            "adam": {
                "lr": {"log_uniform": [1e-4, 1e-1]},
                "weight_decay": {"uniform": [0.0, 0.01]},
                "betas": {"choice": [[0.9, 0.999], [0.8, 0.99]]},
                "eps": [1e-8, 1e-6],
                "amsgrad": False,
            }
        }
    )
    dists, decode = distributions(cfg.spaces["adam"])
    F, C = optuna.distributions.FloatDistribution, optuna.distributions.CategoricalDistribution
    assert dists["lr"] == F(1e-4, 1e-1, log=True)
    assert dists["weight_decay"] == F(0.0, 0.01)
    assert dists["eps"] == C([1e-8, 1e-6])
    assert dists["betas"] == C([0, 1])  # tuples are not Optuna choices: chosen by index
    assert "amsgrad" not in dists  # fixed: not searched
    hp = decode({"lr": 0.01, "weight_decay": 0.0, "betas": 1, "eps": 1e-6})
    assert hp == {"amsgrad": False, "betas": (0.8, 0.99), "eps": 1e-6, "lr": 0.01, "weight_decay": 0.0}
    # An auto space (a 5-point lr grid) becomes one categorical dimension.
    cfg = _cfg(algorithms={"sgd": "auto"})
    assert distributions(cfg.spaces["sgd"])[0] == {"lr": C([0.005, 0.015, 0.05, 0.15, 0.5])}


@pytest.mark.parametrize(
    "search, msg",
    [
        ({"method": "bayes"}, "search.method: expected one of auto, grid, random, tpe"),
        ({"pruner": "hyperband"}, "search.pruner: expected one of none, median, asha"),
        ({"method": "grid", "pruner": "asha"}, "needs method: tpe"),
        ({"tuning_seeds": 2}, "search.tuning_seeds"),
    ],
)
def test_bad_search_blocks_fail_early(search, msg):
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(")):
        _cfg(search=search)


@pytest.mark.parametrize(
    "url, msg",
    [
        ("not-a-url", "expected an RDB URL"),
        ("sqlite:////nonexistent-dir-15/x/optuna.db", "cannot be opened"),
        ("postgresql://nobody@127.0.0.1:9/nodb", "cannot be opened"),
    ],
)
def test_unreachable_storage_is_a_clear_error(tmp_path, url, msg, capsys):
    with pytest.raises(ConfigError, match=msg):
        open_storage(url)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "problems: [{dataset: digits, epochs: 1}]\nalgorithms: {sgd: {lr: [0.1, 0.2]}}\nsearch: {method: tpe}\n"
    )
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o"), "--storage", url]) == 2
    err = capsys.readouterr().err
    assert "--storage" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing written before the storage was checked


def test_storage_flag_needs_tpe(tmp_path):
    cfg = _cfg(search={"method": "grid"}, algorithms={"sgd": {"lr": [0.1, 0.2]}})
    with pytest.raises(ConfigError, match="--storage is for search method tpe"):
        run_sweep(cfg, tmp_path / "o", storage="sqlite:///x.db")


def _fake_rows(lr: float, epochs: int):
    """A fake learning curve: accuracy rises to a ceiling that peaks at lr = 0.1."""
    ceiling = max(0.05, 1.0 - abs(math.log10(lr) + 1.0) / 3.0)
    return [{"epoch": e, "step": e, "test_accuracy": ceiling * (1 - 0.5**e), "time_s": 0.0} for e in range(epochs + 1)]


class FakeDispatcher(Dispatcher):
    """Runs a fake objective through the real TrialReporter (the pruner sees every epoch)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs, self.trained = epochs, 0

    def submit(self, task):
        rep = TrialReporter(task.optuna)
        rec = {"key": task.key, "task": {"problem": task.problem, "algorithm": task.algorithm, "trial": task.trial}}
        try:
            for row in _fake_rows(task.experiment["hyperparams"]["lr"], self.epochs):
                self.trained += row["epoch"] > 0
                rep(row)
            rec.update(status="ok", result={"history": rep.rows})
        except optuna.TrialPruned:
            rec.update(status="pruned", result={"history": rep.rows})
        self._done.append((task, rec))


@pytest.mark.parametrize("pruner", ["median", "asha"])
def test_pruning_actually_stops_trials(tmp_path, pruner):
    cfg = _cfg(search={"pruner": pruner, "trials": 16}, epochs=9)
    store = RunStore(tmp_path)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    d = FakeDispatcher(epochs=9)
    run_tpe_tuning(cfg, store, url, d)
    counts = trial_counts(cfg, url)["opt/d/sgd"]
    assert counts["complete"] + counts["pruned"] == 16 and counts["running"] == counts["fail"] == 0
    assert counts["pruned"] >= 4  # the pruner stopped trials ...
    assert d.trained < 16 * 9 * 0.8  # ... and that saved epochs
    pruned = [r for r in store.records() if r["status"] == "pruned"]
    assert pruned and all(len(r["result"]["history"]) < 10 for r in pruned)
    # Without a pruner every trial runs to the end.
    cfg0 = _cfg(search={"pruner": "none", "trials": 6}, epochs=9)
    d0 = FakeDispatcher(epochs=9)
    run_tpe_tuning(cfg0, RunStore(tmp_path / "none"), f"sqlite:///{tmp_path / 'n.db'}", d0)
    assert d0.trained == 6 * 9


def test_tpe_sweep_runs_finals_of_the_best_trial_and_is_repeatable(tmp_path):
    cfg = _cfg(search={"trials": 4, "pruner": "median"}, epochs=3)
    a = run_sweep(cfg, tmp_path / "a", workers=1, threads=1, verbose=False)
    b = run_sweep(cfg, tmp_path / "b", workers=1, threads=1, verbose=False, report=False)
    ra, rb = RunStore(tmp_path / "a"), RunStore(tmp_path / "b")
    assert ra.keys() == rb.keys() and a.ran == b.ran
    for rec in ra.records():  # same seed, one worker: the same trials, the same numbers
        other = rb.get(rec["key"])["result"]["history"]
        assert [h["test_accuracy"] for h in rec["result"]["history"]] == [h["test_accuracy"] for h in other]
    tune = [r for r in ra.records() if r["task"]["phase"] == "tune"]
    final = [r for r in ra.records() if r["task"]["phase"] == "final"]
    assert len(tune) <= 4 and len(final) == 1
    study = optuna.load_study(study_name="opt/d/sgd", storage=f"sqlite:///{tmp_path / 'a' / 'optuna.db'}")
    best = study.best_trial
    assert final[0]["task"]["experiment"]["hyperparams"] == json.loads(best.user_attrs["hyperparams"])
    report = (tmp_path / "a" / "report.md").read_text()
    assert "method tpe, pruner median" in report and "pruned trials" in report


CONFIG = """\
name: kill-tpe
problems:
  - {name: d, dataset: digits, model: mlp, model_options: {widths: [16]}, dataset_options: {n_train: 300},
     epochs: 3, batch_size: 64}
algorithms:
  sgd: {lr: {log_uniform: [0.001, 1.0]}}
  adam: {lr: {log_uniform: [0.0001, 0.1]}}
search: {method: tpe, trials: 5, pruner: none}
seeds: 1
"""


def test_sigkill_then_resume_from_the_study_loses_no_finished_trial(tmp_path, capsys, sweep_killed_after):
    """Two local worker processes share the study; SIGKILL mid-tuning; --resume finishes the budget."""
    cfg_path = tmp_path / "sweep.yaml"
    cfg_path.write_text(CONFIG)
    out = tmp_path / "sw"
    sweep_killed_after(cfg_path, out, runs=3, timeout=120)
    url = f"sqlite:///{out / 'optuna.db'}"
    cfg = parse_config(__import__("yaml").safe_load(CONFIG))
    finished_before = {
        (s.name, t.number): (t.params, t.value)
        for s in open_studies(cfg, url)
        for t in s.trials(states=(optuna.trial.TrialState.COMPLETE,))
    }
    stored_before = {p.name: p.read_bytes() for p in (out / "runs").glob("*.json")}
    assert 3 <= len(stored_before) < 10, "the kill must land mid-tuning for this test to mean anything"

    assert main(["sweep", str(cfg_path), "--out", str(out), "--resume", "--workers", "1", "--quiet"]) == 0
    msg = capsys.readouterr().out
    studies = open_studies(cfg, url)
    for s in studies:
        counted = [t for t in s.trials() if not t.user_attrs.get("stale") and not t.user_attrs.get("surplus")]
        assert len(counted) == 5 and all(t.state == optuna.trial.TrialState.COMPLETE for t in counted)
        for t in s.trials():  # a stale trial is one the kill interrupted: it has no stored record
            if t.user_attrs.get("stale"):
                # (a kill between optuna's ask and the trial's "key" attribute leaves no key: nothing
                # was stored for it either; CI hit that once)
                key = t.user_attrs.get("key")
                assert key is None or key + ".json" not in stored_before
    for (name, number), (params, value) in finished_before.items():  # every finished trial kept, unchanged
        t = next(s for s in studies if s.name == name).study.trials[number]
        assert t.state == optuna.trial.TrialState.COMPLETE and (t.params, t.value) == (params, value)
    for name, data in stored_before.items():
        assert (out / "runs" / name).read_bytes() == data
    store = RunStore(out)
    tune_keys = [r["key"] for r in store.records() if r["task"]["phase"] == "tune"]
    trained = [
        t.user_attrs["key"]
        for s in studies
        for t in s.trials()
        if t.state == optuna.trial.TrialState.COMPLETE and "duplicate_of" not in t.user_attrs
    ]
    assert sorted(tune_keys) == sorted(trained)  # one record per trained trial, none twice
    assert len(trained) >= 9  # resuming does not re-propose the points tried before the kill
    n_tune_before = sum(1 for n in stored_before if "__tune" in n)
    assert f"{len(trained) - n_tune_before + 2} run(s) executed" in msg  # the rest of the tuning, then 2 finals


SHARED = """\
import sys, time, random
from beyondsgd.sweep.store import RunStore
from beyondsgd.sweep.config import parse_config
from beyondsgd.sweep.optuna_search import run_tpe_tuning
sys.path.insert(0, {tests!r})
from test_sweep_optuna import FakeDispatcher, _cfg

class Slow(FakeDispatcher):
    def submit(self, task):
        time.sleep(0.05 + 0.1 * random.random())
        super().submit(task)

cfg = _cfg(search={{"trials": 12, "pruner": "none"}}, epochs=3)
run_tpe_tuning(cfg, RunStore(sys.argv[1]), sys.argv[2], Slow(3))
"""


def test_two_processes_share_one_study_without_duplicate_trials(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(SHARED.format(tests=str(Path(__file__).parent))))
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # Create the study first (both processes would otherwise race to create it).
    open_studies(_cfg(search={"trials": 12, "pruner": "none"}, epochs=3), url)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / "runs"), url], env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=180) == 0, p.stderr.read().decode()[-2000:]
    study = optuna.load_study(study_name="opt/d/sgd", storage=url)
    counted = [t for t in study.trials if not t.user_attrs.get("surplus")]
    assert len(counted) == 12 and all(t.state == optuna.trial.TrialState.COMPLETE for t in counted)
    assert len({t.number for t in study.trials}) == len(study.trials)
    keys = [t.user_attrs["key"] for t in counted if "key" in t.user_attrs]
    assert len(keys) == len(set(keys))  # no trial ran twice
    owners = {t.user_attrs["driver"] for t in counted if "driver" in t.user_attrs}
    assert len(owners) == 2  # both processes ran trials of the one study
    surplus = [t for t in study.trials if t.user_attrs.get("surplus")]
    assert all("key" not in t.user_attrs for t in surplus)  # a surplus trial never ran
    assert len(list((tmp_path / "runs" / "runs").glob("*.json"))) == len(keys)


def test_journal_file_storage_works_like_the_database(tmp_path):
    cfg = _cfg(search={"trials": 3, "pruner": "none"}, epochs=2)
    url = f"journal:{tmp_path / 'studies.log'}"
    run_tpe_tuning(cfg, RunStore(tmp_path / "runs"), url, FakeDispatcher(epochs=2))
    assert trial_counts(cfg, url)["opt/d/sgd"]["complete"] == 3
    assert (tmp_path / "studies.log").stat().st_size > 0


def test_a_driver_killed_between_creating_and_labelling_a_trial_leaves_no_unowned_running_trial(tmp_path, monkeypatch):
    """The kill window inside ``ask``: the trial exists but its labels were never written. It must still name
    its driver, so the next start settles it (failed, stale) instead of counting it as running for ever."""
    cfg = _cfg(search={"trials": 3, "pruner": "none"}, epochs=2)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    (study,) = open_studies(cfg, url)

    def killed(self, key, value):
        raise KeyboardInterrupt  # stands for SIGKILL: nothing after this point of ask() runs

    with monkeypatch.context() as m:
        m.setattr(optuna.trial.Trial, "set_user_attr", killed)
        with pytest.raises(KeyboardInterrupt):
            study.ask()
    (left,) = study.trials()
    assert left.state == optuna.trial.TrialState.RUNNING and "driver" in left.user_attrs
    (again,) = open_studies(cfg, url)  # the next start (this pid counts as a fresh process, see _alive)
    assert again.recover(RunStore(tmp_path)) == 1
    (settled,) = again.trials()
    assert settled.state == optuna.trial.TrialState.FAIL and settled.user_attrs["stale"]
    assert again.counted() == 0
    run_tpe_tuning(cfg, RunStore(tmp_path), url, FakeDispatcher(epochs=2))
    assert again.counted() == 3 and trial_counts(cfg, url)["opt/d/sgd"]["complete"] == 3
