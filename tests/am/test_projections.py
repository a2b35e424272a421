import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from beyondsgd.am.projections import ELU, LeakyReLU, ReLU, activation_from_module

ACTS = [ReLU(), LeakyReLU(0.01), LeakyReLU(0.2), ELU(1.0)]


def feasible_a(act, z, eps, gen):
    """A point a with |h(z) - a| <= eps (the state the z-update sees)."""
    return act(z) + eps * (2 * torch.rand(z.shape, generator=gen, dtype=z.dtype) - 1)


@pytest.mark.parametrize("act", ACTS, ids=lambda a: f"{a.name}")
@given(seed=st.integers(0, 10_000), eps=st.sampled_from([1e-3, 0.1, 1.0, 5.0]))
@settings(max_examples=12, deadline=None)
def test_projection_satisfies_box_exactly_and_is_nearest(act, seed, eps):
    gen = torch.Generator().manual_seed(seed)
    z0 = 3 * torch.randn(400, dtype=torch.float64, generator=gen)
    a = feasible_a(act, 3 * torch.randn(400, dtype=torch.float64, generator=gen), eps, gen)
    p = act.project(z0, a, eps)
    # Feasible, up to float64 rounding of h and its inverse.
    assert ((act(p) - a).abs() <= eps * (1 + 1e-12) + 1e-12).all()
    # Points already feasible are not moved.
    inside = (act(z0) - a).abs() <= eps
    assert torch.equal(p[inside], z0[inside])
    # Nearest feasible point: a dense grid search finds none closer.
    grid = torch.linspace(-20, 20, 20001, dtype=torch.float64)
    feas = (act(grid)[None, :] - a[:50, None]).abs() <= eps
    dist = torch.where(feas, (grid[None, :] - z0[:50, None]).abs(), torch.tensor(torch.inf, dtype=torch.float64))
    assert ((p[:50] - z0[:50]).abs() <= dist.min(dim=1).values + 2e-3 + 1e-9).all()


def test_relu_set_is_half_line_when_a_is_small():
    a = torch.tensor([0.05, 2.0])
    p = ReLU().project(torch.tensor([-7.0, -7.0]), a, 0.1)
    assert p[0] == -7.0  # a - eps <= 0: any z <= a + eps is feasible
    assert p[1] == pytest.approx(1.9)


def test_activation_from_module_refuses_non_monotone():
    assert isinstance(activation_from_module(nn.LeakyReLU(0.3)), LeakyReLU)
    assert activation_from_module(nn.LeakyReLU(0.3)).slope == 0.3
    with pytest.raises(ValueError, match="relu, leaky_relu and elu"):
        activation_from_module(nn.SiLU())
    with pytest.raises(ValueError, match="slope"):
        LeakyReLU(0.0)


def in_input_box(act, z, a, eps):
    """h(z - eps) <= a <= h(z + eps), up to float64 rounding."""
    tol = 1e-12 * (1 + a.abs())
    return (act(z - eps) <= a + tol) & (a <= act(z + eps) + tol)


@pytest.mark.parametrize("act", ACTS, ids=lambda a: f"{a.name}")
@given(seed=st.integers(0, 10_000), eps=st.sampled_from([1e-3, 0.1, 1.0, 5.0]))
@settings(max_examples=12, deadline=None)
def test_input_box_projection_satisfies_box_exactly_and_is_nearest(act, seed, eps):
    gen = torch.Generator().manual_seed(seed)
    z0 = 3 * torch.randn(400, dtype=torch.float64, generator=gen)
    zs = 3 * torch.randn(400, dtype=torch.float64, generator=gen)
    lo, hi = act.input_box(zs, eps)  # the a-update's box: a feasible a for the state z = zs
    a = lo + (hi - lo) * torch.rand(400, generator=gen, dtype=torch.float64)
    assert in_input_box(act, zs, a, eps).all()
    p = act.project_input_box(z0, a, eps)
    assert in_input_box(act, p, a, eps).all()
    assert ((act(p) - a).abs() <= eps * (1 + 1e-12) + 1e-12).all()  # 1-Lipschitz h: implies the output box
    inside = in_input_box(act, z0, a, eps)
    assert torch.equal(p[inside], z0[inside])
    grid = torch.linspace(-40, 40, 40001, dtype=torch.float64)
    feas = (act(grid - eps)[None, :] <= a[:50, None]) & (a[:50, None] <= act(grid + eps)[None, :])
    dist = torch.where(feas, (grid[None, :] - z0[:50, None]).abs(), torch.tensor(torch.inf, dtype=torch.float64))
    assert ((p[:50] - z0[:50]).abs() <= dist.min(dim=1).values + 2e-3 + 1e-9).all()


