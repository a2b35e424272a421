"""Per-epoch schedules for any param-group value (``gamma``, ``eta_in``, ``eta_out``...).

torch's LR schedulers only move ``group["lr"]``; these move another key of every
param group the same way, so they compose with any torch LR scheduler on the same
optimizer (each owns its key; step both once per epoch)::

    opt = RuleSGD(model.parameters(), rule="hybrid", gamma=1.0, lr=0.05, eta_out=0.05)
    lr_sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    gamma_sched = HoldThenDecay(opt, "gamma", hold=5, factor=0.7)  # M early, additive later
    for epoch in range(20):
        train_one_epoch(...)
        lr_sched.step(); gamma_sched.step()

The gamma schedules (hold-then-decay, its inverse, random {0, 1} per epoch) and step
decay of ``eta_in``/``eta_out`` are in the authors' code of Kirtas et al. 2023
(arXiv 2307.07189); whether the paper's experiments use them is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.optim import Optimizer

from beyondsgd.validation import NONNEGATIVE_INT, POSITIVE_INT, UNIT, Interval


class GroupValueScheduler:
    """Sets ``group[key] = value(initial, epoch)`` for every param group at each :meth:`step`.

    Like torch's LR schedulers, the value for epoch 0 is applied on construction and the
    starting value is remembered in ``group["initial_" + key]``.

    Args:
        optimizer: any optimizer whose param groups hold ``key``.
        key: the group entry to schedule.

    Raises:
        ValueError: a param group has no ``key``.
    """

    def __init__(self, optimizer: Optimizer, key: str) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ValueError(f"invalid optimizer={optimizer!r}: expected a torch.optim.Optimizer")
        for i, group in enumerate(optimizer.param_groups):
            if key not in group:
                raise ValueError(
                    f"invalid key={key!r}: param group {i} has no such entry "
                    f"(it has {', '.join(k for k in group if k != 'params')})"
                )
            group.setdefault(f"initial_{key}", group[key])
        self.optimizer, self.key, self.last_epoch = optimizer, key, 0
        self._apply()

    def value(self, initial: Any, epoch: int) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group[self.key] = self.value(group[f"initial_{self.key}"], self.last_epoch)

    def step(self) -> None:
        """Advance one epoch."""
        self.last_epoch += 1
        self._apply()

    def current(self) -> list[Any]:
        """The scheduled value of each param group."""
        return [g[self.key] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._apply()


class HoldThenDecay(GroupValueScheduler):
    """Hold the starting value for ``hold`` epochs, then multiply it by ``factor`` per epoch.

    For ``gamma``: multiplicative early, additive later.
    """

    def __init__(self, optimizer: Optimizer, key: str = "gamma", hold: int = 5, factor: float = 0.9) -> None:
        NONNEGATIVE_INT.check("hold", hold)
        UNIT.check("factor", factor)
        self.hold, self.factor = hold, factor
        super().__init__(optimizer, key)

    def value(self, initial, epoch):
        return initial * self.factor ** max(0, epoch - self.hold)


class InverseHoldThenDecay(HoldThenDecay):
    """The inverse of :class:`HoldThenDecay` for values in [0, 1]: hold, then decay the
    distance to 1 by ``factor`` per epoch (for ``gamma``: additive early, multiplicative later)."""

    def value(self, initial, epoch):
        return 1.0 - (1.0 - initial) * self.factor ** max(0, epoch - self.hold)


class RandomChoice(GroupValueScheduler):
    """A value drawn uniformly from ``choices`` each epoch (default {0, 1}: the whole epoch
    is either additive or multiplicative).  Deterministic given ``seed`` and the epoch, so
    a resumed run draws the same sequence."""

    def __init__(
        self, optimizer: Optimizer, key: str = "gamma", choices: Sequence[float] = (0.0, 1.0), seed: int = 0
    ) -> None:
        if len(choices) == 0:
            raise ValueError("invalid choices=(): expected at least one value")
        Interval(integer=True).check("seed", seed)
        self.choices, self.seed = tuple(choices), seed
        super().__init__(optimizer, key)

    def value(self, initial, epoch):
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return self.choices[int(torch.randint(len(self.choices), (1,), generator=gen))]


class StepDecay(GroupValueScheduler):
    """Multiply the starting value by ``factor`` every ``step_size`` epochs (for ``eta_in``/``eta_out``)."""

    def __init__(self, optimizer: Optimizer, key: str = "eta_out", step_size: int = 10, factor: float = 0.1) -> None:
        POSITIVE_INT.check("step_size", step_size)
        Interval(0.0).check("factor", factor)
        self.step_size, self.factor = step_size, factor
        super().__init__(optimizer, key)

    def value(self, initial, epoch):
        return initial * self.factor ** (epoch // self.step_size)
