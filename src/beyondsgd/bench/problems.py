"""Classic optimization test problems with known minima.

Each :class:`Problem` is a differentiable function ``f(x)`` of a batch of points
``x`` of shape ``(..., dim)`` (so many runs can share one forward/backward pass),
its minimizer ``x_star``, minimum ``f_star`` and a standard starting point ``x0``.

* :func:`quadratic` — convex ``0.5 (x - x*)^T A (x - x*)`` with a chosen condition number.
* :func:`logistic_regression` — L2-regularized logistic loss on synthetic data; the
  minimizer is computed by Newton's method in float64 (to ~1e-14).
* :func:`rosenbrock`, :func:`rastrigin`, :func:`beale`, :func:`ackley` — the standard
  non-convex benchmarks (e.g. Jamil & Yang, "A literature survey of benchmark functions
  for global optimization problems", 2013), with their usual starting points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from beyondsgd.validation import POSITIVE, POSITIVE_INT, Interval


@dataclass(frozen=True)
class Problem:
    """A test function with a known minimum.

    Attributes:
        name: short name (used in reports).
        f: ``f(x)`` for ``x`` of shape ``(..., dim)``; returns shape ``(...)``.
        x_star: a global minimizer, shape ``(dim,)``.
        f_star: the global minimum.
        x0: the standard starting point, shape ``(dim,)``.
        convex: whether ``f`` is convex.
        description: one line.
    """

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    x_star: torch.Tensor
    f_star: float
    x0: torch.Tensor
    convex: bool
    description: str = ""

    @property
    def dim(self) -> int:
        return int(self.x_star.numel())

    def gap(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x) - f_star`` (>= 0 up to rounding)."""
        return self.f(x) - self.f_star


def _f64(values) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float64)


def quadratic(condition: float = 100.0, dim: int = 10, seed: int = 0, same_sign: bool = False) -> Problem:
    """``f(x) = 0.5 (x - x*)^T A (x - x*)``, eigenvalues of ``A`` log-spaced in ``[1, condition]``.

    ``A = Q diag(lambda) Q^T`` with a random rotation ``Q``; ``x*`` and ``x0`` are random
    (entries of both signs, so a rule that cannot cross zero cannot reach ``x*`` from ``x0``
    in every coordinate; that is part of what the comparison shows).

    Args:
        condition: the condition number ``lambda_max / lambda_min`` (>= 1).
        dim: dimension (>= 2).
        seed: seeds ``Q``, ``x*`` and ``x0``.
        same_sign: start at ``x0 = x* * exp(z)``, ``z ~ N(0, 1)``: every coordinate on the
            minimizer's side of zero, reachable by a rule that cannot cross zero.
    """
    Interval(1.0).check("condition", condition)
    Interval(2, integer=True).check("dim", dim)
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    lam = torch.logspace(0.0, math.log10(condition), dim, dtype=torch.float64)
    A = (q * lam) @ q.T
    x_star = torch.randn(dim, generator=g, dtype=torch.float64)
    noise = torch.randn(dim, generator=g, dtype=torch.float64)
    x0 = x_star * noise.exp() if same_sign else x_star + 2.0 * noise

    def f(x: torch.Tensor) -> torch.Tensor:
        z = x - x_star
        return 0.5 * ((z @ A) * z).sum(-1)

    return Problem(
        f"quadratic-k{condition:g}" + ("-samesign" if same_sign else ""),
        f,
        x_star,
        0.0,
        x0,
        True,
        f"convex quadratic, dim {dim}, condition number {condition:g}"
        + (", start on the minimizer's side of zero" if same_sign else ""),
    )


def logistic_regression(n: int = 200, dim: int = 10, l2: float = 1e-2, seed: int = 0) -> Problem:
    """``f(w) = mean log(1 + exp(-y_i <a_i, w>)) + l2/2 |w|^2`` on synthetic separable-ish data.

    Args:
        n: samples.
        dim: features (including a constant one for the intercept).
        l2: ridge weight (> 0 makes the minimizer unique).
        seed: seeds the data.
    """
    POSITIVE_INT.check("n", n)
    Interval(2, integer=True).check("dim", dim)
    POSITIVE.check("l2", l2)
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, dim, generator=g, dtype=torch.float64)
    a[:, 0] = 1.0
    w_true = torch.randn(dim, generator=g, dtype=torch.float64)
    y = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(a @ w_true), 1.0, -1.0)

    def f(w: torch.Tensor) -> torch.Tensor:
        margins = (w @ a.T) * y
        return torch.nn.functional.softplus(-margins).mean(-1) + 0.5 * l2 * (w * w).sum(-1)

    # Newton's method: the objective is smooth and strongly convex, so 30 steps reach rounding.
    w = torch.zeros(dim, dtype=torch.float64)
    for _ in range(30):
        s = torch.sigmoid(-(a @ w) * y)
        grad = -(a * (y * s)[:, None]).mean(0) + l2 * w
        hess = (a.T * (s * (1 - s))) @ a / n + l2 * torch.eye(dim, dtype=torch.float64)
        w = w - torch.linalg.solve(hess, grad)
    x0 = torch.randn(dim, generator=g, dtype=torch.float64)
    return Problem(
        "logistic",
        f,
        w,
        float(f(w)),
        x0,
        True,
        f"L2-regularized logistic regression, {n} samples, dim {dim}, l2 {l2:g}",
    )


