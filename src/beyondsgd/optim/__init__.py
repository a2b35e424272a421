"""Gradient optimizers and update rules, and the registry that names them.

``create(name, params, **hyperparams)`` builds any registered optimizer (given a
model, it also groups the parameters: see :func:`create`); ``available()`` lists them.
"""

# Importing a module registers its optimizers.
from beyondsgd.optim import baselines as _baselines  # noqa: F401  (registers sgd, adam, rmsprop, adagrad)
from beyondsgd.optim.dsgd import DSGD, layer_groups  # registers dsgd, dsgd_cyclic, dsgd_random
from beyondsgd.optim.grouping import decay_groups, no_decay_names
from beyondsgd.optim.layer_norms import input_bound
from beyondsgd.optim.momentum import HeavyBall, Nesterov  # registers hb, nag
from beyondsgd.optim.multiplicative import (  # registers m_*/h_* and madam
    Madam,
    RuleAdagrad,
    RuleAdam,
    RuleOptimizer,
    RuleRMSprop,
    RuleSGD,
)
from beyondsgd.optim.registry import OptimizerSpec, available, create, get_spec, register, resolved_options

__all__ = [
    "DSGD",
    "HeavyBall",
    "Madam",
    "Nesterov",
    "OptimizerSpec",
    "RuleAdagrad",
    "RuleAdam",
    "RuleOptimizer",
    "RuleRMSprop",
    "RuleSGD",
    "available",
    "create",
    "decay_groups",
    "get_spec",
    "input_bound",
    "layer_groups",
    "no_decay_names",
    "register",
    "resolved_options",
]
