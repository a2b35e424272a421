"""The user's own model: one source of defaults, in-place training, custom modules, losses, errors."""

import pytest
import torch
import torch.nn.functional as F

from beyondsgd.am import AM_DEFAULTS, TIAM, TIAM_DEFAULTS, PlainAM
from beyondsgd.bench.algorithms import make_trainer


@pytest.mark.parametrize("cls,name", [(TIAM, "tiam"), (PlainAM, "am")])
def test_class_defaults_are_the_registry_defaults(small_problem, cls, name):
    model, X, y = small_problem()
    direct = cls(model, X, y, F.cross_entropy)
    model2, _, _ = small_problem()
    registry = make_trainer(name, model2, X, y, F.cross_entropy)
    expected = TIAM_DEFAULTS if name == "tiam" else AM_DEFAULTS
    assert {k: direct.hyperparams[k] for k in expected} == expected
    for _ in range(4):
        direct.train_step(None)
        registry.train_step(None)
    for a, b in zip(direct.W + direct.b + direct.z + direct.a, registry.W + registry.b + registry.z + registry.a):
        assert torch.equal(a, b)


def test_tiam_direct_is_not_plain_am(small_problem):
    model, X, y = small_problem()
    tiam = TIAM(model, X, y, F.cross_entropy)
    assert (tiam.inertia.p1, tiam.inertia.p2, tiam.inertia.p3) == (0.9, 0.6, 0.3)
    with pytest.raises(ValueError, match="has no inertia"):
        PlainAM(*small_problem(), F.cross_entropy, p1=0.5)


@pytest.mark.parametrize("batch", [None, 100])
def test_user_module_is_the_trained_module_after_every_step(small_problem, batch):
    model, X, y = small_problem()
    tr = TIAM(model, X, y, F.cross_entropy)
    gen = torch.Generator().manual_seed(0)
    before = model(X).detach().clone()
    for _ in range(3):
        idx = None if batch is None else torch.randperm(X.shape[0], generator=gen)[:batch]
        tr.train_step(idx)
        # Evaluate the user's net directly (never through tr.module): an exact forward pass with W, b.
        manual = X.flatten(1)
        for j in range(3):
            manual = manual @ tr.W[j].T + tr.b[j]
            if j < 2:
                manual = manual.relu()
        with torch.no_grad():
            assert torch.allclose(model(X), manual, atol=1e-5)
    assert not torch.allclose(model(X), before)
    assert tr.module is model
