"""kill -9 a real `beyondsgd compare` repeatedly; the resumed result equals an uninterrupted one."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ARGS = [
    "compare",
    "--algorithms",
    "sgd,adam",
    "--seeds",
    "2",
    "--epochs",
    "25",
    "--n-train",
    "600",
    "--model-option",
    "widths=(32,)",
    "--no-progress",
    "--checkpoint-every",
    "1",
    "--threads",
    "1",
]
KILLS = 3


def _run(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "beyondsgd", *ARGS, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def _checkpoint_mtimes(out: Path) -> dict[str, int]:
    folder = out / "checkpoints"
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.pt")} if folder.is_dir() else {}


def _rows_without_time(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(f)]


def test_kill_9_and_resume_loses_and_duplicates_nothing(tmp_path):
    reference = _run(tmp_path / "ref")
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()

    out = tmp_path / "killed"
    kills = 0
    for _ in range(KILLS):
        proc = _run(out)
        before = _checkpoint_mtimes(out)
        deadline = time.monotonic() + 120
        # Wait until this process has written a new checkpoint, then kill it without warning.
        while proc.poll() is None and _checkpoint_mtimes(out) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    final = _run(out)
    assert final.wait(timeout=300) == 0, final.stderr.read().decode()
    assert kills >= 2, "the runs finished before they could be killed; make the budget larger"

    assert _rows_without_time(out / "results.csv") == _rows_without_time(tmp_path / "ref" / "results.csv")
    assert sorted(p.name for p in (out / "runs").glob("*.json")) == sorted(
        p.name for p in (tmp_path / "ref" / "runs").glob("*.json")
    )
