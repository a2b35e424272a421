"""Activation functions by name, shared by every model."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}


def available_activations() -> list[str]:
    """Names accepted by :func:`make_activation`."""
    return sorted(_ACTIVATIONS)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module.

    Args:
        name: one of :func:`available_activations` (case-insensitive).

    Raises:
        ValueError: for an unknown name.
    """
    key = str(name).lower()
    if key not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; available: {', '.join(available_activations())}")
    return _ACTIVATIONS[key]()
