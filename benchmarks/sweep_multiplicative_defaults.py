"""The quick sweep behind the registry defaults of the multiplicative family.

For each of m_sgd, h_sgd, m_adam, ..., madam: eta_out over a grid (other hyperparameters at
their registry defaults; for SGD also eta_in in {1, 10}), digits / MLP
(128, 128), batch 64, 10 epochs, seeds 0 and 1; prints final test accuracy (mean) per cell.

    PYTHONPATH=src python benchmarks/sweep_multiplicative_defaults.py
"""

from __future__ import annotations

import torch

from beyondsgd.bench import Experiment, run_experiment
from beyondsgd.data import load_dataset

NAMES = [
    ("m_sgd", 1.0),
    ("h_sgd", 1.0),
    ("m_sgd", 10.0),
    ("h_sgd", 10.0),
    "m_adam",
    "h_adam",
    "m_rmsprop",
    "h_rmsprop",
    "m_adagrad",
    "h_adagrad",
    "madam",
]
GRID = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]


def main() -> None:
    torch.set_num_threads(1)
    data = load_dataset("digits")
    print(f"{'algorithm':18s} " + " ".join(f"{g:>7g}" for g in GRID))
    for entry in NAMES:
        name, extra = (entry[0], {"eta_in": entry[1]}) if isinstance(entry, tuple) else (entry, {})
        cells = []
        for eta_out in GRID:
            accs = [
                run_experiment(
                    Experiment(
                        algorithm=name, epochs=10, seed=s, hyperparams={"eta_out": eta_out, **extra}, device="cpu"
                    ),
                    data=data,
                    progress=False,
                ).final("test_accuracy")
                for s in (0, 1)
            ]
            cells.append(sum(accs) / len(accs))
        label = f"{name} eta_in={extra['eta_in']:g}" if extra else name
        print(f"{label:18s} " + " ".join(f"{a:7.3f}" for a in cells), flush=True)


if __name__ == "__main__":
    main()
