"""Quick sweep that picked the defaults of ``tiam`` and ``am`` (docs/tiam.md, "Defaults").

The setting of ``beyondsgd compare``'s default run: digits, the runner's MLP
(widths (128, 128), ReLU), 20 full-batch outer iterations, seeds 0 and 1.
Stage 1 sweeps the non-inertial hyperparameters with plain AM; stage 2 sweeps
the inertias of TIAM on top of the best stage-1 setting.

    PYTHONPATH=src python benchmarks/sweep_tiam_defaults.py
"""

from __future__ import annotations

import itertools

import torch

from beyondsgd.bench import Experiment, run_experiment
from beyondsgd.data import load_dataset


def score(alg: str, hp: dict, data, seeds=(0, 1), iters: int = 20) -> float:
    accs = []
    for seed in seeds:
        res = run_experiment(
            Experiment(algorithm=alg, hyperparams=hp, epochs=iters, batch_size="full", seed=seed, device="cpu"),
            data=data,
            progress=False,
        )
        accs.append(res.final("test_accuracy"))
    return sum(accs) / len(accs)


def main() -> None:
    torch.set_num_threads(1)
    data = load_dataset("digits")
    rows = []
    for rho, eps, decay in itertools.product((0.3, 1.0, 3.0), (1.0, 10.0), (0.5, 0.8)):
        hp = {"rho": rho, "eps": eps, "eps_decay": decay}
        rows.append((score("am", hp, data), "am", hp))
        print(f"{rows[-1][0]:.4f} am {hp}", flush=True)
    best = max(rows, key=lambda r: r[0])[2]
    print("stage 1 best:", best)
    for p1, p2, p3 in (
        (0.5, 0.3, 0.3),
        (0.3, 0.0, 0.3),
        (0.5, 0.5, 0.5),
        (0.8, 0.5, 0.2),
        (0.5, 0.0, 0.0),
        (0.0, 0.0, 0.5),
        (0.9, 0.6, 0.3),
        (0.9, 0.3, 0.3),
        (0.9, 0.6, 0.0),
        (0.95, 0.7, 0.3),
    ):
        hp = {**best, "p1": p1, "p2": p2, "p3": p3}
        print(f"{score('tiam', hp, data):.4f} tiam {hp}", flush=True)
    for scale in (0.5, 1.0):
        hp = {**best, "p1": scale, "p2": scale, "p3": scale, "schedule": "ipalm"}
        print(f"{score('tiam', hp, data):.4f} tiam {hp}", flush=True)


if __name__ == "__main__":
    main()
