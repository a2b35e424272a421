"""The ODE integrator against the closed-form damped oscillator."""

import math

import numpy as np
import pytest

from beyondsgd.ntk import integrate_modes, mode_coefficients, ode_loss


def _closed_form(b, k, c0, v0, t):
    """c'' + b c' + k c = 0 with c(0)=c0, c'(0)=v0 (distinct roots)."""
    disc = np.sqrt(complex(b * b - 4 * k))
    r1, r2 = (-b + disc) / 2, (-b - disc) / 2
    B = (v0 - r1 * c0) / (r2 - r1)
    A = c0 - B
    return (A * np.exp(r1 * t) + B * np.exp(r2 * t)).real


@pytest.mark.parametrize("kind", ["hb", "nag", "low"])
@pytest.mark.parametrize("h", [0.05, 1.0, 30.0])  # under- and over-damped modes
@pytest.mark.parametrize("start", ["shi", "zero"])
def test_scalar_mode_matches_closed_form(kind, h, start):
    mu, s, steps = 0.04, 1.0 / 40.0, 120
    b, k = mode_coefficients(kind, [h], mu, s)
    c = integrate_modes(kind, [h], [1.5], mu, s, steps, initial_velocity=start, substeps=32)[:, 0]
    v0 = -2 * math.sqrt(s) * h * 1.5 / (1 + math.sqrt(mu * s)) if start == "shi" else 0.0
    t = np.arange(steps + 1) * math.sqrt(s)
    np.testing.assert_allclose(c, _closed_form(b[0], k[0], 1.5, v0, t), atol=1e-6)


def test_coefficients_follow_shi_et_al():
    mu, s, h = 0.09, 0.25, np.array([2.0])
    assert mode_coefficients("hb", h, mu, s) == (pytest.approx([0.6]), pytest.approx([2.0 * 1.15]))
    assert mode_coefficients("nag", h, mu, s) == (pytest.approx([0.6 + 1.0]), pytest.approx([2.3]))
    assert mode_coefficients("low", h, mu, s) == (pytest.approx([0.6]), pytest.approx([2.0]))


def test_gradient_correction_speeds_up_the_fast_modes():
    """Same (mu, s): the sqrt(s) H xi' term makes NAG's ODE decay faster on the fast modes."""
    h = np.array([0.3, 1.0])
    V = np.eye(2)
    xi0 = np.ones(2)
    hb = ode_loss("hb", h, V, xi0, mu=0.01, s=1.0, steps=40)
    nag = ode_loss("nag", h, V, xi0, mu=0.01, s=1.0, steps=40)
    assert hb[0] == nag[0] and (nag[5:] < hb[5:]).all() and nag[-1] < 1e-3 * hb[-1]
