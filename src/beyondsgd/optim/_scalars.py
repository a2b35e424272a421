"""Scalars that are Python numbers in eager mode and 0-dim tensors under ``torch.compile``.

torch.optim keeps each parameter's ``step`` as a 0-dim tensor and reads it with ``.item()``
in eager mode but keeps it a tensor while dynamo traces (``torch.optim.optimizer._get_value``),
so a compiled step does not specialize on (and recompile for) every new step count.  The
optimizers of this package follow the same convention with these helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.optimizer import _get_scalar_dtype

Scalar = float | torch.Tensor


def compiling() -> bool:
    """True while dynamo traces (``torch.compile``)."""
    return torch.compiler.is_compiling()


def value(x: Any) -> Any:
    """``x.item()`` for a tensor in eager mode; ``x`` itself while compiling or for a number."""
    if isinstance(x, torch.Tensor) and not compiling():
        return x.item()
    return x


def new_step() -> torch.Tensor:
    """A fresh step counter, as torch.optim makes it (0-dim, CPU, float32 or float64)."""
    return torch.tensor(0.0, dtype=_get_scalar_dtype())


def as_step(x: Any) -> torch.Tensor:
    """An old state_dict's Python-number ``step`` as torch.optim's 0-dim tensor."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.tensor(float(x), dtype=_get_scalar_dtype())


def axpy_(y: torch.Tensor, x: torch.Tensor, c: Scalar) -> torch.Tensor:
    """In place ``y += c * x`` for a number or a 0-dim tensor ``c``."""
    if isinstance(c, torch.Tensor):
        return y.add_(x * c)
    return y.add_(x, alpha=c)


def checkable(owner: str, options: Mapping[str, Any], keys: tuple[str, ...] = ("lr", "eta_out")) -> dict[str, Any]:
    """``options`` with one-element Tensor step sizes read as numbers, for the range checks.

    torch.optim accepts a Tensor ``lr`` (the recipe for compiled steps with LR schedulers);
    its value must pass the same range check as a number would.

    Raises:
        ValueError: a Tensor step size with other than one element.
    """
    out = dict(options)
    for key in keys:
        v = out.get(key)
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                raise ValueError(
                    f"{owner}: invalid {key}: a Tensor {key} must have exactly one element, got shape {tuple(v.shape)}"
                )
            out[key] = float(v.detach())
    return out