def rosenbrock(dim: int = 2) -> Problem:
    """``sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``; minimum 0 at ``(1, ..., 1)``; start ``(-1.2, 1, ...)``."""
    Interval(2, integer=True).check("dim", dim)

    def f(x: torch.Tensor) -> torch.Tensor:
        return (100.0 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1.0 - x[..., :-1]) ** 2).sum(-1)

    x0 = _f64([-1.2] + [1.0] * (dim - 1))
    return Problem(
        "rosenbrock", f, torch.ones(dim, dtype=torch.float64), 0.0, x0, False, f"Rosenbrock's valley, dim {dim}"
    )


def _shift(shift: Sequence[float] | None, dim: int) -> torch.Tensor:
    s = torch.zeros(dim, dtype=torch.float64) if shift is None else _f64(shift)
    if s.shape != (dim,):
        raise ValueError(f"invalid shift={shift!r}: expected {dim} numbers")
    return s


def rastrigin(dim: int = 2, shift: Sequence[float] | None = None) -> Problem:
    """``10 n + sum z_i^2 - 10 cos(2 pi z_i)``, ``z = x - shift``; minimum 0 at ``shift`` (default 0);
    many local minima; start ``shift + (2.2, -1.3, ...)``.

    The unshifted minimizer is the origin, which a multiplicative rule reaches just by
    shrinking every weight; ``shift`` moves it away to test more than that.
    """
    Interval(1, integer=True).check("dim", dim)
    s = _shift(shift, dim)

    def f(x: torch.Tensor) -> torch.Tensor:
        z = x - s
        return 10.0 * x.shape[-1] + (z * z - 10.0 * torch.cos(2 * math.pi * z)).sum(-1)

    x0 = s + _f64([2.2 if i % 2 == 0 else -1.3 for i in range(dim)])
    name = "rastrigin" if shift is None else "rastrigin-shifted"
    return Problem(name, f, s.clone(), 0.0, x0, False, f"Rastrigin, dim {dim} (multimodal), minimizer {s.tolist()}")


def beale() -> Problem:
    """``(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2``; minimum 0 at (3, 0.5); start (1, 1)."""

    def f(z: torch.Tensor) -> torch.Tensor:
        x, y = z[..., 0], z[..., 1]
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    return Problem("beale", f, _f64([3.0, 0.5]), 0.0, _f64([1.0, 1.0]), False, "Beale (2-D)")


def ackley(shift: Sequence[float] | None = None) -> Problem:
    """``-20 exp(-0.2 sqrt(mean z^2)) - exp(mean cos 2 pi z) + e + 20``, ``z = x - shift``; minimum 0 at
    ``shift`` (default 0); start ``shift + (1.7, -1.1)``. See :func:`rastrigin` on ``shift``."""
    s = _shift(shift, 2)

    def f(x: torch.Tensor) -> torch.Tensor:
        z = x - s
        # clamp: the radius's gradient is undefined at exactly 0 (the minimizer).
        r = torch.sqrt((z * z).mean(-1).clamp_min(1e-300))
        return -20.0 * torch.exp(-0.2 * r) - torch.exp(torch.cos(2 * math.pi * z).mean(-1)) + math.e + 20.0

    name = "ackley" if shift is None else "ackley-shifted"
    return Problem(
        name, f, s.clone(), 0.0, s + _f64([1.7, -1.1]), False, f"Ackley (2-D, multimodal), minimizer {s.tolist()}"
    )


#: Where the shifted Rastrigin and Ackley put their minimizer (same signs as their starts).
SHIFT = (1.5, -0.5)


def standard_problems(conditions: tuple[float, ...] = (1e1, 1e2, 1e3, 1e4)) -> list[Problem]:
    """The suite of the multiplicative reproduction: quadratics of each condition number (and one
    started on the minimizer's side of zero), logistic regression, Rosenbrock, Rastrigin, Beale,
    Ackley, and Rastrigin and Ackley shifted away from the origin."""
    return [
        *(quadratic(c) for c in conditions),
        quadratic(1e2, same_sign=True),
        logistic_regression(),
        rosenbrock(),
        rastrigin(),
        rastrigin(shift=SHIFT),
        beale(),
        ackley(),
        ackley(shift=SHIFT),
    ]
