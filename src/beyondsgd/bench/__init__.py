"""Benchmark machinery: runner, metrics, results files, plots and reports."""

from beyondsgd.bench.algorithms import (
    AlgorithmInfo,
    TrainerSpec,
    algorithm_info,
    available_algorithms,
    make_trainer,
    register_trainer,
)
from beyondsgd.bench.runner import HISTORY_COLUMNS, Experiment, RunResult, loss_for, run_experiment
from beyondsgd.bench.trainer import GradientTrainer, Trainer

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
