"""The interface between the runner and an algorithm.

The runner owns the data split into batches, timing, evaluation and logging; a
:class:`Trainer` owns one model and makes one update per call of
:meth:`Trainer.train_step`.  Gradient optimizers go through
:class:`GradientTrainer`; algorithms that are not ``torch.optim`` optimizers
(alternating minimization keeps per-sample auxiliary variables, hence the
sample indices) implement :class:`Trainer` directly.

Data parallelism (torchrun): the runner gives every rank the same global batch
of indices, exactly the one a single process would use; a trainer that sets
``supports_distributed = True`` picks its rank's samples with
:mod:`beyondsgd.distributed.sharding` and makes every decision from sums
all-reduced with :func:`beyondsgd.distributed.all_reduce_sum`, so that all ranks
hold the same model after each step and 2 ranks compute what 1 rank computes.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from beyondsgd import distributed as dist

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def step_with_closure(
    optimizer: torch.optim.Optimizer, closure: Callable[[], torch.Tensor], **kwargs: Any
) -> torch.Tensor:
    """``optimizer.step(closure)`` and its loss as a tensor.

    torch's stubs type the closure as returning a float; every optimizer here (and
    torch's own) returns whatever the closure returned, a tensor in our loops.
    """
    return cast(torch.Tensor, optimizer.step(closure, **kwargs))  # type: ignore[arg-type]


def batch_indices(indices: Any, device: torch.device) -> torch.Tensor | None:
    """A batch's sample indices as a 1-d int64 tensor on ``device`` (``None``: the full batch).

    Accepts a tensor, a list or a range of integers.

    Raises:
        ValueError: an empty batch or non-integer indices.
    """
    if indices is None:
        return None
    idx = torch.as_tensor(indices, device=device)
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool or idx.dim() != 1:
        raise ValueError(
            f"batch indices must be a 1-d sequence of integer sample indices; got {idx.dtype} with shape "
            f"{tuple(idx.shape)}"
        )
    if idx.numel() == 0:
        raise ValueError("empty batch: train_step needs at least one sample index (None: the full batch)")
    # (No range check here: it would cost a host sync per step on an accelerator; indexing
    # the per-sample variables refuses an index outside [0, n) anyway.)
    return idx.long()


class Trainer(abc.ABC):
    """One algorithm training one model on one training set.

    Args:
        X: training inputs (on the model's device).
        y: training targets.
        loss_fn: mean loss ``loss_fn(outputs, targets)``.

    Attributes:
        supports_distributed: the trainer runs data-parallel when several ranks
            are active (the runner refuses to start one that does not). See the
            module docstring and ``docs/distributed.md`` for the contract.
    """

    supports_distributed: bool = False

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
    (backtracking, line searches) work unchanged; a closure called with
    gradients disabled only evaluates the loss.

    Data-parallel (several ranks): the model runs inside
    ``DistributedDataParallel``; each rank takes its contiguous shard of the
    global batch (:func:`beyondsgd.distributed.batch_shard`) and scales its
    loss so that DDP's gradient *average* over ranks is the gradient of the
    global batch mean even when shards differ in size; the closure returns the
    *global* batch loss (all-reduced), so an optimizer that takes decisions from
    it (backtracking, sufficient decrease) takes the same one on every rank.
    Everything else the optimizer computes comes from the all-reduced
    gradients and replicated parameters, hence is identical on every rank.

    Args:
        model: the model (its parameters are the optimizer's).
        optimizer: any ``torch.optim.Optimizer`` over ``model``'s parameters.
        X, y: the whole training set (every rank holds all of it).
        loss_fn: mean loss.
        distributed: wrap in DDP and shard batches; ``None``: when a process
            group of more than one rank is active.
    """

    supports_distributed = True

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        X: torch.Tensor,
        y: torch.Tensor,
        loss_fn: LossFn,
        distributed: bool | None = None,
    ) -> None:
        super().__init__(X, y, loss_fn)
        self.model = model
        self.optimizer = optimizer
        self.distributed = dist.is_distributed() if distributed is None else bool(distributed)
        # DDP broadcasts rank 0's parameters and buffers here, so replicas start equal.
        self.ddp = DistributedDataParallel(model) if self.distributed else None
        self._takes_loss_closure = "loss_closure" in inspect.signature(optimizer.step).parameters

    @property
    def module(self) -> nn.Module:
        return self.model

    def train_step(self, indices: torch.Tensor | None) -> torch.Tensor:
        if self.distributed:
            return self._distributed_step(indices)
        xb, yb = (self.X, self.y) if indices is None else (self.X[indices], self.y[indices])
        self.model.train()

        def forward() -> torch.Tensor:
            return self.loss_fn(self.model(xb), yb)

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            loss = forward()
            if torch.is_grad_enabled():
                loss.backward()
            return loss

        # DSGD's decrease check after the step needs the loss only: the forward pass, no backward.
        extra = {"loss_closure": forward} if self._takes_loss_closure else {}
        return step_with_closure(self.optimizer, closure, **extra).detach()

    def _distributed_step(self, indices: torch.Tensor | None) -> torch.Tensor:
        n = self.X.shape[0]
        if indices is None:  # full batch: the rank's contiguous block, as views (no copy)
            start, stop = dist.owned_range(n)
            xb, yb, total = self.X[start:stop], self.y[start:stop], n
        else:
            local, total = dist.batch_shard(indices, n)
            xb, yb = self.X[local], self.y[local]
        m = xb.shape[0]
        share = dist.local_weight(m, total)  # this rank's share of the global mean
        # DDP averages gradients over ranks; scaling by world_size * share makes that
        # average the gradient of the global batch mean, whatever the shard sizes.
        grad_scale = dist.world_size() * share
        self.model.train()

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            assert self.ddp is not None
            out = self.ddp(xb)
            # An empty shard (batch smaller than the world) still joins DDP's all-reduce, with zeros.
            loss = self.loss_fn(out, yb) if m else out.sum() * 0.0
            if torch.is_grad_enabled():
                (loss * grad_scale).backward()
            return dist.all_reduce_sum(loss.detach() * share)

        return step_with_closure(self.optimizer, closure).detach()

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
