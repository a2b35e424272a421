"""DSGD's spectral scores and map from a Linear layer's gradient factors: the same numbers as from ``.grad``."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from beyondsgd.optim import DSGD, create, layer_groups
from beyondsgd.optim.layer_norms import BASE_NORMS, factor_gradient


def _svd_map(G: torch.Tensor) -> torch.Tensor:
    """Reference duality map: float64 SVD with the float32 rank cut."""
    u, s, vh = torch.linalg.svd(G, full_matrices=False)
    keep = (s > s.amax() * max(G.shape) * torch.finfo(torch.float32).eps).to(G.dtype)
    return s.sum() * (u @ (keep[:, None] * vh))


def _factors(n, out, width, seed, repeat=False):
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(n, out, generator=gen) * torch.logspace(0, -2, out)
    x = torch.randn(n, width, generator=gen)
    if repeat:  # a sample repeated in the batch: [X | 1] [X | 1]^T is singular
        x[1] = x[0]
    a = torch.cat([x, torch.ones(n, 1)], dim=1)
    return d, a


@pytest.mark.parametrize(("n", "out", "width"), [(128, 256, 784), (128, 256, 256), (16, 40, 30), (3, 9, 9)])
@pytest.mark.parametrize("repeat", [False, True])
def test_factored_spectral_quantities_equal_the_svd_of_the_gradient(n, out, width, repeat):
    d, a = _factors(n, out, width, seed=n + out, repeat=repeat)
    G = d.T @ a  # the float32 gradient the factors stand for
    fac = factor_gradient(d, a, G.dtype)
    assert (fac.lower is None) == repeat  # a repeated sample takes the eigendecomposition
    exact = torch.linalg.svdvals(G.double())
    sv = fac.singular_values()
    assert sv.dtype == G.dtype and sv.shape == (min(n, out, width + 1) - repeat,)
    assert torch.allclose(sv.double(), exact[: sv.numel()], rtol=1e-5, atol=1e-6 * float(exact[0]))
    assert float(fac.nuclear_norm()) == pytest.approx(float(exact.sum()), rel=2e-6)
    assert float(fac.nuclear_norm()) == pytest.approx(float(BASE_NORMS["spectral"].dual_norm(G)), rel=2e-6)
    ref = _svd_map(G.double())
    got = fac.dual_map()
    assert got.dtype == G.dtype and got.shape == G.shape
    assert torch.allclose(got.double(), ref, rtol=0, atol=1e-6 * float(ref.abs().max()))


@pytest.mark.parametrize(("n", "out", "width"), [(128, 256, 784), (128, 256, 256), (16, 40, 30)])
def test_factored_map_is_as_accurate_as_the_float32_gradient(n, out, width):
    # The map's widest product is taken in float32 (as .grad = D^T A is): against the exact map of the
    # exact product, its error stays at the level of the float32 gradient's own rounding.
    d, a = _factors(n, out, width, seed=3 * n + out)
    exact_grad = d.double().T @ a.double()
    own_rounding = float(((d.T @ a).double() - exact_grad).abs().max() / exact_grad.abs().max())
    ref = _svd_map(exact_grad)
    got = factor_gradient(d, a, torch.float32).dual_map()
    err = float((got.double() - ref).abs().max() / ref.abs().max())
    eps32 = torch.finfo(torch.float32).eps
    assert err <= 4 * max(own_rounding, eps32)


def test_zero_inputs_give_a_zero_map():
    fac = factor_gradient(torch.randn(4, 8), torch.zeros(4, 9), torch.float32)
    assert float(fac.nuclear_norm()) == 0.0
    assert torch.equal(fac.dual_map(), torch.zeros(8, 9))


def _net(seed=0, act=nn.ReLU):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(40, 64), act(), nn.Linear(64, 48), act(), nn.Linear(48, 5))


def _data(n=24, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 40, generator=gen), torch.randint(0, 5, (n,), generator=gen)


def _run(net, opt, X, y, steps=6, spoil=None, loss_only=True):
    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(net(X), y)
        loss.backward()
        if spoil is not None:
            spoil(net, X, y)
        return loss

    def forward_only():
        return F.cross_entropy(net(X), y)

    record = []
    for _ in range(steps):
        opt.step(closure, loss_closure=forward_only if loss_only else None)
        record.append((opt.last_step["layer"], opt.last_step["factored_layers"], opt.last_step["scores"]))
    return record


def _same_run(a, b, net_a, net_b):
    assert [r[0] for r in a] == [r[0] for r in b]
    for (_, _, sa), (_, _, sb) in zip(a, b):
        assert sa == pytest.approx(sb, rel=1e-5)
    for p, q in zip(net_a.parameters(), net_b.parameters()):
        p, q = p.detach(), q.detach()
        assert float((p - q).abs().max()) <= 1e-5 * float(q.abs().max())  # (float32 rounding of the two routes)


@pytest.mark.parametrize("loss_only", [True, False])
@pytest.mark.parametrize("maximize", [False, True])
def test_create_with_a_model_scores_from_factors_and_matches_grad_scores(loss_only, maximize):
    X, y = _data()
    net_a, net_b = _net(), _net()
    a = create("dsgd", net_a, maximize=maximize)  # watches the model
    b = DSGD(layer_groups(net_b), maximize=maximize)
    steps = 3 if maximize else 6  # (maximizing the cross-entropy diverges fast)
    ra = _run(net_a, a, X, y, steps=steps, loss_only=loss_only)
    rb = _run(net_b, b, X, y, steps=steps, loss_only=loss_only)
    assert all(r[1] == [0, 1] for r in ra)  # batch 24 < both sides of the two hidden layers; not the 5-row one
    assert all(r[1] == [] for r in rb)
    _same_run(ra, rb, net_a, net_b)


def test_bound_mode_with_factors_matches():
    X, y = _data()
    X = X / X.norm(dim=1, keepdim=True)
    net_a, net_b = _net(act=nn.Tanh), _net(act=nn.Tanh)
    a = DSGD(layer_groups(net_a), mode="bound", check_decrease=True)
    a.watch(net_a)
    b = DSGD(layer_groups(net_b), mode="bound", check_decrease=True)
    ra, rb = _run(net_a, a, X, y), _run(net_b, b, X, y)
    assert all(r[1] == [0, 1] for r in ra)
    _same_run(ra, rb, net_a, net_b)
    assert a.violations == b.violations == 0


def _clip(net, X, y):
    for p in net.parameters():
        p.grad.mul_(0.5)


def _weight_decay(net, X, y):
    for p in net.parameters():
        p.grad.add_(p, alpha=1e-2)


def _accumulate(net, X, y):
    F.cross_entropy(net(X[:5]), y[:5]).backward()


@pytest.mark.parametrize("spoil", [_clip, _weight_decay, _accumulate], ids=["clipped", "weight-decay", "accumulated"])
def test_a_grad_the_factors_do_not_make_is_scored_from_grad(spoil):
    X, y = _data()
    net_a, net_b = _net(), _net()
    a = create("dsgd", net_a)
    b = DSGD(layer_groups(net_b))
    ra, rb = _run(net_a, a, X, y, spoil=spoil), _run(net_b, b, X, y, spoil=spoil)
    assert all(r[1] == [] for r in ra)  # the probe refused the factors every step
    _same_run(ra, rb, net_a, net_b)


class _Twice(nn.Module):
    """One Linear applied twice in a forward pass (its gradient is a sum of two products)."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(40, 40)
        self.head = nn.Linear(40, 5)

    def forward(self, x):
        return self.head(torch.relu(self.inner(torch.relu(self.inner(x)))))


