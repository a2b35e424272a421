"""compare on your own data and model, the report's verdict, and runs that survive interruption."""

import json
import math
import os
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from beyondsgd.bench import Experiment, RunResult
from beyondsgd.bench import compare as compare_mod
from beyondsgd.bench.compare import CompareConfig, run_compare
from beyondsgd.bench.report import markdown_table, summarize, verdict_lines
from beyondsgd.bench.threads import SMALL_WORK, busy_message, choose_threads
from beyondsgd.cli import main

SMALL = dict(algorithms=["sgd", "adam"], seeds=2, epochs=2, model_options={"widths": (16,)})


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 5)) + 2.5 * np.eye(3, 5)[y]
    return X, np.array(["red", "green", "blue"])[y]


def test_run_compare_with_arrays_and_own_module(tmp_path):
    built = []

    def factory(input_shape, num_outputs, hidden=8):
        built.append((input_shape, num_outputs, hidden))
        return nn.Sequential(nn.Linear(input_shape[0], hidden), nn.Tanh(), nn.Linear(hidden, num_outputs))

    cfg = CompareConfig(out=tmp_path / "o", **{**SMALL, "model_options": {"hidden": 6}})
    out = run_compare(cfg, progress=False, data=blobs(), model=factory)
    assert {r["algorithm"] for r in out.summary} == {"sgd", "adam"} and len(out.results) == 4
    assert built and all(b == ((5,), 3, 6) for b in built)
    report = (tmp_path / "o" / "report.md").read_text()
    assert "classes (id = label): 0 = blue, 1 = green, 2 = red" in report
    assert "`custom:test_run_compare_with_arrays_and_own_module.<locals>.factory`" in report
    assert "## Verdict" in report and "Welch's two-sided t-test" in report and "Holm-adjusted" in report
    # The four-array form and a ready Dataset work too.
    X, y = blobs()
    out4 = run_compare(
        CompareConfig(out=tmp_path / "o4", **SMALL), progress=False, data=(X[:90], y[:90], X[90:], y[90:])
    )
    assert out4.results[0].history[0]["test_accuracy"] >= 0  # ran
    with pytest.raises(ValueError, match="mismatched lengths"):
        run_compare(CompareConfig(out=tmp_path / "bad", **SMALL), data=(X, y[:-1]))
    assert not (tmp_path / "bad" / "runs").exists()  # refused before anything ran


def fake(alg, seed, final, family_status="ok"):
    hist = [
        {"epoch": 0, "step": 0, "test_accuracy": 0.1, "train_loss": 2.0, "time_s": 0.0},
        {"epoch": 1, "step": 1, "test_accuracy": final, "train_loss": 1.0 - final, "time_s": 1.0 + seed},
    ]
    return RunResult(Experiment(algorithm=alg, seed=seed), {}, hist, status=family_status)


FAMILIES = {"a": "baseline", "b": "baseline", "c": "momentum", "d": "momentum"}


def results(table):
    return [fake(alg, s, v) for alg, vals in table.items() for s, v in enumerate(vals)]


def test_verdict_clear_winner():
    res = results({"a": [0.90, 0.91, 0.92], "b": [0.50, 0.52, 0.51], "c": [0.60, 0.61, 0.59]})
    text = "\n".join(verdict_lines(res, FAMILIES))
    assert "**Best final test accuracy: `a`**, 0.9100 [" in text
    assert "Tied with `a`: none." in text and "`a` is better than every other algorithm compared here." in text
    assert "Significantly worse than `a` (2)" in text
    # The family line: momentum's best (c) minus the best baseline (a), paired by seed: -0.31 exactly.
    assert "momentum: `c` -0.3100 [" in text and ": worse" in text
    summary = summarize(res, 0.55, FAMILIES)
    assert [r["vs_best"] for r in summary] == ["best", "different", "different"]
    table = markdown_table(summary, 0.55)
    assert "| a | best | **0.9100 [" in table  # best value of the column in bold
    assert "| c | different | 0.6000 [" in table


def test_verdict_tie():
    res = results({"a": [0.90, 0.92, 0.91], "b": [0.905, 0.915, 0.90], "c": [0.20, 0.21, 0.22]})
    text = "\n".join(verdict_lines(res, FAMILIES))
    assert "**Best final test accuracy: `a`**" in text
    assert "**Statistically tied with `a`** (1): `b`" in text
    assert "the data do not single out one winner" in text
    assert [r["vs_best"] for r in summarize(res, 0.5, FAMILIES)] == ["best", "tied", "different"]


