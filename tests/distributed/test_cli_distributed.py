"""``beyondsgd compare`` data-parallel: rank 0 writes, the others write nothing, numbers match 1 rank."""

import csv
import os
import shutil
import subprocess
import sys

import pytest
from dist_workers import CLI_ARGS as ARGS

from beyondsgd.cli import main
from beyondsgd.distributed import free_port

COLUMNS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _assert_same_curves(a, b):
    assert [(r["algorithm"], r["step"]) for r in a] == [(r["algorithm"], r["step"]) for r in b]
    for ra, rb in zip(a, b):
        for col in COLUMNS:  # float32 training: sums in another order, so rounding differences only
            assert float(ra[col]) == pytest.approx(float(rb[col]), rel=1e-5, abs=1e-6), (ra, rb)


def test_compare_on_two_ranks_matches_one_rank_and_only_rank0_writes(two_rank_results, tmp_path):
    per_rank, root = two_rank_results
    assert [res["cli_code"] for res in per_rank] == [0, 0]
    assert (root / "out-rank0" / "report.md").is_file()
    assert (root / "out-rank0" / "curves_epoch.png").is_file()
    assert not (root / "out-rank1").exists()  # rank 1 wrote nothing
    assert "data-parallel on 2 ranks" in (root / "out-rank0" / "report.md").read_text()
    assert main([*ARGS, "--out", str(tmp_path / "single")]) == 0
    _assert_same_curves(_rows(root / "out-rank0" / "results.csv"), _rows(tmp_path / "single" / "results.csv"))


@pytest.mark.skipif(
    shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None and shutil.which("torchrun") is None,
    reason="torchrun not installed",
)
def test_torchrun_launch(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    env = {
        **os.environ,
        "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    cmd = [
        torchrun,
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "beyondsgd",
        "compare",
        "--algorithms",
        "sgd",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--n-train",
        "100",
        "--model-option",
        "widths=(8,)",
        "--no-progress",
        "--dist-timeout",
        "60",
        "--out",
        str(tmp_path / "tr"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "data-parallel on 2 ranks (gloo)" in proc.stderr
    assert proc.stdout.count("wrote ") == 1  # only rank 0 prints the summary
    assert len(_rows(tmp_path / "tr" / "results.csv")) == 2  # initial + 1 epoch


def test_bad_dist_timeout_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--dist-timeout", "0"])
    assert "invalid --dist-timeout 0" in capsys.readouterr().err
