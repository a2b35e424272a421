"""Wall time of the default ``beyondsgd compare``, idle and with one competing CPU-bound process.

The default comparison (every algorithm, digits, MLP 128-128, 3 seeds, 20 epochs) is many
small runs in one process; with torch's default of one thread per core they oversubscribe
the CPU (the issue that motivated ``--threads auto`` measured 29 min 42 s on a busy 2-core
machine instead of ~45 s). This script measures:

* ``idle``: the command alone (whatever else the machine is doing is recorded as the
  1-minute load average before the run: on a shared machine "idle" means "no load of ours");
* ``loaded``: the same command while one extra process spins a CPU core (``while True: pass``).

Each case runs the real command line in a fresh output folder (a reused folder would skip
the finished runs). Goal from the issue: <= 60 s idle and <= 2x the idle time under load.

Usage::

    python benchmarks/bench_compare_threads.py                      # --threads auto (the default)
    python benchmarks/bench_compare_threads.py --threads auto 1 2   # several settings
    python benchmarks/bench_compare_threads.py --extra "--epochs 5" # a smaller comparison

Prints one line per case and a JSON summary (``--json FILE`` also writes it).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def run_case(threads: str, loaded: bool, extra: list[str]) -> dict:
    """Run the default compare once; return its wall time and the conditions."""
    spinner = None
    if loaded:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)  # let it get going
    try:
        with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
            cmd = [sys.executable, "-m", "beyondsgd", "compare", "--no-progress", "--out", tmp, "--threads", threads]
            cmd += extra
            load_before = _load()
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
            meta = json.loads((Path(tmp) / "compare.json").read_text())
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return {
        "threads_setting": threads,
        "threads_used": meta["environment"]["threads"],
        "competing_process": loaded,
        "wall_s": round(wall, 1),
        "compare_elapsed_s": round(meta["elapsed_s"], 1),
        "load_avg_1min_before": round(load_before, 2),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "command": "beyondsgd compare --no-progress --out TMP --threads "
        + threads
        + (" " + " ".join(extra) if extra else ""),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--threads", nargs="+", default=["auto"], help="--threads settings to measure (default: auto)")
    p.add_argument("--extra", default="", help="extra compare arguments, e.g. '--epochs 5'")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args()
    extra = shlex.split(args.extra)
    results = []
    for threads in args.threads:
        idle = run_case(threads, False, extra)
        print(
            f"threads={threads} idle:   {idle['wall_s']:.1f} s (load before {idle['load_avg_1min_before']})", flush=True
        )
        loaded = run_case(threads, True, extra)
        print(
            f"threads={threads} loaded: {loaded['wall_s']:.1f} s (load before {loaded['load_avg_1min_before']}), "
            f"ratio {loaded['wall_s'] / idle['wall_s']:.2f}",
            flush=True,
        )
        results += [idle, loaded]
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
