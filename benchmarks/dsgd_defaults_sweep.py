"""The quick sweep that picked DSGD's registry defaults (``beyondsgd compare`` on digits/MLP).

Runs ``dsgd`` on digits with the default MLP (ReLU, widths 128-128) and batch 64 for a
few epochs over a small grid, plus ``sgd`` and ``adam`` at their defaults for scale,
and prints final training loss, test accuracy and training time (mean over seeds).

    PYTHONPATH=src python benchmarks/dsgd_defaults_sweep.py [--epochs 5] [--seeds 2]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from beyondsgd.bench import Experiment, run_experiment
from beyondsgd.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("digits")
    grid = [
        ("dsgd", {"norm": n, "lr": lr, "decay": d})
        for n, lr, d in itertools.product(("frobenius", "spectral"), (0.5, 1.0), (0.5, 0.9))
    ]
    grid += [("sgd", {}), ("adam", {})]
    print(f"{'algorithm':<8} {'hyperparameters':<48} {'train loss':>10} {'test acc':>9} {'time [s]':>9}")
    for alg, hp in grid:
        res = [
            run_experiment(
                Experiment(algorithm=alg, hyperparams=hp, epochs=args.epochs, batch_size=64, seed=seed),
                data=data,
                progress=False,
            )
            for seed in range(args.seeds)
        ]
        loss = np.mean([r.final("train_loss") for r in res])
        acc = np.mean([r.final("test_accuracy") for r in res])
        t = np.mean([r.history[-1]["time_s"] for r in res])
        print(f"{alg:<8} {str(hp):<48} {loss:>10.4f} {acc:>9.3f} {t:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
