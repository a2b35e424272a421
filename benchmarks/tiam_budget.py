"""Wall-time budget of ``beyondsgd reproduce tiam --dataset NAME`` from one measured seed of each phase.

Runs one tuning seed (every cell of :data:`beyondsgd.reproduce.tiam.TUNE_GRIDS` on the validation
split) and one headline seed (every method at the chosen settings), timed, and extrapolates to the
run's seeds: ``len(tune_seeds) * tuning seed + len(seeds) * headline seed`` (plus loading).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tiam_budget.py --dataset fashion-mnist   # about 6 min

Prints the per-cell training times, the per-method headline wall times and the estimate.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from beyondsgd.reproduce import ReproduceContext
from beyondsgd.reproduce import tiam as repro
from beyondsgd.reproduce.common import validation_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        ctx = ReproduceContext(
            out=Path(out), quick=False, device=torch.device("cpu"), progress=False, dataset=args.dataset
        )
        p = repro.plan(False, ctx)
        t0 = time.perf_counter()
        data = repro._load(args.dataset, ctx, [], p.n_train)
        load_s = time.perf_counter() - t0
        tune_data, _ = validation_split(data, repro._validation_rows(data), seed=0)
        act, widths = p.activations[0], p.widths[0]
        t0 = time.perf_counter()
        cells, chosen = repro.tune(ctx, dataclasses.replace(p, tune_seeds=p.tune_seeds[:1]), tune_data, act, widths)
        tune_s = time.perf_counter() - t0
        for c in cells:
            print(
                f"tune {c['method']:9s} {c['knob']}={c['value']:<7g} epochs {c['epochs']:3d} "
                f"val {c['val_accuracy']:.3f} train {c['train_time_s']:.1f} s"
            )
        print(f"chosen: {chosen}")
        problem: dict = {}
        walls: dict[str, float] = {}
        real_run = repro._run

        def timed(label, *a, **k):
            t = time.perf_counter()
            res = real_run(label, *a, **k)
            walls[label] = walls.get(label, 0.0) + time.perf_counter() - t
            return res

        repro._run = timed
        try:
            t0 = time.perf_counter()
            repro.headline_seed(ctx, p, data, act, widths, p.seeds[0], chosen, problem)
            head_s = time.perf_counter() - t0
        finally:
            repro._run = real_run
        for label, w in walls.items():
            print(
                f"headline {label:9s} wall {w:.1f} s (final test acc {problem[label][-1].final('test_accuracy'):.3f})"
            )
        n_problems = len(p.activations) * len(p.widths)
        total = load_s + n_problems * (len(p.tune_seeds) * tune_s + len(p.seeds) * head_s)
        print(
            f"{args.dataset}: load {load_s:.0f} s; one tuning seed {tune_s:.0f} s x {len(p.tune_seeds)}; "
            f"one headline seed {head_s:.0f} s x {len(p.seeds)}; {n_problems} problem(s); "
            f"estimated full run {total:.0f} s = {total / 60:.1f} min; {torch.get_num_threads()} thread(s)"
        )


if __name__ == "__main__":
    main()
