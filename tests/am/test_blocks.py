import pytest
import torch
import torch.nn.functional as F

from beyondsgd.am import TIAM
from beyondsgd.am.blocks import backtracking_step
from beyondsgd.am.inertia import Inertia, extrapolate
from beyondsgd.am.losses import CrossEntropy, Squared


def quadratic(L):
    H = torch.diag(torch.tensor([L, 1.0, 0.1], dtype=torch.float64))

    def f(u):
        return 0.5 * u @ H @ u

    return f, H


def test_backtracking_accepts_first_theta_above_lipschitz_and_satisfies_condition():
    f, H = quadratic(10.0)
    u = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    res = backtracking_step(f, f(u), H @ u, u, u, theta=1.0)
    assert res.theta == 16.0 and res.doublings == 4  # 1, 2, 4, 8 fail for L = 10, 16 holds
    d = res.u - u
    assert f(res.u) <= f(u) + (H @ u) @ d + 0.5 * res.theta * d @ d
    assert f(res.u) < f(u)


def test_backtracking_cap_returns_none():
    f, H = quadratic(1e6)
    u = torch.ones(3, dtype=torch.float64)
    res = backtracking_step(f, f(u), H @ u, u, u, theta=1.0, max_doublings=3)
    assert res.u is None and res.doublings == 3