def test_input_box_bounds_leaky_relu_pre_activation_by_eps_not_eps_over_slope():
    act, eps = LeakyReLU(0.01), 0.1
    a = torch.tensor([-0.5])  # h^{-1}(a) = -50
    out = act.project(torch.tensor([-1000.0]), a, eps)  # output box: z in [-60, -40]
    inp = act.project_input_box(torch.tensor([-1000.0]), a, eps)  # input box: z in [-50.1, -49.9]
    assert out.item() == pytest.approx(-60.0) and inp.item() == pytest.approx(-50.1)


def _select_reference(act, name, y):
    """The textbook ``torch.where`` form of each piecewise map (what the arithmetic forms replace)."""
    ninf = torch.full_like(y, -torch.inf)
    if isinstance(act, ReLU):
        return {"h": torch.relu(y), "lo": torch.where(y > 0, y, ninf), "hi": y.clamp_min(0.0)}[name]
    if isinstance(act, LeakyReLU):
        return {"h": torch.where(y >= 0, y, y * act.slope)}.get(name, torch.where(y >= 0, y, y / act.slope))
    tiny = torch.finfo(y.dtype).eps
    floor = {"h": None, "lo": -1.0, "hi": -1.0 + tiny}[name]
    if name == "h":
        return torch.where(y > 0, y, act.alpha * torch.expm1(y.clamp_max(0.0)))
    return torch.where(y > 0, y, torch.log1p((y / act.alpha).clamp_min(floor)))


@pytest.mark.parametrize("act", [ReLU(), LeakyReLU(0.01), ELU(1.0), ELU(0.5)], ids=lambda a: f"{a.name}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_select_free_maps_and_projections_equal_the_where_forms_bit_for_bit(act, dtype):
    # The hot-path forms avoid torch.where (branch mispredictions on CPU); they must not change a bit.
    gen = torch.Generator().manual_seed(3)
    y = 3 * torch.randn(5000, generator=gen, dtype=dtype)
    y[::7] = 0.0  # exact zeros and exact box edges occur in practice (a clipped to h(z) + eps)
    y[1::11] = -0.0
    assert torch.equal(act(y), _select_reference(act, "h", y))
    assert torch.equal(act.lower_preimage(y), _select_reference(act, "lo", y))
    assert torch.equal(act.upper_preimage(y), _select_reference(act, "hi", y))
    z = 3 * torch.randn(5000, generator=gen, dtype=dtype)
    a = act(3 * torch.randn(5000, generator=gen, dtype=dtype))
    a[::5] = 0.5  # a - eps == 0 exactly for eps = 0.5
    for eps in (0.5, 0.1):
        lo, hi = _select_reference(act, "lo", a - eps), _select_reference(act, "hi", a + eps)
        assert torch.equal(act.project(z, a, eps), torch.minimum(torch.maximum(z, lo), hi))
        lo, hi = _select_reference(act, "lo", a) - eps, _select_reference(act, "hi", a) + eps
        assert torch.equal(act.project_input_box(z, a, eps), torch.minimum(torch.maximum(z, lo), hi))


@pytest.mark.parametrize("act", [ReLU(), LeakyReLU(0.01), ELU(1.0)], ids=lambda a: f"{a.name}")
def test_bounds_are_the_projections_clamp_with_and_without_scratch(act):
    # The z-block clamps with bounds computed once per block (the safeguard's redo reuses them).
    from beyondsgd.am.objective import Workspace

    gen = torch.Generator().manual_seed(4)
    z = 3 * torch.randn(300, generator=gen)
    a = act(3 * torch.randn(300, generator=gen))
    ws = Workspace()

    def scratch(name, shape):
        return ws.get(name, shape, z)

    for eps in (0.5, 0.1):
        for sc in (None, scratch):
            assert torch.equal(torch.clamp(z, *act.bounds(a, eps, sc)), act.project(z, a, eps))
            assert torch.equal(torch.clamp(z, *act.input_box_bounds(a, eps, sc)), act.project_input_box(z, a, eps))