def test_verdict_single_seed_decides_nothing():
    res = results({"a": [0.9], "c": [0.8]})
    text = "\n".join(verdict_lines(res, FAMILIES))
    assert "Undecided (fewer than 2 finite seeds, no test possible): `c`" in text
    assert "fewer than 2 seeds" in text
    assert "(1 seed: no interval)" in text
    assert "0.9000 [n<2]" in markdown_table(summarize(res, 0.5, FAMILIES), 0.5)


def test_rerun_reuses_finished_runs_and_refuses_another_config(tmp_path, monkeypatch):
    cfg = CompareConfig(out=tmp_path / "o", dataset_options={"n_train": 150}, **SMALL)
    first = run_compare(cfg, progress=False)
    files = {p.name: p.read_text() for p in (tmp_path / "o" / "runs").iterdir()}
    calls = []
    real = compare_mod.run_experiment
    monkeypatch.setattr(compare_mod, "run_experiment", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = run_compare(cfg, progress=False)
    assert calls == [] and again.reused == 4
    assert {p.name: p.read_text() for p in (tmp_path / "o" / "runs").iterdir()} == files
    assert [r["final_test_accuracy_mean"] for r in again.summary] == [
        r["final_test_accuracy_mean"] for r in first.summary
    ]
    # One more seed: only the new runs train.
    more = run_compare(CompareConfig(out=tmp_path / "o", dataset_options={"n_train": 150}, **{**SMALL, "seeds": 3}))
    assert more.reused == 4 and len(calls) == 2
    # Another problem in the same folder is refused, and --overwrite replaces it.
    other = CompareConfig(out=tmp_path / "o", dataset_options={"n_train": 150}, **{**SMALL, "epochs": 3})
    with pytest.raises(
        ValueError, match="holds results of a different comparison.*epochs: 2 there, 3 now.*--overwrite"
    ):
        run_compare(other, progress=False)
    other.overwrite = True
    assert run_compare(other, progress=False).reused == 0
    # Changed hyperparameters of one algorithm: its runs are of another configuration.
    with pytest.raises(ValueError, match="sgd-seed0.json is a run of another configuration"):
        run_compare(
            CompareConfig(
                out=tmp_path / "o",
                dataset_options={"n_train": 150},
                hyperparams={"sgd": {"lr": 0.2}},
                **{**SMALL, "epochs": 3},
            )
        )


def test_output_folder_errors_and_permissions(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
        rc = main(["compare", "--out", str(bad), "--algorithms", "sgd", "--seeds", "1", "--epochs", "1"])
        err = capsys.readouterr().err
        assert rc == 2 and "invalid --out" in err and "Traceback" not in err
    old = os.umask(0o022)
    try:
        run_compare(CompareConfig(out=tmp_path / "o", **{**SMALL, "algorithms": ["sgd"], "seeds": 1}), progress=False)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "o").rglob("*") if p.is_file()}
    assert modes and set(modes.values()) == {0o644}, modes


def test_sigterm_writes_a_partial_report_and_report_dir_rebuilds_it(tmp_path, monkeypatch, capsys):
    real = compare_mod.run_experiment
    calls = []

    def killed_on_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler turns it into KeyboardInterrupt here
            time.sleep(5)  # not reached: the signal interrupts the sleep
        return real(*a, **k)

    monkeypatch.setattr(compare_mod, "run_experiment", killed_on_third)
    cfg = CompareConfig(out=tmp_path / "o", dataset_options={"n_train": 150}, **SMALL)
    with pytest.raises(compare_mod.Terminated) as stopped:  # a KeyboardInterrupt that says which signal
        run_compare(cfg, progress=False)
    assert isinstance(stopped.value, KeyboardInterrupt) and stopped.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is restored
    out = tmp_path / "o"
    meta = json.loads((out / "compare.json").read_text())
    assert meta["complete"] is False and len(list((out / "runs").glob("*.json"))) == 2
    report = (out / "report.md").read_text()
    assert "**PARTIAL REPORT**: 2 of 4 planned runs finished (interrupted)" in report
    assert "**Best final test accuracy: `sgd`**" in report  # the two finished runs: sgd seeds 0 and 1
    # Killed before it could write anything (SIGKILL): `beyondsgd report DIR` rebuilds the report from runs/.
    for name in ("report.md", "report.html", "summary.csv"):
        (out / name).unlink()
    assert main(["report", str(out)]) == 0
    assert "PARTIAL REPORT" in (out / "report.md").read_text() and (out / "report.html").is_file()
    monkeypatch.setattr(compare_mod, "run_experiment", real)
    done = run_compare(cfg, progress=False)
    assert done.reused == 2 and len(done.results) == 4
    assert "PARTIAL" not in (out / "report.md").read_text()


