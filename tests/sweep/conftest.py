"""Shared fixtures of the sweep tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sweep_killed_after() -> Callable[..., None]:
    """``kill(cfg_path, out, runs, timeout)``: run ``beyondsgd sweep`` on 2 workers and SIGKILL it (and its
    workers, its own process group) once ``runs`` run files are stored; asserts it died by that signal."""

    def kill(cfg_path: Path, out: Path, runs: int, timeout: float) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        cmd = [sys.executable, "-m", "beyondsgd", "sweep", str(cfg_path), "--out", str(out), "--workers", "2"]
        proc = subprocess.Popen(
            [*cmd, "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if len(list((out / "runs").glob("*.json"))) >= runs:
                    break
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]

    return kill
