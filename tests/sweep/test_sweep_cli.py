"""``beyondsgd sweep`` / ``beyondsgd report`` end to end (in this process, tiny budgets)."""

import csv
import json

import pytest
import torch

from beyondsgd import optim
from beyondsgd.cli import main
from beyondsgd.validation import NONNEGATIVE

CONFIG = """\
name: tiny
problems:
  - {name: d, dataset: digits, model: mlp, model_options: {widths: [8]}, dataset_options: {n_train: 200},
     epochs: 2, batch_size: 50, target: {test_accuracy: 0.3}}
  - {name: t, dataset: teacher, model: mlp, model_options: {widths: [8]}, dataset_options: {n_train: 200},
     epochs: 2, batch_size: 50, target: {test_loss: 5.0}}
algorithms:
  sgd: {lr: [0.01, 0.1]}
  adam: {}
  test_crash: {}
  not_landed_yet: {}
skip_missing: true
seeds: 2
"""


class Crash(torch.optim.SGD):
    def step(self, closure=None):
        raise RuntimeError("boom")


@pytest.fixture
def crash_registered():
    optim.register(optim.OptimizerSpec("test_crash", Crash, {"lr": NONNEGATIVE}, {"lr": 0.1}))
    yield
    optim.registry._REGISTRY.pop("test_crash")


def test_sweep_report_and_failed_runs(tmp_path, capsys, crash_registered):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "sw"
    assert main(["sweep", str(cfg), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert "16 run(s) executed" in capsys.readouterr().out  # 2x2 tuning + 2 problems x 3 algs x 2 seeds
    report = (out / "report.md").read_text()
    for needle in (
        "## Final test metric (algorithms × problems)",
        "## Time and iterations to target",
        "## Performance profiles",
        "## Chosen hyperparameters",
        "## Curves",
        "## Hyperparameter sensitivity",
        "## Failed runs",
        "RuntimeError: boom",
        "`not_landed_yet` (not registered in this installation)",
    ):
        assert needle in report, needle
    for png in ("curves_0.png", "curves_1.png", "profile_time.png", "sensitivity_0.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert {(r["problem"], r["algorithm"]) for r in rows} == {
        (p, a) for p in "dt" for a in ("sgd", "adam", "test_crash")
    }
    crash = [r for r in rows if r["algorithm"] == "test_crash"]
    assert all(r["failed"] == "2" for r in crash)
    teacher = [r for r in rows if r["problem"] == "t"]
    assert all(r["metric"] == "test_loss" for r in teacher)
    failed = [json.loads(p.read_text()) for p in (out / "runs").glob("*test_crash*")]
    assert failed and all(r["status"] == "failed" and "boom" in r["error"] for r in failed)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5 and 'src="curves' not in html

    # report DIR rewrites the same report from the stored runs alone.
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text() == report and (out / "report.html").is_file()

    # --retry-failed re-runs exactly the failed runs.
    assert (
        main(
            [
                "sweep",
                str(cfg),
                "--out",
                str(out),
                "--resume",
                "--retry-failed",
                "--workers",
                "1",
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    assert "4 run(s) executed, 12 already stored" in capsys.readouterr().out


def test_compare_writes_html_and_report_accepts_it(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                "--algorithms",
                "sgd",
                "--epochs",
                "1",
                "--seeds",
                "1",
                "--n-train",
                "100",
                "--model-option",
                "widths=(8,)",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    html = (out / "report.html").read_text()
    assert "<table>" in html and html.count("data:image/png;base64,") == 2
    assert main(["report", str(out)]) == 0


@pytest.mark.parametrize(
    "args,needle",
    [
        (["sweep"], "either a CONFIG file or --suite"),
        (["sweep", "x.yaml", "--suite", "small"], "either a CONFIG file or --suite"),
        (["sweep", "--suite", "huge"], "unknown suite 'huge'"),
        (["sweep", "missing.yaml"], "not found"),
        (["sweep", "--suite", "small", "--workers", "0"], "--workers 0"),
        (["sweep", "--suite", "small", "--retry-failed"], "only makes sense with --resume"),
        (["report", "."], "neither sweep.json"),
    ],
)
def test_sweep_cli_errors(args, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_reproduce_also_writes_html(tmp_path, capsys):
    from beyondsgd import reproduce as R
    from beyondsgd.bench.plots import plot_metric_grid

    def run(ctx):
        rows = [
            {
                "algorithm": "sgd",
                "seed": 0,
                "step": s,
                "epoch": s,
                "train_loss": 1 / (s + 1),
                "test_loss": 1 / (s + 1),
                "test_accuracy": 0.5,
            }
            for s in range(3)
        ]
        plot_metric_grid(rows, ctx.out / "fig.png", "epoch")
        (ctx.out / "report.md").write_text("# fake paper\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![fig](fig.png)\n")
        return ctx.out / "report.md"

    R._load()
    R.register_reproduction(R.Reproduction("test_fake", run, "fake"))
    try:
        assert main(["reproduce", "test_fake", "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    finally:
        R._REGISTRY.pop("test_fake")
    html = (tmp_path / "r" / "report.html").read_text()
    assert "<h1>fake paper</h1>" in html and html.count("data:image/png;base64,") == 1
    assert "report.html" in capsys.readouterr().out
