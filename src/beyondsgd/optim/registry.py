"""The optimizer registry: every gradient optimizer of the package by name.

Each entry states its hyperparameters with their allowed ranges
(:mod:`beyondsgd.validation`), the defaults ``beyondsgd compare`` uses, and how
to group a model's parameters (layer-wise methods need one group per layer).
Algorithm modules register themselves on import; :mod:`beyondsgd.optim`
imports them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from beyondsgd.distributed.sharded_params import check_full_tensors
from beyondsgd.optim._scalars import checkable
from beyondsgd.validation import Constraint, check_hyperparams

ParamsLike = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build one registered optimizer.

    Attributes:
        name: registry name (lower case).
        factory: ``factory(params, **hyperparams) -> torch.optim.Optimizer``.
        hyperparams: every accepted hyperparameter and its allowed values.
        defaults: values used when the caller gives none (``beyondsgd compare`` on
            defaults uses exactly these).
        description: one line for ``beyondsgd list``.
        family: which paper/family it belongs to ("baseline", "momentum", ...).
        param_groups: builds the parameter list from a model; ``None`` means
            ``model.parameters()``.
        batch_size: preferred batch size for comparisons (``"full"`` for
            full-batch methods); ``None`` keeps the run's batch size.
        shardable: the update is elementwise (or handles sharded tensors
            itself), so it stays correct when FSDP/ZeRO-3 gives each rank a
            slice of each parameter. ``False`` (the safe default) makes
            :func:`create` refuse sharded parameters: per-tensor norms, spectral
            maps and layer scores need whole tensors.
        aliases: hyperparameters that name the same quantity (``{"lr": "eta_out"}``
            for the multiplicative rules): when the caller gives one, the registered
            default of the other is not passed.
    """

    name: str
    factory: Callable[..., torch.optim.Optimizer]
    hyperparams: Mapping[str, Constraint]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    family: str = "baseline"
    param_groups: Callable[[nn.Module], ParamsLike] | None = None
    batch_size: int | str | None = None
    shardable: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict)


_REGISTRY: dict[str, OptimizerSpec] = {}


def register(spec: OptimizerSpec) -> OptimizerSpec:
    """Add an optimizer to the registry (re-registering a name replaces it)."""
    check_hyperparams(f"optimizer {spec.name!r} defaults", spec.defaults, spec.hyperparams)
    _REGISTRY[spec.name.lower()] = spec
    return spec


def available() -> list[str]:
    """Registered optimizer names, sorted."""
    return sorted(_REGISTRY)


#: Algorithms that are trainers (not optimizers), so that ``create`` can point to them (no import of am).
_TRAINER_HINTS = {
    name: f"beyondsgd.am.{cls}(model, X, y, loss_fn) or beyondsgd.am.fit(model, data, algorithm={name!r})"
    for name, cls in (("tiam", "TIAM"), ("am", "PlainAM"), ("dladmm", "DLADMM"))
}


def get_spec(name: str) -> OptimizerSpec:
    """The registry entry for ``name``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = str(name).lower()
    if key in _TRAINER_HINTS:
        raise ValueError(
            f"{name!r} is a trainer, not a torch.optim optimizer (it keeps per-sample auxiliary variables): "
            f"use {_TRAINER_HINTS[key]}, or the runner (beyondsgd compare --algorithms {key}); "
            f"optimizers: {', '.join(available())}"
        )
    if key not in _REGISTRY:
        raise ValueError(f"unknown optimizer {name!r}; available: {', '.join(available())}")
    return _REGISTRY[key]


def create(name: str, params: ParamsLike | nn.Module, **hyperparams: Any) -> torch.optim.Optimizer:
    """Build a registered optimizer.

    Args:
        name: registry name, see :func:`available`.
        params: parameters or param groups, as for any ``torch.optim`` optimizer,
            or a model (its parameters are grouped the way the optimizer needs).
        **hyperparams: overrides of the registered defaults.

    Returns:
        A ``torch.optim.Optimizer``.

    Raises:
        ValueError: unknown optimizer or hyperparameter, or a value out of range
            (the message names the argument and the allowed range); parameters
            sharded across ranks (FSDP) for an optimizer that needs whole tensors.
        TypeError: a single tensor as ``params`` (torch.optim's rule: an iterable).
    """
    spec = get_spec(name)
    check_hyperparams(f"optimizer {spec.name!r}", checkable(f"optimizer {spec.name!r}", hyperparams), spec.hyperparams)
    if isinstance(params, torch.Tensor):
        raise TypeError(
            f"optimizer {spec.name!r}: params must be an iterable of Tensors or param-group dicts "
            f"(or a model), got a single {torch.typename(params)}; wrap it in a list: [tensor]"
        )
    if isinstance(params, nn.Module):
        params = spec.param_groups(params) if spec.param_groups else params.parameters()
    params = [_materialized(item) for item in params]
    if not spec.shardable:
        check_full_tensors(f"optimizer {spec.name!r}", _tensors(params))
    defaults = {k: v for k, v in spec.defaults.items() if not any(spec.aliases.get(h) == k for h in hyperparams)}
    return spec.factory(params, **{**defaults, **hyperparams})


def _materialized(item: Any) -> Any:
    """A param-group dict whose ``params`` iterator is turned into a list (it is read twice)."""
    if isinstance(item, dict) and "params" in item and not isinstance(item["params"], torch.Tensor):
        return {**item, "params": list(item["params"])}
    return item


def _tensors(params: list[Any]) -> list[torch.Tensor]:
    """The tensors of a parameter list or of a list of param-group dicts (named or not)."""
    out: list[torch.Tensor] = []
    for item in params:
        if isinstance(item, dict):
            group = item["params"]
            out.extend(_tensors([group] if isinstance(group, torch.Tensor) else list(group)))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append(item[1])  # (name, tensor), as from model.named_parameters()
        else:
            out.append(item)
    return out
