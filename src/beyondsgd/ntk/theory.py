"""Linear (frozen-kernel) theory of GD, heavy ball and Nesterov on the two-layer net.

With a frozen kernel ``H`` (the NTK regime; exact for a least-squares problem
``L(w) = 1/2 ||A w - y||^2`` with ``H = A A^T``) the residual ``xi_k = u(W_k) - y``
follows a linear recursion; in the eigenbasis ``H = sum_i h_i v_i v_i^T`` each
coefficient ``c_i = v_i^T xi`` evolves on its own::

    GD:   c_{k+1} = (1 - eta h) c_k
    HB:   c_{k+1} = (1 + beta_k - eta h) c_k - beta_k c_{k-1}
    NAG:  c_{k+1} = (1 - eta h) [(1 + beta_k) c_k - beta_k c_{k-1}]

(with ``c_{-1} = c_0``: the methods start at rest).  The per-mode rate is the
spectral radius of the 2x2 companion matrix; the predicted loss curve is
``1/2 sum_i c_i(k)^2``.  This per-mode analysis is the project's derivation
(the paper's theorem constants were not available); the anchor bounds below are
the published ones.

References:
    Liu et al., arXiv:2208.03941 (HB vs NAG on the two-layer ReLU net).
    Du et al., ICLR 2019, Theorem 4.1 (GD rate).
    Wang, Lin, Abernethy, ICML 2021, Theorem 3.1 (HB rate, Theta form).
    Polyak 1964; Lessard, Recht, Packard, SIAM J. Optim. 2016 (tuned parameters).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from beyondsgd.validation import NONNEGATIVE, POSITIVE, UNIT_HALF_OPEN, OneOf

METHODS = ("gd", "hb", "nag")
TUNING_RULES = ("common", "optimal")

BetaLike = float | Sequence[float] | Callable[[int], float]


def _beta_fn(beta: BetaLike) -> Callable[[int], float]:
    if callable(beta):
        return beta
    if isinstance(beta, (int, float)):
        UNIT_HALF_OPEN.check("beta", beta)
        return lambda k: float(beta)
    seq = [float(b) for b in beta]
    return lambda k: seq[min(k, len(seq) - 1)]


def _check_method(method: str) -> None:
    OneOf(METHODS).check("method", method)


def companion_trace_det(method: str, eta: float, beta: float, h: Any) -> tuple[np.ndarray, np.ndarray]:
    """Trace and determinant of the per-mode 2x2 recursion matrix.

    The matrix is ``[[T, -D], [1, 0]]`` acting on ``(c_k, c_{k-1})``; its
    eigenvalues solve ``z^2 - T z + D = 0``.
    """
    _check_method(method)
    h = np.asarray(h, dtype=float)
    if method == "gd":
        return 1.0 - eta * h, np.zeros_like(h)
    if method == "hb":
        return 1.0 + beta - eta * h, np.full_like(h, beta)
    return (1.0 + beta) * (1.0 - eta * h), beta * (1.0 - eta * h)


def mode_rates(method: str, eta: float, beta: float, eigenvalues: Any) -> np.ndarray:
    """Asymptotic per-iteration contraction of each mode (spectral radius of its 2x2 matrix).

    Args:
        method: ``"gd"``, ``"hb"`` or ``"nag"``.
        eta: step size.
        beta: momentum (ignored for GD).
        eigenvalues: eigenvalues ``h_i`` of the kernel.

    Returns:
        Array of ``max |z|`` over the two roots, one per eigenvalue (the residual
        norm of that mode decays like ``rate^k``, times a polynomial at a double root).
    """
    T, D = companion_trace_det(method, eta, beta, eigenvalues)
    disc = np.sqrt(T.astype(complex) ** 2 - 4 * D)
    return np.maximum(np.abs((T + disc) / 2), np.abs((T - disc) / 2))


def rate(method: str, eta: float, beta: float, eigenvalues: Any) -> float:
    """Worst per-mode rate: the asymptotic linear rate of the residual norm."""
    return float(np.max(mode_rates(method, eta, beta, eigenvalues)))


def predict_modes(
    method: str,
    eta: float,
    beta: BetaLike,
    eigenvalues: Any,
    coeffs0: Any,
    steps: int,
    *,
    at: str = "iterate",
) -> np.ndarray:
    """Modal coefficients ``c_i(k)`` for ``k = 0..steps`` under the frozen-kernel recursion.

    Args:
        method: ``"gd"``, ``"hb"`` or ``"nag"``.
        eta: step size.
        beta: momentum: a number, a sequence ``beta_k``, or ``k -> beta_k``.
        eigenvalues: ``(n,)`` eigenvalues of ``H``.
        coeffs0: ``(n,)`` or ``(n, outputs)`` initial coefficients ``V^T xi_0``.
        steps: number of iterations.
        at: ``"iterate"``: the residual at ``W_k``; ``"lookahead"``: at the point
            where the gradient is taken (``Y_k = W_k + beta_k d_k`` for NAG, what
            :class:`~beyondsgd.optim.Nesterov` holds in the model; equal to the
            iterate for GD and HB).

    Returns:
        Array of shape ``(steps + 1, *coeffs0.shape)``.
    """
    _check_method(method)
    OneOf(("iterate", "lookahead")).check("at", at)
    POSITIVE.check("eta", eta)
    beta_k = (lambda k: 0.0) if method == "gd" else _beta_fn(beta)
    h = np.asarray(eigenvalues, dtype=float)
    c = np.asarray(coeffs0, dtype=float)
    hb = h.reshape(-1, *([1] * (c.ndim - 1)))
    c_prev = c.copy()
    out = np.empty((steps + 1, *c.shape))
    for k in range(steps + 1):
        b = beta_k(k)
        look = c + b * (c - c_prev)
        out[k] = look if (at == "lookahead" and method == "nag") else c
        if k == steps:
            break
        if method == "nag":
            c_next = look - eta * hb * look
        else:
            c_next = c - eta * hb * c + b * (c - c_prev)
        c_prev, c = c, c_next
    return out


def predict_loss(
    method: str,
    eta: float,
    beta: BetaLike,
    eigenvalues: Any,
    eigenvectors: Any,
    residual0: Any,
    steps: int,
    *,
    at: str = "iterate",
) -> np.ndarray:
    """Predicted training loss ``1/2 ||xi_k||^2`` for ``k = 0..steps`` (the modal sum).

    Args:
        method, eta, beta, steps, at: as in :func:`predict_modes`.
        eigenvalues: ``(n,)`` eigenvalues of ``H``.
        eigenvectors: ``(n, n)`` orthonormal eigenvectors (columns).
        residual0: ``(n,)`` or ``(n, outputs)`` initial residual ``u(0) - y``.

    Returns:
        ``(steps + 1,)`` array.
    """
    coeffs0 = np.asarray(eigenvectors, dtype=float).T @ np.asarray(residual0, dtype=float)
    modes = predict_modes(method, eta, beta, eigenvalues, coeffs0, steps, at=at)
    return 0.5 * (modes**2).reshape(steps + 1, -1).sum(axis=1)


def tuned_parameters(method: str, lambda_min: float, lambda_max: float, rule: str = "common") -> tuple[float, float]:
    """Step size and momentum from the extreme eigenvalues of the kernel.

    Rules:
        ``"common"`` (the usual tuning in the paper's setting; same ``(eta, beta)``
        for HB and NAG so that only the gradient correction differs):
        ``eta = 1/lambda_max``, ``beta = (1 - sqrt(eta mu)) / (1 + sqrt(eta mu))``;
        GD uses ``eta = 1/lambda_max``.
        ``"optimal"`` (each method's rate-optimal quadratic tuning): GD
        ``eta = 2/(L + mu)``; HB (Polyak) ``eta = 4/(sqrt L + sqrt mu)^2``,
        ``beta = ((sqrt L - sqrt mu)/(sqrt L + sqrt mu))^2``; NAG (Lessard et al.
        2016) ``eta = 4/(3L + mu)``, ``beta = (sqrt(3 kappa + 1) - 2)/(sqrt(3 kappa + 1) + 2)``.

    Args:
        method: ``"gd"``, ``"hb"`` or ``"nag"``.
        lambda_min: ``mu``, smallest eigenvalue (> 0).
        lambda_max: ``L``, largest eigenvalue (>= lambda_min).
        rule: ``"common"`` or ``"optimal"``.

    Returns:
        ``(eta, beta)`` (``beta = 0`` for GD).
    """
    _check_method(method)
    OneOf(TUNING_RULES).check("rule", rule)
    POSITIVE.check("lambda_min", lambda_min)
    if not lambda_max >= lambda_min:
        raise ValueError(f"invalid lambda_max={lambda_max!r}: expected a number >= lambda_min={lambda_min!r}")
    mu, L = float(lambda_min), float(lambda_max)
    if rule == "common":
        eta = 1.0 / L
        q = math.sqrt(eta * mu)
        return eta, (0.0 if method == "gd" else (1 - q) / (1 + q))
    if method == "gd":
        return 2.0 / (L + mu), 0.0
    if method == "hb":
        sL, sm = math.sqrt(L), math.sqrt(mu)
        return 4.0 / (sL + sm) ** 2, ((sL - sm) / (sL + sm)) ** 2
    r = math.sqrt(3 * L / mu + 1)
    return 4.0 / (3 * L + mu), (r - 2) / (r + 2)


# ----------------------------------------------------------------------------- anchor bounds


def gd_bound_du(k: Any, eta: float, lambda0: float) -> np.ndarray:
    """Du et al. (2019), Theorem 4.1: ``||y - u(k)||^2 <= (1 - eta lambda_0 / 2)^k ||y - u(0)||^2``.

    Holds for width ``m = Omega(n^6 / (lambda_0^4 delta^3))`` and ``eta = O(lambda_0 / n^2)``;
    returned as the factor multiplying ``||y - u(0)||^2`` (equivalently the loss ratio).
    """
    NONNEGATIVE.check("eta", eta)
    return (1.0 - eta * lambda0 / 2.0) ** np.asarray(k, dtype=float)


def hb_bound_wang(k: Any, eta: float, lambda_min: float, c: float = 0.25) -> np.ndarray:
    """Wang, Lin, Abernethy (2021): HB's residual norm decays like ``(1 - c sqrt(eta lambda))^k``.

    The paper states the rate as ``(1 - Theta(1/sqrt(kappa)))^t``; with ``eta = 1/lambda_max``,
    ``sqrt(eta lambda_min) = 1/sqrt(kappa)``.  The constant ``c`` hidden in Theta is a
    parameter here; the default ``1/4`` is the project's choice, not a quoted value.

    Returns:
        The factor multiplying ``||xi_0||`` (square it for the loss ratio).
    """
    POSITIVE.check("c", c)
    return (1.0 - c * math.sqrt(eta * lambda_min)) ** np.asarray(k, dtype=float)


def measured_rate(losses: Any, start: float = 0.5, floor: float = 1e-12) -> float:
    """Per-iteration contraction of the residual norm fitted on the tail of a loss curve.

    Fits ``log sqrt(loss)`` linearly over iterations from ``start`` (a fraction of the
    curve) to its end, skipping values below ``floor * loss[0]`` (round-off).

    Returns:
        ``exp(slope)``: comparable with :func:`rate` and with the anchor bounds' factors.
    """
    loss = np.asarray(losses, dtype=float)
    k = np.arange(loss.size)
    keep = (k >= int(start * loss.size)) & np.isfinite(loss) & (loss > floor * loss[0])
    if keep.sum() < 2:
        return float("nan")
    slope = np.polyfit(k[keep], 0.5 * np.log(loss[keep]), 1)[0]
    return float(math.exp(slope))


def iterations_to(losses: Any, eps: float) -> int | None:
    """First iteration whose loss is ``<= eps`` (``None`` if never)."""
    hits = np.flatnonzero(np.asarray(losses, dtype=float) <= eps)
    return int(hits[0]) if hits.size else None
