import csv
import subprocess
import sys

import pytest

from beyondsgd.cli import main

TINY = ["--epochs", "2", "--seeds", "2", "--n-train", "200", "--model-option", "widths=(16,)", "--no-progress"]


def test_compare_end_to_end(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = main(["compare", "--algorithms", "sgd,adam", "--out", str(out), "--set", "sgd.lr=0.1", *TINY])
    assert rc == 0
    for name in (
        "results.csv",
        "summary.csv",
        "report.md",
        "curves_epoch.png",
        "curves_time.png",
        "runs/sgd-seed0.json",
        "runs/adam-seed1.json",
    ):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "results.csv").open()))
    required = {"algorithm", "seed", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "time_s"}
    assert required <= set(rows[0])
    assert len(rows) == 2 * 2 * 3  # algorithms x seeds x (initial + 2 epochs)
    report = (out / "report.md").read_text()
    assert "| sgd |" in report and "| adam |" in report and "lr=0.1" in report
    assert (out / "curves_epoch.png").read_bytes()[:4] == b"\x89PNG"
    assert "report.md" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["compare", "--algorithms", "sgd,nope"], "unknown algorithm 'nope'"),
        (["compare", "--algorithms", "sgd", "--set", "sgd.lr=-1"], "invalid lr=-1"),
        (["compare", "--algorithms", "sgd", "--set", "adam.lr=1"], "not compared: adam"),
        (["compare", "--dataset", "imagenet"], "unknown dataset"),
        (["compare", "--seeds", "0"], "seeds=0"),
        (["compare", "--epochs", "0"], "invalid epochs=0"),
        (["compare", "--algorithms", "hb,sgd,hb"], "'hb' listed more than once"),
        (["compare", "--algorithms", ""], "the list is empty"),
        (["compare", "--algorithms", "sgd", "--set", "sgd.lr=0.1", "--set", "sgd.lr=0.2"], "already set to 0.1"),
        (["compare", "--algorithms", "sgd", "--set", "SGD.lr=0.1", "--set", "sgd.lr=0.2"], "already set"),
        (["compare", "--algorithms", "sgd", "--model-option", "depth=3"], "bad option for model"),
        (["reproduce", "nope"], "unknown reproduction 'nope'"),
        (["reproduce", "momentum", "--dataset", "imagenet", "--out", "OUT"], "invalid dataset='imagenet'"),
        (["reproduce", "momentum", "--seeds", "0", "--out", "OUT"], "invalid seeds=0"),
        (["reproduce", "tiam", "--quick", "--preset", "paper", "--out", "OUT"], "preset='paper' with quick"),
    ],
)
def test_bad_input_is_a_clear_error(args, needle, capsys, tmp_path):
    args = [str(tmp_path / "x") if a == "OUT" else a for a in args]
    rc = main([*args, "--out", str(tmp_path / "x")] if args[0] == "compare" else args)
    assert rc == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "x" / "results.csv").exists()  # nothing ran
    if args[0] == "reproduce":
        assert not (tmp_path / "x").exists()  # bad arguments create no output folder


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("sgd", "adam", "digits", "mlp", "two_layer"):
        assert word in out


def test_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "beyondsgd", "list"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Algorithms" in proc.stdout


def test_compare_checkpoints_and_resumes(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--algorithms", "sgd", "--out", str(out), "--checkpoint-every", "1", *TINY]
    assert main(args) == 0
    assert not (out / "checkpoints").exists()  # finished runs' checkpoints are removed (results are in runs/)
    first = (out / "results.csv").read_text()
    assert main(args) == 0  # finished runs are reused unchanged
    assert (out / "results.csv").read_text() == first
    assert "reused 2 finished run(s)" in capsys.readouterr().out
    kept = tmp_path / "kept"
    assert main([*args[:4], str(kept), *args[5:], "--keep-checkpoints"]) == 0
    assert sorted(p.name for p in (kept / "checkpoints").iterdir()) == ["sgd-seed0.pt", "sgd-seed1.pt"]
    assert main([*args[: -len(TINY)], *TINY, "--checkpoint-every", "0"]) == 2
    assert "checkpoint_every=0" in capsys.readouterr().err


def test_sweep_and_report_refuse_torchrun(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["report", str(tmp_path)]) == 2
    assert "launch it without torchrun" in capsys.readouterr().err
