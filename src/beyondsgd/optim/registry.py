"""The optimizer registry: every gradient optimizer of the package by name.

Each entry states its hyperparameters with their allowed ranges
(:mod:`beyondsgd.validation`), the defaults ``beyondsgd compare`` uses, and how
to group a model's parameters (layer-wise methods need one group per layer).
Algorithm modules register themselves on import; :mod:`beyondsgd.optim`
imports them all.
"""

from __future__ import annotations

import warnings
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
        variant: ``variant(hyperparams)``: the spec :func:`create` uses instead for these
            hyperparameters, or ``None`` (e.g. a hybrid rule with ``gamma = 1`` is rule M,
            with M's defaults and aliases).
        watch_model: ``watch_model(optimizer, model)``, called by :func:`create` when it is
            given a model (DSGD hooks the model's Linear layers for its spectral scores).
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
    variant: Callable[[Mapping[str, Any]], OptimizerSpec | None] | None = None
    watch_model: Callable[[torch.optim.Optimizer, nn.Module], Any] | None = None


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


def create(
    name: str,
    params: ParamsLike | nn.Module,
    *,
    no_decay: Iterable[str] = ("bias", "norm"),
    additive_zeros: bool = True,
    **hyperparams: Any,
) -> torch.optim.Optimizer:
    """Build a registered optimizer.

    Given a model, the parameters are grouped for the user (docs/optimizers.md,
    "Grouping a model's parameters"):

    * layer-wise optimizers (``dsgd*``, whose entry has ``param_groups``) get their
      own grouping, one group per layer, and nothing else (they have no weight decay);
    * otherwise, with ``weight_decay > 0``, biases and parameters of normalization
      layers (selected by ``no_decay``) go to a group with ``weight_decay = 0``, as
      pytorch_optimizer's ``create_optimizer`` does;
    * for rules that can never move an exact zero (``m_*``, ``madam``, ``h_*`` with
      ``gamma = 1``), tensors that are all zero at construction (zero-initialized
      biases) go to a group with ``rule="additive"`` unless ``additive_zeros=False``.

    Args:
        name: registry name, see :func:`available`.
        params: parameters or param groups, as for any ``torch.optim`` optimizer
            (used as given), or a model (grouped as above).
        no_decay: fragments of parameter or module class names that get no weight
            decay (case-insensitive substrings; ``()`` decays everything); used only
            for a model and ``weight_decay > 0``.
        additive_zeros: for a model, give all-zero tensors the additive rule when the
            optimizer's rule would keep them at zero; ``False`` keeps them in their
            group (the optimizer then warns, ``FrozenZerosWarning``).
        **hyperparams: overrides of the registered defaults.

    Returns:
        A ``torch.optim.Optimizer``.

    Raises:
        ValueError: unknown optimizer or hyperparameter, or a value out of range
            (the message names the argument and the allowed range); parameters
            sharded across ranks (FSDP) for an optimizer that needs whole tensors.
        TypeError: a single tensor as ``params`` (torch.optim's rule: an iterable);
            a ``no_decay`` that is not a tuple of non-empty strings; an ``additive_zeros``
            that is not a bool.

    References:
        pytorch_optimizer's ``create_optimizer`` / ``get_optimizer_parameters``
        (the decay/no-decay split by name).
    """
    spec = get_spec(name)
    check_hyperparams(f"optimizer {spec.name!r}", checkable(f"optimizer {spec.name!r}", hyperparams), spec.hyperparams)
    spec = _resolved_spec(spec, hyperparams)
    if isinstance(params, torch.Tensor):
        raise TypeError(
            f"optimizer {spec.name!r}: params must be an iterable of Tensors or param-group dicts "
            f"(or a model), got a single {torch.typename(params)}; wrap it in a list: [tensor]"
        )
    if not isinstance(additive_zeros, bool):
        raise TypeError(f"optimizer {spec.name!r}: additive_zeros must be True or False, got {additive_zeros!r}")
    options = _options(spec, hyperparams)
    model = None
    if isinstance(params, nn.Module):
        model, params = params, _model_groups(spec, params, options, no_decay, additive_zeros)
    params = [_materialized(item) for item in params]
    if not spec.shardable:
        check_full_tensors(f"optimizer {spec.name!r}", _tensors(params))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimizer = spec.factory(params, **options)
    for w in caught:
        warnings.warn(_with_grouping_hint(w.message), w.category, stacklevel=2)
    if model is not None and spec.watch_model is not None:
        spec.watch_model(optimizer, model)
    return optimizer


def _with_grouping_hint(message: Warning | str) -> Warning | str:
    """A ``FrozenZerosWarning`` with the hint that ``create`` can do the grouping; other warnings as they are."""
    from beyondsgd.optim.multiplicative import FrozenZerosWarning

    if not isinstance(message, FrozenZerosWarning):
        return message
    return FrozenZerosWarning(
        f"{message} beyondsgd.optim.create(name, model) does this by default: it puts tensors that are all "
        "zero at construction in a group with rule='additive' (additive_zeros=True; docs/optimizers.md)."
    )


def _resolved_spec(spec: OptimizerSpec, hyperparams: Mapping[str, Any]) -> OptimizerSpec:
    return (spec.variant(hyperparams) if spec.variant is not None else None) or spec


def _options(spec: OptimizerSpec, hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """The registered defaults under the caller's values; a default whose alias was given is dropped."""
    defaults = {k: v for k, v in spec.defaults.items() if not any(spec.aliases.get(h) == k for h in hyperparams)}
    return {**defaults, **hyperparams}


def resolved_options(name: str, hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """The options :func:`create` builds ``name`` with, aliases written out (for records and reports).

    ``create("madam", lr=0.1)`` steps with ``eta_out = 0.1``: the result says
    ``{"lr": 0.1, "eta_out": 0.1}``, not the registered ``eta_out`` default next to the
    given ``lr``. Tensors are given as numbers.
    """
    spec = _resolved_spec(get_spec(name), hyperparams)
    options = {
        k: (float(v) if isinstance(v, torch.Tensor) and v.numel() == 1 else v)
        for k, v in _options(spec, hyperparams).items()
    }
    for given, other in spec.aliases.items():
        if given in options and other not in options:
            options[other] = options[given]
    return options


def _model_groups(
    spec: OptimizerSpec, model: nn.Module, options: dict[str, Any], no_decay: Iterable[str], additive_zeros: bool
) -> list[Any]:
    """The param groups :func:`create` builds from a model (see there)."""
    from beyondsgd.optim.grouping import additive_zero_groups, decay_groups, no_decay_names

    no_decay_names(nn.Module(), no_decay)  # checks no_decay even where it is not used
    if next(model.parameters(), None) is None:  # as torch.optim says for an empty list (not one empty group)
        raise ValueError(f"optimizer {spec.name!r}: the model {type(model).__name__} has no parameters")
    if spec.param_groups is not None:
        return list(spec.param_groups(model))
    decay = options.get("weight_decay", 0.0)
    if "weight_decay" in spec.hyperparams and (isinstance(decay, torch.Tensor) or decay != 0):
        groups = decay_groups(model, decay, no_decay)
    else:
        groups = [{"params": list(model.named_parameters())}]
    if additive_zeros:
        groups = additive_zero_groups(groups, lambda group: _freezes_zeros(spec, options, group))
    return groups


def _freezes_zeros(spec: OptimizerSpec, options: dict[str, Any], group: dict[str, Any]) -> bool:
    """Whether the optimizer would keep an exact zero of this group at zero.

    Asked of the optimizer itself: it warns (``FrozenZerosWarning``) about a zero tensor
    in such a group; built on a one-element probe, which is never stepped.
    """
    from beyondsgd.optim.multiplicative import FrozenZerosWarning

    extra = {k: v for k, v in group.items() if k not in ("params", "param_names")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FrozenZerosWarning)
        spec.factory([{"params": [torch.zeros(1)], **extra}], **options)
    return any(issubclass(w.category, FrozenZerosWarning) for w in caught)


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
