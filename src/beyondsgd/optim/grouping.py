"""Parameter groups for the user: weight decay by name, and zero tensors out of rules that freeze zeros.

:func:`decay_groups` is the grouping of pytorch_optimizer's ``create_optimizer``
(biases and normalization layers get no weight decay);
:func:`beyondsgd.optim.create` applies it, and :func:`additive_zero_groups`,
when given a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["additive_zero_groups", "decay_groups", "no_decay_names"]

#: Default name fragments of parameters that get no weight decay.
NO_DECAY = ("bias", "norm")


def _check_tokens(no_decay: Any) -> tuple[str, ...]:
    if isinstance(no_decay, str) or not isinstance(no_decay, Iterable):
        raise TypeError(f"no_decay must be a tuple of name fragments such as ('bias', 'norm'), got {no_decay!r}")
    tokens = tuple(no_decay)
    bad = [t for t in tokens if not isinstance(t, str) or not t]
    if bad:
        raise TypeError(f"no_decay must hold non-empty strings (name fragments), got {bad!r} in {no_decay!r}")
    return tuple(t.lower() for t in tokens)


def no_decay_names(model: nn.Module, no_decay: Iterable[str] = NO_DECAY) -> list[str]:
    """Qualified names of the parameters that get no weight decay.

    A parameter gets none when one of the fragments occurs (case-insensitively) in
    its qualified name (``"0.bias"``, ``"norm1.weight"``) or in the class name of
    the module that owns it (``LayerNorm``, ``BatchNorm2d``, ``GroupNorm``,
    ``RMSNorm`` all contain ``"norm"``).

    Args:
        model: the model.
        no_decay: name fragments; ``()`` decays every parameter.

    Returns:
        The names, in ``model.named_parameters()`` order.

    Raises:
        TypeError: ``no_decay`` is a plain string or holds anything but non-empty strings.
    """
    tokens = _check_tokens(no_decay)
    owner: dict[int, str] = {}
    for _, module in model.named_modules():
        for p in module.parameters(recurse=False):
            owner.setdefault(id(p), type(module).__name__.lower())
    out = []
    for name, p in model.named_parameters():
        where = (name.lower(), owner.get(id(p), ""))
        if any(t in w for t in tokens for w in where):
            out.append(name)
    return out


def decay_groups(model: nn.Module, weight_decay: Any, no_decay: Iterable[str] = NO_DECAY) -> list[dict[str, Any]]:
    """Two param groups: ``weight_decay`` for most parameters, 0 for biases and norm layers.

    Args:
        model: the model (every parameter, frozen ones too, as ``model.parameters()`` gives them).
        weight_decay: the decay of the first group.
        no_decay: name fragments that select the second group, see :func:`no_decay_names`.

    Returns:
        ``[{"params": [(name, tensor), ...], "weight_decay": ...}, ...]`` (named
        parameters, so the optimizer records ``param_names``); an empty group is left out.

    Raises:
        TypeError: a bad ``no_decay`` (see :func:`no_decay_names`).
    """
    skip = set(no_decay_names(model, no_decay))
    named = list(model.named_parameters())
    groups = []
    for decay, members in (
        (weight_decay, [(n, p) for n, p in named if n not in skip]),
        (0.0, [(n, p) for n, p in named if n in skip]),
    ):
        if members:
            groups.append({"params": members, "weight_decay": decay})
    return groups


def additive_zero_groups(
    groups: list[dict[str, Any]], freezes_zeros: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Move tensors that are exactly zero into groups of their own with ``rule="additive"``.

    A rule that multiplies the weight (M, ``exp``) can never move an exact zero; a
    zero-initialized bias would stay zero for ever.  Each group whose options make
    ``freezes_zeros(group)`` true is split into its nonzero tensors (unchanged) and
    its all-zero tensors, which get the same options but ``rule="additive"`` (the
    base optimizer's own step, with the group's ``lr``).  Tensors with only some
    zero entries stay where they are (the optimizer still warns about them).

    Args:
        groups: param-group dicts whose ``params`` are lists of tensors or of ``(name, tensor)``.
        freezes_zeros: whether a group with these options can never move a zero.

    Returns:
        The new list of groups; empty groups are left out.
    """
    out: list[dict[str, Any]] = []
    for group in groups:
        params = list(group["params"])
        tensors = [p[1] if isinstance(p, tuple) else p for p in params]
        with torch.no_grad():
            zero = [bool(t.numel()) and not bool(t.any()) for t in tensors]
        if not any(zero) or not freezes_zeros(group):
            out.append(group)
            continue
        for is_zero, extra in ((False, {}), (True, {"rule": "additive"})):
            idx = [i for i, z in enumerate(zero) if z == is_zero]
            if not idx:
                continue
            out.append({**group, **extra, "params": [params[i] for i in idx]})
    return out
