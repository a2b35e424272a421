"""The interface between the runner and an algorithm.

The runner owns the data split into batches, timing, evaluation and logging; a
:class:`Trainer` owns one model and makes one update per call of
:meth:`Trainer.train_step`.  Gradient optimizers go through
:class:`GradientTrainer`; algorithms that are not ``torch.optim`` optimizers
(alternating minimization keeps per-sample auxiliary variables, hence the
sample indices) implement :class:`Trainer` directly.
"""

from __future__ import annotations

import abc
from typing import Any, Callable

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Trainer(abc.ABC):
    """One algorithm training one model on one training set.

    Args:
        X: training inputs (on the model's device).
        y: training targets.
        loss_fn: mean loss ``loss_fn(outputs, targets)``.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> None:
        self.X = X
        self.y = y
        self.loss_fn = loss_fn

    @abc.abstractmethod
    def train_step(self, indices: torch.Tensor | None) -> torch.Tensor:
        """Make one update on the samples ``indices`` (``None``: the full training set).

        Returns:
            The training loss on that batch as a 0-d tensor (not synchronized
            with the host, so the runner can check it once per epoch).
        """

    @property
    @abc.abstractmethod
    def module(self) -> nn.Module:
        """The model to evaluate: an exact forward pass with the current parameters."""

    def end_epoch(self, epoch: int) -> dict[str, float]:
        """Called after each epoch; returns extra values to log (e.g. an objective)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume training."""
        return {"module": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])


class GradientTrainer(Trainer):
    """Standard training with any ``torch.optim.Optimizer``.

    The step goes through a closure, so optimizers that re-evaluate the loss
    (backtracking, line searches) work unchanged.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        X: torch.Tensor,
        y: torch.Tensor,
        loss_fn: LossFn,
    ) -> None:
        super().__init__(X, y, loss_fn)
        self.model = model
        self.optimizer = optimizer

    @property
    def module(self) -> nn.Module:
        return self.model

    def train_step(self, indices: torch.Tensor | None) -> torch.Tensor:
        xb, yb = (self.X, self.y) if indices is None else (self.X[indices], self.y[indices])
        self.model.train()

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(xb), yb)
            loss.backward()
            return loss

        loss = self.optimizer.step(closure)
        return loss.detach()

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
