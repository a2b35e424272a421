"""The user's own model: one source of defaults, in-place training, custom modules, losses, errors."""

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from beyondsgd.algorithms import make_trainer
from beyondsgd.am import AM_DEFAULTS, TIAM, TIAM_DEFAULTS, PlainAM
from beyondsgd.am.losses import output_loss_for
from beyondsgd.am.network import parse_mlp


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


class ChainNet(nn.Module):
    """A custom module whose forward is the supported chain (functional activations, a dropout)."""

    def __init__(self, d_in=64, width=32, act="relu"):
        super().__init__()
        self.fc1 = nn.Linear(d_in, width)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(width, width)
        self.head = nn.Linear(width, 10)
        self.act = act

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = self.drop(F.relu(self.fc1(x)))
        x = self.fc2(x)
        x = F.leaky_relu(x, 0.1) if self.act == "leaky" else x.relu()
        return self.head(x)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc2(x + F.relu(self.fc1(x)))


def test_custom_module_is_traced_and_trained_in_place(small_problem):
    _, X, y = small_problem()
    torch.manual_seed(0)
    net = ChainNet(act="leaky")
    s = parse_mlp(net)
    assert s.linears == [net.fc1, net.fc2, net.head] and s.flatten and s.names == ["fc1", "fc2", "head"]
    assert [a.name for a in s.activations] == ["relu", "leaky_relu"] and s.activations[1].slope == 0.1
    tr = TIAM(net, X, y, nn.CrossEntropyLoss())
    start = F.cross_entropy(net.eval()(X), y).item()
    for _ in range(5):
        tr.train_step(None)
    with torch.no_grad():
        assert F.cross_entropy(net.eval()(X), y).item() < start  # the user's net itself improved
        manual = F.leaky_relu(F.relu(X.flatten(1) @ tr.W[0].T + tr.b[0]) @ tr.W[1].T + tr.b[1], 0.1)
        assert torch.allclose(net(X), manual @ tr.W[2].T + tr.b[2], atol=1e-5)


def test_nested_sequential_is_expanded():
    net = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(64, 8), nn.ReLU()), nn.Identity(), nn.Linear(8, 10))
    s = parse_mlp(net)
    assert len(s.linears) == 2 and s.names == ["1.0", "3"]


@pytest.mark.parametrize(
    "net,match",
    [
        (Residual(), r"graph node 'flatten' is used by 2 nodes \('fc1', 'add'\).*residual"),
        (
            nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 10)),
            r"'2'.*BatchNorm1d",
        ),
        (nn.Sequential(nn.Flatten(), nn.Linear(64, 8, bias=False), nn.ReLU(), nn.Linear(8, 10)), r"'1'.*without bias"),
        (
            nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10)),
            r"'2'.*relu, leaky_relu and elu.*Tanh",
        ),
        (
            nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Linear(8, 10)),
            r"alternating.*found: 1 \(linear\), 2 \(linear\)",
        ),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 10)), r"'0'.*Conv2d"),
    ],
)
def test_unsupported_models_name_the_offending_module(small_problem, net, match):
    _, X, y = small_problem()
    with pytest.raises(ValueError, match=match):
        TIAM(net, X.reshape(-1, 1, 8, 8), y, F.cross_entropy)


def test_missing_flatten_and_shape_mismatch_are_clear_errors(small_problem):
    _, X, y = small_problem()
    images = X.reshape(-1, 1, 8, 8)
    no_flatten = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    with pytest.raises(ValueError, match=r"shape \(1, 8, 8\) per sample but the model has no Flatten.*'0'"):
        TIAM(no_flatten, images, y, F.cross_entropy)
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(100, 8), nn.ReLU(), nn.Linear(8, 10))
    with pytest.raises(ValueError, match=r"shape \(1, 8, 8\) per sample \(64 features\).*'1' expects in_features=100"):
        TIAM(wrong, images, y, F.cross_entropy)


@pytest.mark.parametrize(
    "loss",
    [F.cross_entropy, nn.CrossEntropyLoss(), functools.partial(F.cross_entropy, reduction="mean")],
)
def test_cross_entropy_as_function_module_or_partial_gives_identical_iterates(small_problem, loss):
    model, X, y = small_problem()
    ref_model, _, _ = small_problem()
    tr, ref = TIAM(model, X, y, loss), TIAM(ref_model, X, y, F.cross_entropy)
    for _ in range(2):
        tr.train_step(None)
        ref.train_step(None)
    assert all(torch.equal(a, b) for a, b in zip(tr.W, ref.W))


def test_label_smoothing_prox_is_the_minimizer():
    torch.manual_seed(0)
    v, y = torch.randn(50, 5, dtype=torch.float64), torch.randint(0, 5, (50,))
    out = output_loss_for(nn.CrossEntropyLoss(label_smoothing=0.2), prox_iters=2000, prox_tol=1e-10)
    z = out.prox(v, y, 0.5, start=v.clone()).requires_grad_(True)
    f = F.cross_entropy(z, y, reduction="sum", label_smoothing=0.2) + 0.25 * (z - v).pow(2).sum()
    (g,) = torch.autograd.grad(f, z)
    assert g.abs().max() < 1e-8  # stationary point of a strongly convex function: the minimizer
    assert out.sum(z.detach(), y) == pytest.approx(
        float(F.cross_entropy(z.detach(), y, reduction="sum", label_smoothing=0.2))
    )


@pytest.mark.parametrize(
    "loss,match",
    [
        (nn.CrossEntropyLoss(weight=torch.ones(10)), "class weights"),
        (nn.CrossEntropyLoss(reduction="sum"), "reduction='sum'"),
        (nn.MSELoss(reduction="none"), "reduction='none'"),
        (functools.partial(F.cross_entropy, foo=1), r"options \['foo'\]"),
        (nn.L1Loss(), "supports the output losses"),
    ],
)
def test_unsupported_loss_options_are_refused_by_name(small_problem, loss, match):
    model, X, y = small_problem()
    with pytest.raises(ValueError, match=match):
        TIAM(model, X, y, loss)


def test_ignore_index_is_refused_only_when_used(small_problem):
    model, X, y = small_problem()
    TIAM(model, X, y, nn.CrossEntropyLoss(ignore_index=3 + 100))
    with pytest.raises(ValueError, match="ignore_index=3"):
        TIAM(model, X, y, nn.CrossEntropyLoss(ignore_index=3))


def test_optim_create_points_to_the_trainer_api():
    from beyondsgd import optim

    with pytest.raises(ValueError, match=r"'tiam' is a trainer.*beyondsgd\.am\.TIAM.*fit"):
        optim.create("tiam", [torch.zeros(1, requires_grad=True)])
