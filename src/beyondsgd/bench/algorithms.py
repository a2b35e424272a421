"""Every algorithm the runner can train with, by name.

Gradient optimizers come from :mod:`beyondsgd.optim`'s registry and are wrapped
in :class:`~beyondsgd.bench.trainer.GradientTrainer`.  Algorithms that are not
``torch.optim`` optimizers (alternating minimization) register a
:class:`TrainerSpec` here with :func:`register_trainer`; the modules that do so
are listed in ``_TRAINER_MODULES`` and imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from beyondsgd import optim
from beyondsgd.bench.trainer import GradientTrainer, LossFn, Trainer
from beyondsgd.validation import Constraint, check_hyperparams

# Modules that register trainer-based algorithms when imported.
_TRAINER_MODULES: tuple[str, ...] = ("beyondsgd.am",)


@dataclass(frozen=True)
class TrainerSpec:
    """A registered algorithm that is not a ``torch.optim`` optimizer.

    Attributes:
        name: registry name.
        factory: ``factory(model, X, y, loss_fn, **hyperparams) -> Trainer``.
        hyperparams: accepted hyperparameters and their ranges.
        defaults: values used when none are given.
        description: one line for ``beyondsgd list``.
        family: the paper/family it belongs to.
        batch_size: preferred batch size for comparisons (``"full"`` or an int).
    """

    name: str
    factory: Callable[..., Trainer]
    hyperparams: Mapping[str, Constraint]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    family: str = "alternating minimization"
    batch_size: int | str | None = None


@dataclass(frozen=True)
class AlgorithmInfo:
    """What ``beyondsgd list`` and ``compare`` need to know of an algorithm."""

    name: str
    kind: str  # "optimizer" or "trainer"
    family: str
    description: str
    defaults: Mapping[str, Any]
    batch_size: int | str | None


_TRAINERS: dict[str, TrainerSpec] = {}
_loaded = False


def register_trainer(spec: TrainerSpec) -> TrainerSpec:
    """Make a trainer-based algorithm available to the runner and the CLI."""
    check_hyperparams(f"algorithm {spec.name!r} defaults", spec.defaults, spec.hyperparams)
    _TRAINERS[spec.name.lower()] = spec
    return spec


def _load_trainer_modules() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _TRAINER_MODULES:
            importlib.import_module(module)


def available_algorithms() -> list[str]:
    """Every algorithm name: registered optimizers and trainers."""
    _load_trainer_modules()
    return sorted(set(optim.available()) | set(_TRAINERS))


def algorithm_info(name: str) -> AlgorithmInfo:
    """Describe an algorithm.

    Raises:
        ValueError: unknown name, listing the known ones.
    """
    _load_trainer_modules()
    key = str(name).lower()
    if key in _TRAINERS:
        t = _TRAINERS[key]
        return AlgorithmInfo(t.name, "trainer", t.family, t.description, dict(t.defaults), t.batch_size)
    if key in optim.available():
        s = optim.get_spec(key)
        return AlgorithmInfo(s.name, "optimizer", s.family, s.description, dict(s.defaults), s.batch_size)
    raise ValueError(f"unknown algorithm {name!r}; available: {', '.join(available_algorithms())}")


def _check_model_fits_data(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> None:
    """One tiny forward pass and loss, so a mismatch is a clear error before training, not deep inside it."""
    if X.shape[0] == 0:
        raise ValueError("the training set is empty")
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()
            loss_fn(model(X[:2]), y[:2])
    except (RuntimeError, IndexError, ValueError) as err:
        raise ValueError(
            f"model {type(model).__name__} does not fit the data (inputs of shape {tuple(X.shape[1:])}, "
            f"targets of shape {tuple(y.shape[1:])} and dtype {y.dtype}): {err}"
        ) from None
    finally:
        model.train(was_training)


def make_trainer(
    name: str,
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    hyperparams: Mapping[str, Any] | None = None,
) -> Trainer:
    """Build the trainer that runs algorithm ``name`` on ``model``.

    Args:
        name: an entry of :func:`available_algorithms`.
        model: the model to train (already on its device).
        X, y: the training set, on the model's device.
        loss_fn: mean loss.
        hyperparams: overrides of the algorithm's defaults.

    Raises:
        ValueError: unknown algorithm or hyperparameter, value out of range.
    """
    hyperparams = dict(hyperparams or {})
    info = algorithm_info(name)
    _check_model_fits_data(model, X, y, loss_fn)
    if info.kind == "trainer":
        spec = _TRAINERS[info.name]
        check_hyperparams(f"algorithm {spec.name!r}", hyperparams, spec.hyperparams)
        return spec.factory(model, X, y, loss_fn, **{**spec.defaults, **hyperparams})
    optimizer = optim.create(info.name, model, **hyperparams)
    return GradientTrainer(model, optimizer, X, y, loss_fn)
