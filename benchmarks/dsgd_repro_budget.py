"""Wall-time budget of ``beyondsgd reproduce dsgd --dataset NAME`` from one full-length run per cell.

Runs every (setting, algorithm) of the full reproduction once (seed 0, every grid point of the
GD/SGD baseline), times each run (wall and CPU), and extrapolates to the reproduction's protocol:
``TUNING_SEEDS_FULL`` tuning seeds x the grid, plus the evaluation seeds x (the DSGD variants and the
chosen rate; the slowest grid point is counted, not knowing the choice).  Loading the data and
drawing the plots are not counted.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dsgd_repro_budget.py [--dataset fashion-mnist] [--seeds 5]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from beyondsgd.data import load_dataset
from beyondsgd.reproduce import dsgd as repro


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--seeds", type=int, default=5, help="evaluation seeds of the run to estimate")
    ap.add_argument("--n-train", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    kwargs: dict[str, Any] = {"n_test": 1000, "download": False} if args.dataset != "digits" else {}
    data = load_dataset(args.dataset, seed=0, n_train=None if args.dataset == "digits" else args.n_train, **kwargs)
    totals = {"wall_s": [0.0, 0.0, 0.0], "cpu_s": [0.0, 0.0, 0.0]}  # one seed, old protocol, new protocol
    print("| setting | algorithm | wall [s] | CPU [s] |\n|---|---|---|---|")
    for s in repro._settings(False, [args.dataset]):
        problem = repro._Problem(s, data, torch.device("cpu"))
        base, grid = repro._baseline_grid(s)
        cells = [*repro._dsgd_algorithms(s), *[(repro._baseline_label(base, lr), {"torch_lr": lr}) for lr in grid]]
        times: dict[str, dict[str, float]] = {}
        for label, options in cells:
            t0, c0 = time.perf_counter(), time.process_time()
            repro._run(problem, label, options, 0)
            times[label] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
            print(f"| {s.name} | {label} | {times[label]['wall_s']:.2f} | {times[label]['cpu_s']:.2f} |", flush=True)
        for key, tot in totals.items():
            dsgd = sum(v[key] for a, v in times.items() if "@" not in a)
            grid_t = [v[key] for a, v in times.items() if "@" in a]
            tot[0] += dsgd + sum(grid_t)
            tot[1] += args.seeds * (dsgd + sum(grid_t))
            tot[2] += args.seeds * (dsgd + max(grid_t)) + repro.TUNING_SEEDS_FULL * sum(grid_t)
    for key, (one, old, new) in totals.items():
        print(
            f"{key}: one seed of every cell {one:.0f} s; estimated run with {args.seeds} seeds: "
            f"{new / 60:.1f} min (tuning on separate seeds), {old / 60:.1f} min (every grid point on every seed)"
        )


if __name__ == "__main__":
    main()
