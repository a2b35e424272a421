"""Benchmark machinery: the runner, comparisons, metrics, statistics, results files, plots and reports.

The names below are the package's front door (``from beyondsgd.bench import
Experiment, run_experiment``). The trainer interface lives in
:mod:`beyondsgd.training` and the catalogue of algorithm names in
:mod:`beyondsgd.algorithms`; both are re-exported here for convenience.
"""

from beyondsgd.algorithms import (
    AlgorithmInfo,
    TrainerSpec,
    algorithm_info,
    available_algorithms,
    make_trainer,
    register_trainer,
)
from beyondsgd.bench.runner import HISTORY_COLUMNS, Experiment, RunResult, loss_for, run_experiment
from beyondsgd.training import GradientTrainer, Trainer

__all__ = [
    "HISTORY_COLUMNS",
    "AlgorithmInfo",
    "Experiment",
    "GradientTrainer",
    "RunResult",
    "Trainer",
    "TrainerSpec",
    "algorithm_info",
    "available_algorithms",
    "loss_for",
    "make_trainer",
    "register_trainer",
    "run_experiment",
]
