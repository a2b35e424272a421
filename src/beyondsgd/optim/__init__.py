"""Gradient optimizers and update rules, and the registry that names them.

``create(name, params, **hyperparams)`` builds any registered optimizer;
``available()`` lists them.
"""

from beyondsgd.optim.registry import OptimizerSpec, available, create, get_spec, register

# Importing a module registers its optimizers.
from beyondsgd.optim import baselines as _baselines  # noqa: F401  (registers sgd, adam, rmsprop, adagrad)
from beyondsgd.optim.multiplicative import Madam, RuleAdagrad, RuleAdam, RuleOptimizer, RuleRMSprop, RuleSGD

__all__ = ["Madam", "RuleAdagrad", "RuleAdam", "RuleOptimizer", "RuleRMSprop", "RuleSGD", "OptimizerSpec", "available", "create", "get_spec", "register"]