def test_a_layer_applied_twice_is_scored_from_grad():
    X, y = _data()
    torch.manual_seed(0)
    net_a = _Twice()
    net_b = copy.deepcopy(net_a)
    a, b = create("dsgd", net_a), DSGD(layer_groups(net_b))
    ra, rb = _run(net_a, a, X, y), _run(net_b, b, X, y)
    assert all(r[1] == [] for r in ra)
    _same_run(ra, rb, net_a, net_b)


def test_sequence_inputs_and_a_batch_too_large_for_factors():
    torch.manual_seed(0)
    net_a = nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 5))
    net_b = copy.deepcopy(net_a)
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(3, 5, 40, generator=gen)  # 15 rows in all
    y = torch.randint(0, 5, (3, 5), generator=gen)

    def run(net, opt):
        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(net(X).reshape(-1, 5), y.reshape(-1))
            loss.backward()
            return loss

        out = []
        for _ in range(4):
            opt.step(closure)
            out.append((opt.last_step["layer"], opt.last_step["factored_layers"], opt.last_step["scores"]))
        return out

    a, b = create("dsgd", net_a), DSGD(layer_groups(net_b))
    ra, rb = run(net_a, a), run(net_b, b)
    assert all(r[1] == [0] for r in ra)
    _same_run(ra, rb, net_a, net_b)
    X = torch.randn(70, 5, 40, generator=gen)  # 350 rows: not fewer than the layer's sides
    y = torch.randint(0, 5, (70, 5), generator=gen)
    assert all(r[1] == [] for r in run(net_a, a))


def test_copies_and_removed_hooks_score_from_grad():
    X, y = _data()
    net = _net()
    opt = create("dsgd", net)
    _run(net, opt, X, y, steps=2)
    clone = copy.deepcopy(opt)  # hooks are not copied (nor pickled)
    clone_net = _net()
    clone_net.load_state_dict(net.state_dict())
    clone.load_state_dict(opt.state_dict())
    clone.param_groups = opt.param_groups  # (the clone steps the original's tensors)
    assert all(r[1] == [] for r in _run(net, clone, X, y, steps=2))
    hooks = opt.watch(net)  # watching again replaces the hooks
    assert hooks.watched == 3
    assert all(r[1] == [0, 1] for r in _run(net, opt, X, y, steps=2))
    hooks.remove()
    assert hooks.watched == 0
    assert all(r[1] == [] for r in _run(net, opt, X, y, steps=2))
    with pytest.raises(TypeError, match="nn.Module"):
        opt.watch([p for p in net.parameters()])


def test_frobenius_layers_are_not_factored():
    X, y = _data()
    net = _net()
    opt = create("dsgd", net, norm="frobenius")
    assert all(r[1] == [] for r in _run(net, opt, X, y, steps=2))
