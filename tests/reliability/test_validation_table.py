"""Every hyperparameter of every registered algorithm rejects bad values with a clear error.

Table-driven over the registries (in the spirit of torch's OptimizerInfo /
ErrorOptimizerInput): the bad values come from each algorithm's own
constraint table, so new algorithms are covered automatically.
"""

import pytest
import torch
from constraint_examples import invalid_values

from beyondsgd import algorithms as alg_registry
from beyondsgd import optim
from beyondsgd.bench import available_algorithms


def _cases():
    available_algorithms()  # imports the trainer modules
    cases = []
    for name in optim.available():
        spec = optim.get_spec(name)
        for hp, constraint in spec.hyperparams.items():
            for bad in invalid_values(constraint):
                cases.append(pytest.param("optimizer", name, hp, bad, id=f"{name}-{hp}-{bad!r}"[:80]))
    for name, spec in sorted(alg_registry._TRAINERS.items()):
        for hp, constraint in spec.hyperparams.items():
            for bad in invalid_values(constraint):
                cases.append(pytest.param("trainer", name, hp, bad, id=f"{name}-{hp}-{bad!r}"[:80]))
    return cases


CASES = _cases()


def test_the_table_is_not_empty():
    assert len(CASES) > 50


@pytest.mark.parametrize("kind,name,hp,bad", CASES)
def test_bad_hyperparameter_is_refused_by_name(kind, name, hp, bad):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    X, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    with pytest.raises(ValueError, match=rf"\b{hp}\b") as info:
        alg_registry.make_trainer(name, model, X, y, torch.nn.functional.cross_entropy, {hp: bad})
    assert "invalid" in str(info.value) or "expected" in str(info.value)


def _own_optimizer_cases():
    """Optimizers implemented in this package must validate in their own constructor too."""
    cases = []
    for name in optim.available():
        spec = optim.get_spec(name)
        if not getattr(spec.factory, "__module__", "").startswith("beyondsgd"):
            continue  # torch's own classes: the registry checks for them
        for hp, constraint in spec.hyperparams.items():
            bad = invalid_values(constraint)
            if bad:
                cases.append(pytest.param(name, hp, bad[0], id=f"{name}-{hp}"))
    return cases


@pytest.mark.parametrize(
    "name,hp,bad",
    _own_optimizer_cases()
    or [pytest.param(None, None, None, marks=pytest.mark.skip("no package-owned optimizer registered yet"))],
)
def test_constructor_validates_without_the_registry(name, hp, bad):
    spec = optim.get_spec(name)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    params = spec.param_groups(model) if spec.param_groups else model.parameters()
    with pytest.raises(ValueError, match=rf"\b{hp}\b"):
        spec.factory(params, **{**spec.defaults, hp: bad})
