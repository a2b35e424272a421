"""Evaluating a model on a data set (summary statistics over seeds live in :mod:`beyondsgd.bench.stats`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from beyondsgd.training.trainer import LossFn


@torch.no_grad()
def evaluate(
    module: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    classification: bool,
    batch_size: int = 8192,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``module`` on ``(X, y)``.

    Args:
        module: model, evaluated in ``eval()`` mode (its mode is restored).
        X, y: data on the model's device.
        loss_fn: *mean* loss; chunk means are combined weighted by chunk size.
        classification: if False, accuracy is NaN.
        batch_size: rows per forward pass (bounds memory on large sets).

    Returns:
        ``(loss, accuracy)`` as Python floats.
    """
    was_training = module.training
    module.eval()
    total_loss = torch.zeros((), device=X.device, dtype=torch.float64)
    correct = torch.zeros((), device=X.device, dtype=torch.int64)
    for start in range(0, X.shape[0], batch_size):
        xb, yb = X[start : start + batch_size], y[start : start + batch_size]
        out = module(xb)
        total_loss += loss_fn(out, yb).double() * xb.shape[0]
        if classification:
            correct += (out.argmax(dim=1) == yb).sum()
    module.train(was_training)
    n = max(X.shape[0], 1)
    accuracy = correct.item() / n if classification else math.nan
    return total_loss.item() / n, accuracy