def test_sigterm_exits_143_and_ctrl_c_130(tmp_path, monkeypatch, capsys):
    """The command's exit status is 128 + the signal that stopped it, as a shell reports a killed process."""
    real = compare_mod.run_experiment
    for signum, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        calls = []

        def stopped_on_second(*a, signum=signum, calls=calls, **k):
            calls.append(1)
            if len(calls) == 2:
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt  # (what Ctrl-C raises)
                os.kill(os.getpid(), signum)
                time.sleep(5)  # not reached: the handler raises
            return real(*a, **k)

        monkeypatch.setattr(compare_mod, "run_experiment", stopped_on_second)
        out = tmp_path / signum.name
        args = ["compare", "--algorithms", "sgd", "--seeds", "2", "--epochs", "1", "--n-train", "150"]
        assert main([*args, "--out", str(out), "--no-progress", "--model-option", "widths=(8,)"]) == status
        assert "interrupted" in capsys.readouterr().err
        assert len(list((out / "runs").glob("*.json"))) == 1


def test_sigint_mid_compare_then_rerun_completes_only_the_missing_runs(tmp_path):
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "beyondsgd", "compare", "--algorithms", "sgd,adam", "--seeds", "2"]
    cmd += ["--epochs", "40", "--n-train", "300", "--out", str(out), "--no-progress", "--model-option", "widths=(32,)"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    # A shell's background job (nohup ... &) starts with SIGINT ignored, and exec keeps that: the child
    # would never see the signal. Give it the default disposition, as a terminal's Ctrl-C would find.
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not list((out / "runs").glob("*.json")) if (out / "runs").is_dir() else True:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    finished = sorted(p.name for p in (out / "runs").glob("*.json"))
    if proc.returncode == 0:  # pragma: no cover - the machine was so fast that everything finished first
        pytest.skip("the comparison finished before SIGINT arrived")
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert 1 <= len(finished) < 4
    assert "PARTIAL REPORT" in (out / "report.md").read_text()
    before = {n: (out / "runs" / n).read_text() for n in finished}
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"reused {len(finished)} finished run(s)" in rerun.stdout
    assert f"trained {4 - len(finished)}" in rerun.stdout
    assert {n: (out / "runs" / n).read_text() for n in finished} == before  # untouched
    assert len(list((out / "runs").glob("*.json"))) == 4
    assert "PARTIAL" not in (out / "report.md").read_text()
    assert json.loads((out / "compare.json").read_text())["complete"] is True


def test_options_are_never_abbreviations_and_typos_get_a_suggestion(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--target-acc", "0.5"])
    assert exc.value.code == 2
    assert "did you mean --target-accuracy?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", "--seed", "3"])
    assert "did you mean --seeds?" in capsys.readouterr().err
    # --target is its own option (the label column), only for data files.
    assert main(["compare", "--target", "diagnosis", "--algorithms", "sgd"]) == 2
    assert "--target applies to a data file" in capsys.readouterr().err


def test_threads_rule():
    assert choose_threads(3, 1e12) == 3
    assert choose_threads("auto", SMALL_WORK / 2, cores=16, load=0.0) == 1
    assert choose_threads("auto", SMALL_WORK * 2, cores=16, load=0.0) == 8
    assert choose_threads("auto", SMALL_WORK * 2, cores=4, load=2.6) == 1
    assert choose_threads("auto", SMALL_WORK * 2, cores=16, load=math.nan) == 8
    assert choose_threads("auto", 1e12, local_ranks=4, cores=16) == 4
    assert choose_threads("auto", 1e12, device="cuda") is None
    with pytest.raises(ValueError, match="expected 'auto' or a positive integer"):
        choose_threads(0, 1)
    assert busy_message(cores=2, load=1.0) is None
    assert "busy" in busy_message(cores=2, load=2.5)


