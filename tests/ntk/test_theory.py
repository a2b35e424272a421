"""Frozen-kernel theory: exact on a quadratic, per-mode rates, tuned parameters, bounds."""

import math

import numpy as np
import pytest
import torch

from beyondsgd.ntk import (
    gd_bound_du,
    hb_bound_wang,
    iterations_to,
    measured_rate,
    mode_rates,
    predict_loss,
    rate,
    spectrum,
    tuned_parameters,
)
from beyondsgd.ntk.theory import companion_trace_det
from beyondsgd.optim import HeavyBall, Nesterov


def _least_squares(seed=0, n=6, p=10):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, p, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    w0 = torch.randn(p, generator=g, dtype=torch.float64)
    return A, y, w0


def _train(A, y, w0, opt_cls, steps, **kw):
    """Losses 1/2||A w - y||^2 seen in the closure (at the model's parameters) and at NAG's iterates."""
    w = w0.clone().requires_grad_()
    opt = opt_cls([w], **kw)
    seen, iterate = [], []
    for _ in range(steps + 1):
        if isinstance(opt, Nesterov):
            iterate.append(0.5 * float(((A @ opt.iterates()[0] - y) ** 2).sum()))

        def closure():
            opt.zero_grad()
            loss = 0.5 * ((A @ w - y) ** 2).sum()
            loss.backward()
            return loss

        seen.append(float(opt.step(closure).detach()))
    return np.array(seen), np.array(iterate)


@pytest.mark.parametrize(
    "method,schedule",
    [("gd", "constant"), ("hb", "constant"), ("nag", "constant"), ("hb", "convex"), ("nag", "convex")],
)
def test_prediction_matches_a_run_on_a_quadratic(method, schedule):
    A, y, w0 = _least_squares(seed=1)
    sp = spectrum(A @ A.T)
    eta, beta = tuned_parameters("nag" if method == "gd" else method, sp.lambda_min, sp.lambda_max)
    if schedule == "convex":

        def beta(k):
            return max(0.0, (k - 1) / (k + 2))

    cls = Nesterov if method == "nag" else HeavyBall
    kw = dict(lr=eta, momentum=0.0 if method == "gd" else (0.5 if callable(beta) else beta), momentum_schedule=schedule)
    seen, iterate = _train(A, y, w0, cls, 60, **kw)
    xi0 = (A @ w0 - y).numpy()
    pred_seen = predict_loss(method, eta, beta, sp.eigenvalues, sp.eigenvectors, xi0, 60, at="lookahead")
    np.testing.assert_allclose(seen, pred_seen, rtol=1e-8, atol=1e-14)
    assert seen[-1] < 1e-3 * seen[0]  # the run actually trains
    if method == "nag":
        pred_it = predict_loss(method, eta, beta, sp.eigenvalues, sp.eigenvectors, xi0, 60, at="iterate")
        np.testing.assert_allclose(iterate, pred_it, rtol=1e-8, atol=1e-14)
        assert np.abs(pred_it - pred_seen).max() > 1e-6  # the two points really differ


@pytest.mark.parametrize("method", ["gd", "hb", "nag"])
def test_mode_rates_are_spectral_radii(method):
    h = np.linspace(0.01, 2.0, 17)
    eta, beta = 0.7, 0.6
    rates = mode_rates(method, eta, beta, h)
    T, D = companion_trace_det(method, eta, beta, h)
    for i in range(h.size):
        M = np.array([[T[i], -D[i]], [1.0, 0.0]])
        assert rates[i] == pytest.approx(np.abs(np.linalg.eigvals(M)).max(), rel=1e-10, abs=1e-12)


def test_common_tuning_rates_slow_mode_equal_fast_modes_favor_nag():
    mu, L = 0.01, 4.0
    eta, beta = tuned_parameters("hb", mu, L)
    assert (eta, beta) == tuned_parameters("nag", mu, L)
    q = math.sqrt(eta * mu)
    assert beta == pytest.approx((1 - q) / (1 + q))
    h = np.array([mu, L])
    hb, nag = mode_rates("hb", eta, beta, h), mode_rates("nag", eta, beta, h)
    assert nag[0] == pytest.approx(1 - q, rel=1e-6)  # critically damped slowest mode
    assert hb[0] == pytest.approx(1 - q, abs=2 * q**2)  # nearly the same for HB
    assert hb[1] == pytest.approx(math.sqrt(beta)) and nag[1] == pytest.approx(0.0, abs=1e-12)


def test_optimal_tunings_reach_their_textbook_rates():
    mu, L = 0.02, 3.0
    kappa = L / mu
    h = np.linspace(mu, L, 200)
    eta, beta = tuned_parameters("hb", mu, L, rule="optimal")
    assert rate("hb", eta, beta, h) == pytest.approx((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1), rel=1e-6)
    eta, _ = tuned_parameters("gd", mu, L, rule="optimal")
    assert rate("gd", eta, 0.0, h) == pytest.approx((kappa - 1) / (kappa + 1))
    eta, beta = tuned_parameters("nag", mu, L, rule="optimal")
    assert rate("nag", eta, beta, h) == pytest.approx(1 - 2 / math.sqrt(3 * kappa + 1), rel=1e-6)


def test_tuned_parameters_validate():
    with pytest.raises(ValueError, match="lambda_min=0"):
        tuned_parameters("hb", 0.0, 1.0)
    with pytest.raises(ValueError, match="lambda_max"):
        tuned_parameters("hb", 2.0, 1.0)
    with pytest.raises(ValueError, match="method='adam'"):
        tuned_parameters("adam", 1.0, 2.0)


def test_anchor_bounds_and_measurements():
    assert gd_bound_du(3, 0.5, 0.4)[()] == pytest.approx(0.9**3)
    assert hb_bound_wang(2, 1.0, 0.16, c=0.25)[()] == pytest.approx(0.9**2)
    losses = 3.0 * 0.8 ** (2 * np.arange(50))
    assert measured_rate(losses) == pytest.approx(0.8)
    assert iterations_to(losses, 3.0 * 0.8**20) == 10 and iterations_to(losses, 0.0) is None


def test_multi_output_residuals_evolve_column_by_column():
    h = np.array([0.1, 0.5, 1.2])
    C = np.arange(6.0).reshape(3, 2) - 2.0
    from beyondsgd.ntk import predict_modes

    both = predict_modes("nag", 0.5, 0.7, h, C, 20)
    for j in range(2):
        np.testing.assert_allclose(both[:, :, j], predict_modes("nag", 0.5, 0.7, h, C[:, j], 20))
    V = np.eye(3)
    assert predict_loss("hb", 0.5, 0.7, h, V, C, 20)[0] == pytest.approx(0.5 * (C**2).sum())
