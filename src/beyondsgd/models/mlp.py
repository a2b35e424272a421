"""Fully connected network (multilayer perceptron)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from beyondsgd.models.activations import make_activation


class MLP(nn.Sequential):
    """``Flatten -> [Linear -> act] * len(widths) -> Linear``.

    A plain ``nn.Sequential`` so that layer-wise algorithms (DSGD, alternating
    minimization) can walk its ``Linear`` layers in order.

    Args:
        input_shape: shape of one sample (flattened on entry).
        num_outputs: output units (classes, or regression targets).
        widths: hidden layer widths; ``()`` gives a linear model.
        activation: name from :func:`beyondsgd.models.available_activations`.
        bias: whether the Linear layers have biases.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        widths: Sequence[int] = (128, 128),
        activation: str = "relu",
        bias: bool = True,
    ) -> None:
        widths = tuple(int(w) for w in widths)
        if any(w < 1 for w in widths):
            raise ValueError(f"invalid widths={widths!r}: every hidden width must be a positive integer")
        if num_outputs < 1:
            raise ValueError(f"invalid num_outputs={num_outputs!r}: expected a positive integer")
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(input_shape)
        for w in widths:
            layers += [nn.Linear(fan_in, w, bias=bias), make_activation(activation)]
            fan_in = w
        layers.append(nn.Linear(fan_in, num_outputs, bias=bias))
        super().__init__(*layers)
        self.input_shape = tuple(input_shape)
        self.widths = widths
        self.activation = activation
        self.num_outputs = num_outputs

    def linear_layers(self) -> list[nn.Linear]:
        """The Linear layers, input to output."""
        return [m for m in self if isinstance(m, nn.Linear)]
