"""Test problems: the stated minima are minima (value, zero gradient, nothing lower nearby)."""

import pytest
import torch

from beyondsgd.bench import problems

ALL = problems.standard_problems()


@pytest.mark.parametrize("p", ALL, ids=[p.name for p in ALL])
def test_known_minimum(p):
    x = p.x_star.clone().requires_grad_(True)
    fx = p.f(x)
    assert float(fx.detach()) == pytest.approx(p.f_star, abs=1e-12)
    (grad,) = torch.autograd.grad(fx, x)
    assert grad.abs().max() < 1e-8
    # Random nearby points are not lower; the start is clearly worse.
    near = p.x_star + 1e-3 * torch.randn(256, p.dim, dtype=torch.float64)
    assert (p.gap(near) >= -1e-12).all()
    assert float(p.gap(p.x0)) > 1e-3


def test_batched_evaluation_matches_single():
    for p in ALL:
        xs = p.x0 + torch.randn(5, p.dim, dtype=torch.float64)
        torch.testing.assert_close(p.f(xs), torch.stack([p.f(x) for x in xs]))


def test_quadratic_condition_number_and_convexity():
    p = problems.quadratic(1e3, dim=6)
    hess = torch.autograd.functional.hessian(p.f, p.x_star)
    eig = torch.linalg.eigvalsh(hess)
    assert float(eig.max() / eig.min()) == pytest.approx(1e3, rel=1e-8)
    assert p.convex and not problems.rastrigin().convex


def test_logistic_minimizer_is_stationary():
    p = problems.logistic_regression(n=50, dim=4, l2=0.1)
    hess = torch.autograd.functional.hessian(p.f, p.x_star)
    assert torch.linalg.eigvalsh(hess).min() >= 0.1 - 1e-9  # strongly convex with modulus l2


def test_bad_arguments():
    with pytest.raises(ValueError, match="condition=0.5"):
        problems.quadratic(0.5)
    with pytest.raises(ValueError, match="l2=0"):
        problems.logistic_regression(l2=0)


def test_same_sign_start_and_shifts():
    p = problems.quadratic(1e2, same_sign=True)
    assert (torch.sign(p.x0) == torch.sign(p.x_star)).all() and p.name.endswith("samesign")
    for q in (problems.rastrigin(shift=problems.SHIFT), problems.ackley(shift=problems.SHIFT)):
        assert torch.equal(q.x_star, torch.tensor(problems.SHIFT, dtype=torch.float64))
        assert (torch.sign(q.x0) == torch.sign(q.x_star)).all()
    with pytest.raises(ValueError, match="invalid shift"):
        problems.ackley(shift=(1.0,))
