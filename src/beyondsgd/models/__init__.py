"""Models by name: MLP, a small CNN, and the two-layer net of the NTK papers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from beyondsgd.models.activations import available_activations, make_activation
from beyondsgd.models.cnn import SmallCNN
from beyondsgd.models.mlp import MLP
from beyondsgd.models.two_layer import TwoLayerReLU

_MODELS: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "mlp": (MLP, "fully connected net; options: widths=(128, 128), activation='relu'"),
    "cnn": (SmallCNN, "two conv blocks + linear head, for images; options: channels=(16, 32), activation"),
    "two_layer": (
        lambda input_shape, num_outputs, **kw: TwoLayerReLU(input_shape, num_outputs=num_outputs, **kw),
        "two-layer ReLU net, first layer trained, second fixed to +-1/sqrt(m); options: width=1000",
    ),
}


def available_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(_MODELS)


def model_description(name: str) -> str:
    """One line describing a model, for ``beyondsgd list``."""
    return _MODELS[_key(name)][1]


def _key(name: str) -> str:
    key = str(name).lower().replace("-", "_")
    if key not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return key


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
    if init_scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(init_scale)
    return model.to(device) if device is not None else model


__all__ = [
    "MLP",
    "SmallCNN",
    "TwoLayerReLU",
    "available_activations",
    "available_models",
    "create_model",
    "make_activation",
    "model_description",
]
