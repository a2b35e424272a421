"""High- and low-resolution ODEs of heavy ball and Nesterov in the frozen-kernel regime.

Shi, Du, Jordan, Su (2021) model the iterations with step ``s = eta`` on a
``mu``-strongly convex ``f`` by (iteration ``k`` <-> time ``t = k sqrt(s)``)::

    HB  (high resolution):  X'' + 2 sqrt(mu) X' + (1 + sqrt(mu s)) grad f(X) = 0
    NAG (high resolution):  X'' + 2 sqrt(mu) X' + sqrt(s) Hess f(X) X' + (1 + sqrt(mu s)) grad f(X) = 0
    both (low resolution):  X'' + 2 sqrt(mu) X' + grad f(X) = 0

With a frozen kernel the residual ``xi`` obeys the same equations with
``grad f -> H xi`` and ``Hess f X' -> H xi'``; in the eigenbasis of ``H`` each
mode is a damped oscillator ``c'' + b(h) c' + k(h) c = 0``.  The term
``sqrt(s) h c'`` is Nesterov's gradient correction (extra damping of the fast modes).

References:
    B. Shi, S. S. Du, M. I. Jordan, W. J. Su, "Understanding the acceleration
    phenomenon via high-resolution differential equations", Math. Program. 2021,
    eqs. (1.10)-(1.12) and the initial condition ``X'(0) = -2 sqrt(s) grad f(x_0) / (1 + sqrt(mu s))``.
    Liu et al., arXiv:2208.03941 (the NTK version of these ODEs).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from beyondsgd.validation import NONNEGATIVE_INT, POSITIVE, POSITIVE_INT, OneOf

ODE_KINDS = ("hb", "nag", "low")
INITIAL_VELOCITIES = ("shi", "zero")


def mode_coefficients(kind: str, eigenvalues: Any, mu: float, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Damping ``b(h)`` and stiffness ``k(h)`` of each mode's ODE ``c'' + b c' + k c = 0``."""
    OneOf(ODE_KINDS).check("kind", kind)
    h = np.asarray(eigenvalues, dtype=float)
    damping = np.full_like(h, 2.0 * math.sqrt(mu))
    if kind == "low":
        return damping, h.copy()
    stiffness = (1.0 + math.sqrt(mu * s)) * h
    if kind == "nag":
        damping = damping + math.sqrt(s) * h  # the gradient-correction term
    return damping, stiffness


def integrate_modes(
    kind: str,
    eigenvalues: Any,
    coeffs0: Any,
    mu: float,
    s: float,
    steps: int,
    *,
    substeps: int = 8,
    initial_velocity: str = "shi",
) -> np.ndarray:
    """Integrate the modal ODEs with classical RK4, sampled at ``t_k = k sqrt(s)``.

    Args:
        kind: ``"hb"``, ``"nag"`` (high resolution) or ``"low"``.
        eigenvalues: ``(n,)`` eigenvalues of the frozen kernel ``H``.
        coeffs0: ``(n,)`` or ``(n, outputs)`` initial coefficients ``V^T xi(0)``.
        mu: strong-convexity parameter (``lambda_min`` of the kernel, > 0).
        s: step size ``eta`` of the iteration being modelled.
        steps: number of iterations to cover (samples ``k = 0..steps``).
        substeps: RK4 steps per iteration interval ``sqrt(s)`` (8 keeps the error far
            below plotting resolution for ``s <= 1/lambda_max``).
        initial_velocity: ``"shi"``: ``xi'(0) = -2 sqrt(s) H xi(0) / (1 + sqrt(mu s))``
            (Shi et al.'s choice for the high-resolution ODEs); ``"zero"``: start at rest.

    Returns:
        ``(steps + 1, *coeffs0.shape)`` array of ``c(t_k)``.
    """
    POSITIVE.check("mu", mu)
    POSITIVE.check("s", s)
    NONNEGATIVE_INT.check("steps", steps)
    POSITIVE_INT.check("substeps", substeps)
    OneOf(INITIAL_VELOCITIES).check("initial_velocity", initial_velocity)
    b, k = mode_coefficients(kind, eigenvalues, mu, s)
    c = np.asarray(coeffs0, dtype=float).copy()
    shape = (-1, *([1] * (c.ndim - 1)))
    b, k = b.reshape(shape), k.reshape(shape)
    h = np.asarray(eigenvalues, dtype=float).reshape(shape)
    v = -2.0 * math.sqrt(s) * h * c / (1.0 + math.sqrt(mu * s)) if initial_velocity == "shi" else np.zeros_like(c)
    dt = math.sqrt(s) / substeps

    def accel(c_, v_):
        return -b * v_ - k * c_

    out = np.empty((steps + 1, *c.shape))
    out[0] = c
    for i in range(1, steps + 1):
        for _ in range(substeps):
            a1 = accel(c, v)
            c2, v2 = c + 0.5 * dt * v, v + 0.5 * dt * a1
            a2 = accel(c2, v2)
            c3, v3 = c + 0.5 * dt * v2, v + 0.5 * dt * a2
            a3 = accel(c3, v3)
            c4, v4 = c + dt * v3, v + dt * a3
            a4 = accel(c4, v4)
            c = c + dt / 6.0 * (v + 2 * v2 + 2 * v3 + v4)
            v = v + dt / 6.0 * (a1 + 2 * a2 + 2 * a3 + a4)
        out[i] = c
    return out


def ode_loss(
    kind: str,
    eigenvalues: Any,
    eigenvectors: Any,
    residual0: Any,
    mu: float,
    s: float,
    steps: int,
    **kwargs: Any,
) -> np.ndarray:
    """``1/2 ||xi(t_k)||^2`` for ``k = 0..steps`` from :func:`integrate_modes` (the modal sum)."""
    coeffs0 = np.asarray(eigenvectors, dtype=float).T @ np.asarray(residual0, dtype=float)
    modes = integrate_modes(kind, eigenvalues, coeffs0, mu, s, steps, **kwargs)
    return 0.5 * (modes**2).reshape(steps + 1, -1).sum(axis=1)