@pytest.mark.parametrize("theta", [1.0, 0.25, 0.3, 3.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backtracking_step_is_u_tilde_minus_gradient_over_theta_bit_for_bit(theta, dtype):
    # Powers of two take a fused one-pass form; it must equal u_tilde - g / theta exactly.
    gen = torch.Generator().manual_seed(3)
    g, u_tilde, u_hat = (torch.randn(200, 30, generator=gen, dtype=dtype) for _ in range(3))
    res = backtracking_step(lambda u: u.square().sum(), u_hat.square().sum(), g, u_tilde, u_hat, theta=theta)
    assert res.u is not None and torch.equal(res.u, u_tilde - g / res.theta)


def test_backtracking_applies_projection():
    f, H = quadratic(1.0)
    u = torch.ones(3, dtype=torch.float64)
    res = backtracking_step(f, f(u), H @ u, u, u, theta=1.0, op=lambda v: v.clamp(0.5, 2.0))
    assert (res.u >= 0.5).all() and (res.u <= 2.0).all()


def test_inertia_schedules_and_extrapolation():
    assert Inertia(0.9, 0.6, 0.3).at(7) == (0.9, 0.6, 0.3)
    p = Inertia(1.0, 0.5, 0.0, "ipalm")
    assert p.at(1) == (0.0, 0.0, 0.0)
    assert p.at(4) == pytest.approx((0.5, 0.25, 0.0))
    cur, prev = torch.tensor([2.0]), torch.tensor([1.0])
    assert extrapolate(cur, prev, 0.0) is cur
    assert extrapolate(cur, prev, 0.5).item() == pytest.approx(2.5)


@pytest.mark.parametrize("rho", [0.1, 1.0, 10.0])
def test_cross_entropy_prox_meets_optimality_condition(rho):
    gen = torch.Generator().manual_seed(0)
    v = 3 * torch.randn(64, 10, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (64,), generator=gen)
    z = CrossEntropy(max_iters=2000, tol=1e-10).prox(v, y, rho, start=v).requires_grad_(True)
    obj = F.cross_entropy(z, y, reduction="sum") + 0.5 * rho * (z - v).pow(2).sum()
    (g,) = torch.autograd.grad(obj, z)
    assert g.norm(dim=1).max() < 1e-8


@pytest.mark.parametrize("rho", [0.1, 0.3, 1.0, 10.0])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_prox_bound_meets_the_tolerance_from_far_starts(rho, label_smoothing):
    # The proven iteration count, with no stopping test, from centres of every scale and starts
    # far outside the ball that holds the minimizer: every sample's gradient is below tol.
    gen = torch.Generator().manual_seed(3)
    tol = 1e-6
    loss = CrossEntropy(max_iters=10_000, tol=tol, label_smoothing=label_smoothing, stopping="bound")
    k = loss.iterations_bound(rho)
    assert k is not None
    for scale, far in ((0.1, 0.0), (30.0, 1e3), (3000.0, 1e6)):
        v = scale * torch.randn(500, 10, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 10, (500,), generator=gen)
        start = v + far * torch.randn(500, 10, generator=gen, dtype=torch.float64)
        z = loss.prox(v, y, rho, start=start).requires_grad_(True)
        assert loss.last_iters == k
        obj = F.cross_entropy(z, y, reduction="sum", label_smoothing=label_smoothing)
        (g,) = torch.autograd.grad(obj + 0.5 * rho * (z - v).pow(2).sum(), z)
        assert g.norm(dim=1).max() <= tol


def test_cross_entropy_prox_bound_is_the_formula_and_falls_back_to_tests_beyond_max_iters():
    loss = CrossEntropy(max_iters=500, tol=1e-4, stopping="bound")
    # rho = 1: L = 1.5, mu = 1, D^2 = 8: ceil(ln(1.5 * 2.5 * 8 / 1e-8) / -ln(1 - sqrt(2/3))) = 13.
    assert loss.iterations_bound(1.0) == 13
    assert loss.iterations_bound(1e-3) is None  # > 500 iterations: convergence is tested instead
    gen = torch.Generator().manual_seed(5)
    v = 3 * torch.randn(200, 10, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (200,), generator=gen)
    z = loss.prox(v, y, 1e-3, start=v)
    assert loss.last_iters % 10 == 0 and loss.last_iters < 500  # stopped by a test
    g = torch.softmax(z, 1) - F.one_hot(y, 10) + 1e-3 * (z - v)
    assert g.norm(dim=1).max() <= 1e-4


def test_cross_entropy_prox_start_inside_the_ball_is_kept_bit_for_bit():
    gen = torch.Generator().manual_seed(6)
    v = torch.randn(10, 300, generator=gen)
    rho = 1.0
    inside = v + 0.1 * torch.randn(10, 300, generator=gen)
    far = v + 100.0 * torch.randn(10, 300, generator=gen)
    z = CrossEntropy._start_in_ball(inside, v, rho, 0)
    assert torch.equal(z, inside)
    z = CrossEntropy._start_in_ball(far, v, rho, 0)
    norms = (z - v).norm(dim=0)
    assert torch.allclose(norms, torch.full_like(norms, 2**0.5 / rho), rtol=1e-5)
    # on the segment from v to the start: the same direction
    cos = ((z - v) * (far - v)).sum(0) / (norms * (far - v).norm(dim=0))
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)


def test_squared_prox_closed_form():
    gen = torch.Generator().manual_seed(1)
    v, y = (
        torch.randn(20, 3, generator=gen, dtype=torch.float64),
        torch.randn(20, 3, generator=gen, dtype=torch.float64),
    )
    loss, rho = Squared(), 0.7
    z = loss.prox(v, y, rho, start=v).requires_grad_(True)
    # sum_i R_i = N * mse_loss (mean over all entries) -> per-sample sum convention
    obj = 20 * F.mse_loss(z, y) + 0.5 * rho * (z - v).pow(2).sum()
    (g,) = torch.autograd.grad(obj, z)
    assert g.abs().max() < 1e-12
    assert loss.sum(z, y).item() == pytest.approx(20 * F.mse_loss(z, y).item())


def test_cross_entropy_prox_classes_first_layout_equals_the_row_layout():
    # CPU iterates on the transpose (fast softmax); only the softmax's summation order differs.
    gen = torch.Generator().manual_seed(4)
    v = 3 * torch.randn(500, 10, generator=gen)
    y = torch.randint(0, 10, (500,), generator=gen)
    fast, rows = CrossEntropy(), CrossEntropy()
    rows.classes_first_on_cpu = False
    a, b = fast.prox(v, y, 1.0, start=v), rows.prox(v, y, 1.0, start=v)
    assert a.shape == b.shape and a.is_contiguous()
    assert torch.allclose(a, b, rtol=0, atol=1e-5) and fast.last_iters == rows.last_iters


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("scale", [1e-6, 1e-4, 1.0, 1e20])
def test_cross_entropy_stopping_test_decides_as_the_gradient_norm(dim, scale):
    # sqrt(sum of squares) instead of vector_norm: the same decision, also where squares overflow
    # (scale 1e20: both give inf).
    gen = torch.Generator().manual_seed(2)
    shape = (10, 300) if dim == 0 else (300, 10)
    z, v = torch.randn(*shape, generator=gen), torch.randn(*shape, generator=gen)
    onehot = F.one_hot(torch.randint(0, 10, (300,), generator=gen), 10).float()
    onehot = onehot.T.contiguous() if dim == 0 else onehot
    loss, rho = CrossEntropy(), 1.0
    v = z - scale * torch.randn(*shape, generator=gen)  # gradient ~ softmax - onehot + rho * scale
    norms = loss._grad(z, onehot, v, rho, dim).norm(dim=dim)
    for tol in (float(norms.max()) * 0.999, float(norms.max()) * 1.001, 1e-4):
        loss.tol = tol
        assert loss._converged(z, onehot, v, rho, dim) == (float(norms.max()) <= tol)


def test_tiam_iterates_do_not_depend_on_the_prox_layout(small_problem):
    # The optimized path (classes-first prox) against the previous one, float64, a random problem.
    import copy

    model, X, y = small_problem(n=300, seed=5)
    model = model.double()
    runs = []
    for classes_first in (True, False):
        tr = TIAM(copy.deepcopy(model), X.double(), y, F.cross_entropy)
        tr.out_loss.classes_first_on_cpu = classes_first
        values = [float(tr.train_step(None)) for _ in range(6)]
        runs.append((tr, values))
    (fast, vf), (ref, vr) = runs
    assert vf == pytest.approx(vr, rel=1e-10)
    assert fast.safeguard_count == ref.safeguard_count and fast.theta_W == ref.theta_W
    for a, b in zip(fast.W + fast.z + fast.a[1:], ref.W + ref.z + ref.a[1:]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)
