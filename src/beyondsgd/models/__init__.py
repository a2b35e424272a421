"""Models by name: MLP, a small CNN, a small ResNet (BatchNorm + residual), the two-layer net of the NTK papers, and your own.

Your own model: ``register_model(name, factory)`` with
``factory(input_shape, num_outputs, **options) -> nn.Module``, or, from an
installed package, an entry point in the group ``beyondsgd.models`` (read
lazily, the first time a name is not found or the list is asked for).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from beyondsgd._plugins import load_entry_points
from beyondsgd.models.activations import available_activations, make_activation
from beyondsgd.models.cnn import SmallCNN
from beyondsgd.models.mlp import MLP
from beyondsgd.models.resnet import BasicBlock, SmallResNet
from beyondsgd.models.two_layer import TwoLayerReLU

_MODELS: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "mlp": (MLP, "fully connected net; options: widths=(128, 128), activation='relu'"),
    "cnn": (SmallCNN, "two conv blocks + linear head, for images; options: channels=(16, 32), activation"),
    "resnet_small": (
        SmallResNet,
        "small ResNet for images (BatchNorm, residual blocks, ~20k params); options: channels=(8, 16, 32), activation",
    ),
    "two_layer": (
        lambda input_shape, num_outputs, **kw: TwoLayerReLU(input_shape, num_outputs=num_outputs, **kw),
        "two-layer ReLU net, first layer trained, second fixed to +-1/sqrt(m); options: width=1000",
    ),
}


log = logging.getLogger(__name__)

#: Entry-point group through which installed packages add models.
ENTRY_POINT_GROUP = "beyondsgd.models"

_ORIGINS: dict[str, str] = {name: "built-in" for name in _MODELS}
_entry_points_loaded = False


def available_models() -> list[str]:
    """Names accepted by :func:`create_model` (built-in, registered and from entry points)."""
    _load_entry_points()
    return sorted(_MODELS)


def model_description(name: str) -> str:
    """One line describing a model, for ``beyondsgd list``."""
    return _MODELS[_key(name)][1]


def model_origin(name: str) -> str:
    """Where a model comes from: ``built-in``, ``register_model (module)`` or ``entry point ...``."""
    return _ORIGINS[_key(name)]


def _normalize(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"invalid model name={name!r}: expected a non-empty string")
    return name.strip().lower().replace("-", "_")


def _key(name: str) -> str:
    key = _normalize(name)
    if key not in _MODELS:
        _load_entry_points()
    if key not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return key


def _describe(factory: Callable[..., nn.Module], description: str | None) -> str:
    if description:
        return description
    doc = (inspect.getdoc(factory) or "").strip().splitlines()
    return doc[0] if doc else f"user model {getattr(factory, '__qualname__', factory)!r}"


def register_model(
    name: str, factory: Callable[..., nn.Module], description: str | None = None, *, overwrite: bool = False
) -> None:
    """Make a model of your own available by name, to compare, sweeps and :func:`create_model`.

    Args:
        name: the name (case-insensitive, ``-`` and ``_`` are the same).
        factory: ``factory(input_shape, num_outputs, **options)`` returning an
            ``nn.Module`` that maps a batch ``(n, *input_shape)`` to ``(n, num_outputs)``;
            an ``nn.Module`` subclass with that constructor works as is.
            ``--model-option KEY=VALUE`` becomes ``options``.
        description: one line for ``beyondsgd list`` (default: the first line of
            the factory's docstring).
        overwrite: replace a model of the same name (built-ins included).

    Raises:
        ValueError: bad name, a name already taken (without ``overwrite``), or a
            factory that is not callable.
    """
    key = _normalize(name)
    if not callable(factory):
        raise ValueError(f"invalid factory={factory!r}: expected a callable (input_shape, num_outputs, **options)")
    _load_entry_points()
    if key in _MODELS and not overwrite:
        raise ValueError(f"model {key!r} is already registered ({_ORIGINS[key]}); pass overwrite=True to replace it")
    _MODELS[key] = (factory, _describe(factory, description))
    _ORIGINS[key] = f"register_model ({getattr(factory, '__module__', None) or '?'})"


def unregister_model(name: str) -> None:
    """Remove a model added with :func:`register_model` or an entry point.

    Raises:
        ValueError: unknown name, or a built-in model.
    """
    key = _key(name)
    if _ORIGINS[key] == "built-in":
        raise ValueError(f"model {key!r} is built in and cannot be unregistered")
    del _MODELS[key], _ORIGINS[key]


def _load_entry_points() -> None:
    """Register the models of installed packages (group ``beyondsgd.models``), once; broken ones are skipped."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True

    def register(name: str, load: Callable[[], Any], origin: str) -> None:
        key = _normalize(name)
        if key in _MODELS:
            raise ValueError(f"the name is already taken ({_ORIGINS[key]})")
        factory = load()
        _MODELS[key] = (factory, _describe(factory, None))
        _ORIGINS[key] = origin

    load_entry_points(ENTRY_POINT_GROUP, "model", register, log)


def reload_entry_points() -> None:
    """Read the ``beyondsgd.models`` entry points again (after installing a package at run time)."""
    global _entry_points_loaded
    _entry_points_loaded = False
    _load_entry_points()


def create_model(
    name: str,
    input_shape: Sequence[int],
    num_outputs: int,
    *,
    init_scale: float = 1.0,
    device: torch.device | str | None = None,
    **options: Any,
) -> nn.Module:
    """Build a model by name.

    Args:
        name: one of :func:`available_models`.
        input_shape: shape of one sample.
        num_outputs: number of classes or regression outputs.
        init_scale: every parameter is multiplied by this after the default
            initialization (used by the sensitivity-to-initialization studies).
        device: where the parameters live.
        **options: model-specific keyword arguments (see :func:`model_description`).

    Raises:
        ValueError: unknown name, unknown option, or an option the model rejects.
    """
    factory = _MODELS[_key(name)][0]
    if not (isinstance(init_scale, (int, float)) and init_scale > 0):
        raise ValueError(f"invalid init_scale={init_scale!r}: expected a positive number")
    try:
        model = factory(tuple(input_shape), num_outputs, **options)
    except TypeError as err:  # unknown keyword: say which model and which options exist
        raise ValueError(f"bad option for model {name!r}: {err}. {model_description(name)}") from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"the factory of model {name!r} returned {type(model).__name__}, expected a torch nn.Module")
    if init_scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(init_scale)
    return model.to(device) if device is not None else model


__all__ = [
    "MLP",
    "BasicBlock",
    "SmallCNN",
    "SmallResNet",
    "TwoLayerReLU",
    "available_activations",
    "available_models",
    "create_model",
    "make_activation",
    "model_description",
    "model_origin",
    "register_model",
    "unregister_model",
]