def test_default_compare_threads_are_one_for_the_small_default_problem(tmp_path):
    out = run_compare(CompareConfig(out=tmp_path / "o", **{**SMALL, "algorithms": ["sgd"], "seeds": 1}))
    assert out.threads == 1
    assert torch.get_num_threads() >= 1  # restored afterwards


@pytest.mark.parametrize("which", ["breast_cancer", "wine"])
def test_end_to_end_sklearn_csv(tmp_path, which, capsys):
    """Real data nobody here wrote: scikit-learn's breast-cancer and wine tables, as CSV files."""
    from sklearn import datasets

    if which == "breast_cancer":
        frame = datasets.load_breast_cancer(as_frame=True).frame
        frame.insert(0, "diagnosis", np.where(frame.pop("target") == 0, "malignant", "benign"))  # label first
        extra = ["--target", "diagnosis"]
        names = "0 = benign, 1 = malignant"
    else:
        frame = datasets.load_wine(as_frame=True).frame
        frame["target"] = "cultivar_" + frame["target"].astype(str)  # label last: the default
        extra = []
        names = "0 = cultivar_0, 1 = cultivar_1, 2 = cultivar_2"
    csv = tmp_path / f"{which}.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "out"
    rc = main(
        ["compare", "--dataset", str(csv), *extra, "--algorithms", "sgd,adam", "--seeds", "2", "--epochs", "3"]
        + ["--out", str(out), "--no-progress", "--model-option", "widths=(32,)"]
    )
    assert rc == 0, capsys.readouterr().err
    report = (out / "report.md").read_text()
    assert f"classes (id = label): {names}" in report
    assert "## Verdict" in report and "**Best final test accuracy:" in report
    summary = json.loads((out / "runs" / "adam-seed0.json").read_text())
    assert summary["experiment"]["dataset"] == str(csv)
    best = max(json.loads(p.read_text())["history"][-1]["test_accuracy"] for p in (out / "runs").glob("*.json"))
    chance = frame.iloc[:, 0 if which == "breast_cancer" else -1].value_counts(normalize=True).max()
    assert best > chance + 0.1  # it learned something real from the file


def test_regression_file_is_decided_on_test_loss(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=120)
    np.savez(tmp_path / "reg.npz", X=X, y=y)
    cfg = CompareConfig(dataset=str(tmp_path / "reg.npz"), dataset_options={"task": "regression"}, out=tmp_path / "o")
    cfg.algorithms, cfg.seeds, cfg.epochs = ["sgd", "adam"], 2, 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no broadcasting warning from mse_loss
        out = run_compare(cfg, progress=False)
    report = (tmp_path / "o" / "report.md").read_text()
    assert "**Best final test loss:" in report and "final test loss (mean [95% CI])" in report
    losses = [r["final_test_loss_mean"] for r in out.summary]
    assert losses == sorted(losses)  # best (lowest) first
    first_loss = out.results[0].history[0]["test_loss"]
    assert min(losses) < first_loss  # training reduced the test loss


def test_a_hand_made_regression_dataset_with_1d_targets_does_not_broadcast(tmp_path):
    from beyondsgd.data import Dataset

    X = torch.randn(60, 3, generator=torch.Generator().manual_seed(0))
    y = X @ torch.tensor([1.0, 2.0, 3.0])
    data = Dataset("r", X[:50], y[:50], X[50:], y[50:], (3,), None, "regression", "hand-made")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        out = run_compare(CompareConfig(algorithms=["adam"], seeds=1, epochs=3, out=tmp_path / "o"), data=data)
    assert out.results[0].history[-1]["test_loss"] < out.results[0].history[0]["test_loss"]


def test_a_finished_run_removes_the_checkpoint_an_interrupted_call_left(tmp_path):
    # Before: resuming without --checkpoint-every left the earlier call's checkpoints/ALG-seedN.pt behind.
    out = tmp_path / "o"
    stale = out / "checkpoints" / "sgd-seed0.pt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from an interrupted call")
    run_compare(
        CompareConfig(out=out, dataset_options={"n_train": 150}, **{**SMALL, "algorithms": ["sgd"], "seeds": 1})
    )
    assert not stale.exists()
