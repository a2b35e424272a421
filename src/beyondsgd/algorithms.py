"""The one catalogue of algorithm names: gradient optimizers and trainers together.

Gradient optimizers come from :mod:`beyondsgd.optim`'s registry and are wrapped
in :class:`~beyondsgd.training.GradientTrainer`. Algorithms that are not
``torch.optim`` optimizers (alternating minimization) are :class:`TrainerSpec`
entries: the package's own are declared at the bottom of this module from what
:mod:`beyondsgd.am` exports, and anyone can add one with :func:`register_trainer`.

Layering: this module sits above the algorithm packages (``optim``, ``am``) and
below the benchmark runner, so the runner, the sweeps and the CLI look names up
here and the algorithms never import any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from beyondsgd import am, optim
from beyondsgd.training import GradientTrainer, LossFn, Trainer
from beyondsgd.validation import Constraint, check_hyperparams


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
    hyperparams: Mapping[str, Constraint] = field(default_factory=dict)


_TRAINERS: dict[str, TrainerSpec] = {}


def register_trainer(spec: TrainerSpec) -> TrainerSpec:
    """Make a trainer-based algorithm available to the runner and the CLI."""
    check_hyperparams(f"algorithm {spec.name!r} defaults", spec.defaults, spec.hyperparams)
    _TRAINERS[spec.name.lower()] = spec
    return spec


def available_algorithms() -> list[str]:
    """Every algorithm name: registered optimizers and trainers."""
    return sorted(set(optim.available()) | set(_TRAINERS))


def algorithm_info(name: str) -> AlgorithmInfo:
    """Describe an algorithm.

    Raises:
        ValueError: unknown name, listing the known ones.
    """
    key = str(name).lower()
    if key in _TRAINERS:
        t = _TRAINERS[key]
        return AlgorithmInfo(
            t.name, "trainer", t.family, t.description, dict(t.defaults), t.batch_size, dict(t.hyperparams)
        )
    if key in optim.available():
        s = optim.get_spec(key)
        return AlgorithmInfo(
            s.name, "optimizer", s.family, s.description, dict(s.defaults), s.batch_size, dict(s.hyperparams)
        )
    raise ValueError(f"unknown algorithm {name!r}; available: {', '.join(available_algorithms())}")


def effective_hyperparams(name: str, hyperparams: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The hyperparameters algorithm ``name`` runs with: its defaults under ``hyperparams``.

    For optimizers, as :func:`beyondsgd.optim.create` resolves them (an alias given, e.g. a
    multiplicative rule's ``lr`` for ``eta_out``, replaces the other's default): what a
    run's record should say.
    """
    info = algorithm_info(name)
    if info.kind == "optimizer":
        return optim.resolved_options(info.name, dict(hyperparams or {}))
    return {**info.defaults, **dict(hyperparams or {})}


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


# The package's own trainers, declared from what beyondsgd.am exports. Each class is its own
# factory: it takes (model, X, y, loss_fn, **hyperparams).
_AM_FAMILY = "TIAM (alternating minimization)"
for _name, _cls, _hyperparams, _defaults, _description in (
    ("tiam", am.TIAM, am.TIAM_HYPERPARAMS, am.TIAM_DEFAULTS,
     "triple-inertial alternating minimization (gradient-free, full batch)"),
    ("am", am.PlainAM, am.AM_HYPERPARAMS, am.AM_DEFAULTS,
     "plain alternating minimization (TIAM with no inertia)"),
    ("dladmm", am.DLADMM, am.DLADMM_HYPERPARAMS, am.DLADMM_DEFAULTS,
     "dlADMM: relaxed ADMM, dual variable on the last layer, backward-then-forward sweeps (full batch)"),
):  # fmt: skip
    register_trainer(TrainerSpec(_name, _cls, _hyperparams, _defaults, _description, _AM_FAMILY, "full"))

__all__ = [
    "AlgorithmInfo",
    "TrainerSpec",
    "algorithm_info",
    "available_algorithms",
    "effective_hyperparams",
    "make_trainer",
    "register_trainer",
]
