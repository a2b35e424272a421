"""The sweep behind the registry defaults of ``hb`` and ``nag`` (what ``beyondsgd compare`` uses).

The compare setting: digits, the default MLP, batch 64, 20 epochs.  Grid: lr x momentum,
2 seeds; prints mean final test accuracy and final training loss per setting.

Usage::

    PYTHONPATH=src python benchmarks/sweep_momentum_defaults.py
"""

from __future__ import annotations

import itertools
import statistics

import torch

from beyondsgd.bench import Experiment, run_experiment

LRS = (0.01, 0.03, 0.1)
MOMENTA = (0.8, 0.9)
SEEDS = (0, 1)


def main() -> None:
    torch.set_num_threads(1)
    print("alg  lr     momentum  test_acc  train_loss")
    for alg, lr, mom in itertools.product(("hb", "nag"), LRS, MOMENTA):
        res = [
            run_experiment(Experiment(algorithm=alg, hyperparams={"lr": lr, "momentum": mom}, seed=s, device="cpu"))
            for s in SEEDS
        ]
        acc = statistics.mean(r.history[-1]["test_accuracy"] for r in res)
        loss = statistics.mean(r.history[-1]["train_loss"] for r in res)
        print(f"{alg:<4} {lr:<6} {mom:<9} {acc:.4f}    {loss:.2e}", flush=True)


if __name__ == "__main__":
    main()
