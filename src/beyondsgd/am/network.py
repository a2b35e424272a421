"""Reading an MLP (``nn.Sequential`` of Flatten/Linear/activation) into AM's layer blocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from torch import nn

from beyondsgd.am.projections import Activation, activation_from_module


@dataclass
class LayerStructure:
    """The Linear layers of an MLP, input to output, and the hidden activations between them."""

    linears: list[nn.Linear]
    activations: list[Activation]
    flatten: bool

    @property
    def widths(self) -> list[int]:
        """Output width of every Linear layer."""
        return [lin.out_features for lin in self.linears]


def parse_mlp(model: nn.Module) -> LayerStructure:
    """Check that ``model`` is ``[Flatten] -> Linear -> act -> ... -> Linear`` and split it.

    Raises:
        ValueError: anything else (a CNN, a missing bias, an activation without
            a z-projection), with what is supported.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"alternating minimization trains fully connected nets (model 'mlp', an nn.Sequential of "
            f"Flatten/Linear/activation); got {type(model).__name__}"
        )
    layers = list(model.children())
    flatten = bool(layers) and isinstance(layers[0], nn.Flatten)
    if flatten:
        layers = layers[1:]
    linears, acts = layers[0::2], layers[1::2]
    if not linears or len(linears) != len(acts) + 1 or not all(type(m) is nn.Linear for m in linears):
        names = ", ".join(type(m).__name__ for m in model.children())
        raise ValueError(
            "alternating minimization needs an MLP: [Flatten,] Linear, activation, ..., Linear "
            f"(model 'mlp'); got layers {names}"
        )
    if any(lin.bias is None for lin in linears):
        raise ValueError("alternating minimization needs Linear layers with biases (bias=True)")
    return LayerStructure(cast("list[nn.Linear]", list(linears)), [activation_from_module(a) for a in acts], flatten)
