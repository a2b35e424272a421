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


class SharedLinear(nn.Module):
    """One Linear module called at two places of the chain: shared weights."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc, self.out = nn.Linear(64, 16), nn.Linear(16, 16), nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc(x))
        x = F.relu(self.fc(x))
        return self.out(x)


class FunctionalDropout(nn.Module):
    def __init__(self, follow_mode: bool):
        super().__init__()
        self.fc1, self.fc2, self.follow_mode = nn.Linear(64, 16), nn.Linear(16, 10), follow_mode

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.dropout(x, 0.5, self.training) if self.follow_mode else F.dropout(x, 0.5)
        return self.fc2(x)


class ViewFlatten(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 16), nn.Linear(16, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.view(x.size(0), -1))))


class TupleOutput(ViewFlatten):
    def forward(self, x):
        return (self.fc2(F.relu(self.fc1(x))),)


def test_shared_linear_is_refused():
    # Before: accepted as two layers with their own W, b, but only the last copy reached the one module.
    with pytest.raises(ValueError, match=r"module 'fc' is a Linear layer used twice in the chain: shared weights"):
        parse_mlp(SharedLinear())
    lin = nn.Linear(16, 16)
    seq = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), lin, nn.ReLU(), lin, nn.ReLU(), nn.Linear(16, 10))
    with pytest.raises(ValueError, match=r"module '4' is a Linear layer used twice.*\(also as '2'\)"):
        parse_mlp(seq)


def test_functional_dropout_must_follow_the_mode():
    # F.dropout's default training=True drops units in eval mode too: the user's net would not be the trained one.
    with pytest.raises(ValueError, match=r"F.dropout with training=True.*training=self.training"):
        parse_mlp(FunctionalDropout(follow_mode=False))
    net = FunctionalDropout(follow_mode=True)
    assert net.training and len(parse_mlp(net).linears) == 2
    assert net.training and all(m.training for m in net.modules())  # traced in eval mode, modes restored


def test_flatten_hint_tuple_output_and_single_linear():
    with pytest.raises(ValueError, match=r"used by 2 nodes \('size', 'view'\).*torch.flatten\(x, 1\)"):
        parse_mlp(ViewFlatten())
    with pytest.raises(ValueError, match=r"TupleOutput.forward is a tuple holding the last tensor"):
        parse_mlp(TupleOutput())
    lin = nn.Linear(64, 10)
    s = parse_mlp(lin)
    assert s.linears == [lin] and s.activations == []


def test_leaky_relu_slope_zero_is_relu_and_steep_slopes_need_the_output_box(small_problem):
    _, X, y = small_problem()
    X = X.flatten(1)
    s = parse_mlp(nn.Sequential(nn.Linear(64, 8), nn.LeakyReLU(0.0), nn.Linear(8, 10)))
    assert s.activations[0].name == "relu"
    steep = nn.Sequential(nn.Linear(64, 8), nn.LeakyReLU(2.0), nn.Linear(8, 10))
    with pytest.raises(ValueError, match=r"hidden layer 1: the input box.*Lipschitz constant 2.*box='output'"):
        TIAM(steep, X, y)
    TIAM(steep, X, y, box="output").train_step(None)  # the output box bounds |h(z) - a| directly


def test_eps_min_above_eps_is_refused(small_problem):
    with pytest.raises(ValueError, match=r"invalid eps_min=0.5 for TIAM: above eps=0.1"):
        TIAM(*small_problem(), eps=0.1, eps_min=0.5)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_integer_labels_of_any_dtype_give_the_int64_iterates(small_problem, dtype):
    model, X, y = small_problem()
    ref = TIAM(model, X, y)
    model2, _, _ = small_problem()
    other = TIAM(model2, X, y.to(dtype))
    for _ in range(2):
        ref.train_step(None)
        other.train_step(None)
    assert all(torch.equal(a, b) for a, b in zip(ref.W, other.W))


@pytest.mark.parametrize(
    "targets,match",
    [
        (lambda y: y.float(), r"integer class indices of shape \(N,\); got dtype torch.float32.*y.long\(\)"),
        (lambda y: F.one_hot(y, 10).float(), r"class-probability targets are not supported"),
        (lambda y: torch.where(y == 3, 10, y), r"class indices in \[0, 10\).*found values from 0 to 10"),
        (lambda y: torch.where(y == 3, -1, y), r"found values from -1 to 9"),
        (lambda y: y[:, None], r"class indices of shape \(N,\); got shape \(400, 1\)"),
    ],
)
def test_bad_classification_targets_are_refused_early(small_problem, targets, match):
    from beyondsgd.am import DLADMM

    model, X, y = small_problem()
    for cls in (TIAM, DLADMM):
        with pytest.raises(ValueError, match=match):
            cls(model, X, targets(y))


def test_mse_targets_are_checked_and_shaped(small_problem):
    torch.manual_seed(0)
    X = torch.randn(50, 64)
    one = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 1))
    tr = TIAM(one, X, torch.randn(50), F.mse_loss)
    assert tr.y.shape == (50, 1)
    ten = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    with pytest.raises(
        ValueError, match=r"MSE targets must have shape \(N, 10\) for the model's 10 outputs; got \(50,\)"
    ):
        TIAM(ten, X, torch.randn(50), F.mse_loss)
    with pytest.raises(ValueError, match=r"MSE targets contain 1 NaN or inf"):
        TIAM(one, X, torch.randn(50).index_fill_(0, torch.tensor([3]), float("nan")), F.mse_loss)


def test_empty_and_non_finite_inputs_are_refused(small_problem):
    from beyondsgd.am import DLADMM

    model, X, y = small_problem()
    for cls in (TIAM, DLADMM):
        with pytest.raises(ValueError, match=r"X has no samples"):
            cls(model, X[:0], y[:0])
        with pytest.raises(ValueError, match=r"X contains 1 NaN or inf values"):
            bad = X.clone()
            bad.view(bad.shape[0], -1)[0, 5] = float("inf")
            cls(model, bad, y)
    tr = TIAM(model, X, y)
    with pytest.raises(ValueError, match=r"empty batch"):
        tr.train_step(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match=r"integer sample indices"):
        tr.train_step(torch.tensor([0.0, 1.0]))
    dl = DLADMM(model, X, y)
    dl.train_step([0, 1, 2, 3])  # a list of indices, as TIAM takes


def test_a_refused_state_leaves_the_trainer_unchanged(small_problem):
    from beyondsgd.am import DLADMM

    model, X, y = small_problem()
    tr = TIAM(model, X, y)
    tr.train_step(None)
    before = [t.clone() for t in tr.W + tr.z]
    wide, _, _ = small_problem(widths=(48, 32))
    other = TIAM(wide, X, y)
    with pytest.raises(ValueError, match=r"state's W\[0\] has shape \(48, 64\), this trainer's \(32, 64\)"):
        tr.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match=r"not a DLADMM state: it lacks 'u'"):
        DLADMM(*small_problem(), F.cross_entropy).load_state_dict(tr.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(before, tr.W + tr.z))


def test_a_state_of_another_module_layout_is_refused_before_anything_changes(small_problem):
    # Same shapes, other parameter names: the module's state did not fit, and the trainer was half-loaded.
    model, X, y = small_problem()
    donor = TIAM(model, X, y)
    donor.train_step(None)
    donor.train_step(None)
    state = donor.state_dict()
    other = ChainNet(width=32)
    tr = TIAM(other, X, y)
    before = [t.clone() for t in tr.W]
    with pytest.raises(ValueError, match=r"state's module does not fit"):
        tr.load_state_dict(state)
    assert tr.k == 0 and all(torch.equal(a, b) for a, b in zip(before, tr.W))
