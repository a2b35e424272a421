"""Wall time of one sweep on each execution backend, on this machine, in one run.

    PYTHONPATH=src python benchmarks/sweep_backends.py [--runs-per-alg N]

Runs the same small sweep (no tuning: 2 problems x 2 algorithms x N seeds) with
``--workers 1`` (in process), the local process pool with one worker per core,
and Ray on a local instance (if installed), and prints wall times and the
speed-up over the in-process run.  Start-up costs (spawning workers, starting
Ray) are included: they are what a user pays.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from beyondsgd.sweep.config import parse_config
from beyondsgd.sweep.executor import default_workers
from beyondsgd.sweep.run import run_sweep


def config(seeds: int) -> dict:
    prob = {"model": "mlp", "model_options": {"widths": [64]}, "epochs": 5, "batch_size": 32}
    return {
        "name": "bench",
        "problems": [
            {"name": "digits", "dataset": "digits", **prob, "target": {"test_accuracy": 0.9}},
            {"name": "blobs", "dataset": "blobs", **prob, "target": {"test_accuracy": 0.8}},
        ],
        "algorithms": {"sgd": {}, "adam": {}},
        "seeds": seeds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-per-alg", type=int, default=6, help="seeds per (problem, algorithm)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = parse_config(config(args.runs_per_alg))
    cores = default_workers()
    setups = [
        ("in-process (--workers 1)", dict(workers=1, threads=1)),
        (f"local pool (--workers {cores})", dict(workers=cores, threads=1)),
    ]
    try:
        import ray

        setups.append((f"ray, local instance ({cores} CPUs)", dict(backend="ray", threads=1)))
    except ImportError:
        print("ray not installed: skipping the ray backend")
    times = {}
    for label, kw in setups:
        with tempfile.TemporaryDirectory() as tmp:
            if kw.get("backend") == "ray":
                import ray

                start = time.perf_counter()
                ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
            else:
                start = time.perf_counter()
            out = run_sweep(cfg, os.path.join(tmp, "s"), verbose=False, report=False, **kw)
            times[label] = time.perf_counter() - start
            if kw.get("backend") == "ray":
                ray.shutdown()
        print(f"{label:<34} {out.ran:3d} runs  {times[label]:7.1f} s", flush=True)
    base = times[setups[0][0]]
    print(f"\n{cores} cores; load average before the run ended: {os.getloadavg()[0]:.1f}")
    for label, t in times.items():
        print(f"speed-up of {label:<34} {base / t:5.2f}x")


if __name__ == "__main__":
    main()
