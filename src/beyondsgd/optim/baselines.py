"""torch.optim baselines, registered with checked hyperparameter ranges."""

from __future__ import annotations

import torch

from beyondsgd.optim.registry import OptimizerSpec, register
from beyondsgd.validation import (
    BOOL,
    NONNEGATIVE,
    OPTIONAL_BOOL,
    POSITIVE,
    UNIT,
    UNIT_HALF_OPEN,
    TupleOf,
)

_COMMON = {"weight_decay": NONNEGATIVE, "maximize": BOOL, "foreach": OPTIONAL_BOOL}

register(
    OptimizerSpec(
        name="sgd",
        factory=torch.optim.SGD,
        hyperparams={"lr": NONNEGATIVE, "momentum": UNIT_HALF_OPEN, "dampening": UNIT, "nesterov": BOOL, **_COMMON},
        defaults={"lr": 0.05},
        description="torch.optim.SGD (plain stochastic gradient descent by default)",
        shardable=True,
    )
)
register(
    OptimizerSpec(
        name="adam",
        factory=torch.optim.Adam,
        hyperparams={
            "lr": NONNEGATIVE,
            "betas": TupleOf((UNIT_HALF_OPEN, UNIT_HALF_OPEN)),
            "eps": POSITIVE,
            "amsgrad": BOOL,
            **_COMMON,
        },
        defaults={"lr": 1e-3},
        description="torch.optim.Adam",
        shardable=True,
    )
)
register(
    OptimizerSpec(
        name="rmsprop",
        factory=torch.optim.RMSprop,
        hyperparams={
            "lr": NONNEGATIVE,
            "alpha": UNIT,
            "eps": POSITIVE,
            "momentum": UNIT_HALF_OPEN,
            "centered": BOOL,
            **_COMMON,
        },
        defaults={"lr": 1e-3},
        description="torch.optim.RMSprop",
        shardable=True,
    )
)
register(
    OptimizerSpec(
        name="adagrad",
        factory=torch.optim.Adagrad,
        hyperparams={
            "lr": NONNEGATIVE,
            "lr_decay": NONNEGATIVE,
            "eps": POSITIVE,
            "initial_accumulator_value": NONNEGATIVE,
            **_COMMON,
        },
        defaults={"lr": 1e-2},
        description="torch.optim.Adagrad",
        shardable=True,
    )
)
