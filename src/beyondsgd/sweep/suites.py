"""Built-in sweep configs (``beyondsgd sweep --suite NAME``).

``small``: the offline problems, every registered algorithm (selected by family,
so algorithms added later are included automatically), each tuned over the
``auto`` step-size grid (its registered default × 0.1, 0.3, 1, 3, 10; ``eta_out``
for the multiplicative-rule optimizers, skipped with a note where they are not
installed) on a validation split, then re-run over 3 seeds.  Sized to finish in well under 15
minutes on 2 CPU cores with the algorithms of this repository (the docs give the
measured time).  The targets are the project's choice: reachable by a tuned
baseline within the budget, but not trivially.
"""

from __future__ import annotations

import copy
from typing import Any

SUITES: dict[str, dict[str, Any]] = {
    "small": {
        "name": "small",
        "problems": [
            {
                "name": "digits-mlp",
                "dataset": "digits",
                "model": "mlp",
                "model_options": {"widths": [64]},
                "epochs": 8,
                "batch_size": None,
                "target": {"test_accuracy": 0.97},
            },
            {
                "name": "mnist1d-mlp",
                "dataset": "mnist1d",
                "model": "mlp",
                "dataset_options": {"n_train": 2000, "n_test": 1000},
                "model_options": {"widths": [128, 128]},
                "epochs": 8,
                "batch_size": None,
                "target": {"test_accuracy": 0.5},
            },
            {
                "name": "blobs-mlp",
                "dataset": "blobs",
                "model": "mlp",
                "model_options": {"widths": [32]},
                "epochs": 8,
                "batch_size": None,
                "target": {"test_accuracy": 0.85},
            },
            {
                "name": "teacher-mlp",
                "dataset": "teacher",
                "model": "mlp",
                "model_options": {"widths": [64]},
                "epochs": 8,
                "batch_size": None,
                "target": {"test_loss": 0.02},
            },
        ],
        # Multiplicative-rule optimizers step with eta_out; their lr does not act on the M rule
        # (a flat lr sensitivity curve in a first run of this suite showed it).
        "algorithms": {name: "auto:eta_out" for name in ("m_sgd", "m_adam", "m_adagrad", "m_rmsprop")},
        "skip_missing": True,
        "families": ["all"],
        "search": {
            "method": "auto",
            "trials": 5,
            "seed": 0,
            "tuning_seeds": 1,
            "validation_fraction": 0.2,
            "select": "final",
        },
        "seeds": 3,
        "device": "cpu",
    },
}


def suite_config(name: str) -> dict[str, Any]:
    """A copy of a built-in suite's raw config.

    Raises:
        ValueError: unknown suite, listing the known ones.
    """
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; available: {', '.join(sorted(SUITES))}")
    return copy.deepcopy(SUITES[name])
