"""Activations of the alternating-minimization trainers and their exact z-projections.

The relaxed constraint of a hidden layer is ``|h(z) - a| <= eps`` elementwise
(spec "Relaxed objective").  For a *nondecreasing* continuous ``h`` the set of
``z`` satisfying it for a fixed ``a`` is an interval

    C(a) = [h_lo(a - eps), h_hi(a + eps)],
    h_lo(y) = inf{z : h(z) >= y},   h_hi(y) = sup{z : h(z) <= y},

so the Euclidean projection on ``C`` is an elementwise clamp: exact, vectorized,
no loop.

The box can also be taken in the *input* variable of ``h`` (option ``box="input"`` of
the trainers, the project's choice for slopes far from 1): ``h(z - eps) <= a <= h(z + eps)``,
i.e. ``a`` within the image of ``[z - eps, z + eps]``; its ``z``-set is
``[h_lo(a) - eps, h_hi(a) + eps]`` (:meth:`Activation.project_input_box`).  For ReLU
it differs from the output box only near 0; for leaky ReLU with slope ``s`` the output
box leaves ``z`` a range of ``2 eps / s`` on the negative side, the input box ``2 eps``.
For a 1-Lipschitz ``h`` (all three here, ELU with ``alpha <= 1``) it implies
``|h(z) - a| <= eps``; for ELU its ``a``-range stays inside ``(-alpha, inf)`` so the
set is never empty and the projection is exact.  Each activation below supplies ``h`` and its two generalized inverses.

* ReLU: ``h_lo(y) = y`` if ``y > 0`` else ``-inf``; ``h_hi(y) = y`` (``y >= 0``
  always holds for a feasible pair, since ``a >= h(z) - eps >= -eps``).
* Leaky ReLU (slope ``s > 0``): strictly increasing, ``h^{-1}(y) = y`` for
  ``y >= 0`` and ``y / s`` below.
* ELU (``alpha > 0``, the project's third ReLU variant): strictly increasing onto
  ``(-alpha, inf)``, ``h^{-1}(y) = y`` for ``y > 0``, ``log(1 + y/alpha)`` on
  ``(-alpha, 0]`` and ``-inf`` at or below ``-alpha``.  If ``a + eps <= -alpha``
  (possible only right after ``eps`` shrinks) the set is empty; the upper end is
  then taken at ``-alpha + tiny``, i.e. the limit point of the range — a
  documented approximation, the only non-exact case.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

#: ``scratch(name, shape)``: a reusable tensor for a temporary (see :class:`beyondsgd.am.objective.Workspace`).
Scratch = Callable[[str, torch.Size], torch.Tensor]


class Activation(abc.ABC):
    """A nondecreasing activation with the generalized inverses of the box projection."""

    name: str = ""

    #: Lipschitz constant of ``h``: the input box implies ``|h(z) - a| <= eps`` only when it is <= 1.
    lipschitz: float = 1.0

    @abc.abstractmethod
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """``h(z)`` elementwise."""

    @abc.abstractmethod
    def lower_preimage(self, y: torch.Tensor) -> torch.Tensor:
        """``inf{z : h(z) >= y}`` elementwise (may be ``-inf``)."""

    @abc.abstractmethod
    def upper_preimage(self, y: torch.Tensor) -> torch.Tensor:
        """``sup{z : h(z) <= y}`` elementwise."""

    def project(self, z: torch.Tensor, a: torch.Tensor, eps: float, scratch: Scratch | None = None) -> torch.Tensor:
        """Euclidean projection of ``z`` on ``{z : |h(z) - a| <= eps}`` (elementwise clamp).

        Args:
            z: point to project.
            a: the post-activation variable the constraint couples ``z`` to.
            eps: half-width of the relaxation box.
            scratch: reusable tensors for the temporaries (used by ReLU); the result is new.

        Returns:
            The projection, same shape as ``z``.
        """
        return torch.clamp(z, *self.bounds(a, eps, scratch))

    def bounds(self, a: torch.Tensor, eps: float, scratch: Scratch | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The interval ``[h_lo(a - eps), h_hi(a + eps)]`` that :meth:`project` clamps to.

        It does not depend on the point projected, so a caller projecting several points
        for the same ``a`` (the safeguard's redo) computes it once.
        """
        return self.lower_preimage(a - eps), self.upper_preimage(a + eps)

    def box(self, z: torch.Tensor, eps: float, scratch: Scratch | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds ``h(z) - eps, h(z) + eps`` of the ``a``-update (``scratch``: where to put the lower one)."""
        hz = self(z)
        lo = hz - eps if scratch is None else torch.sub(hz, eps, out=scratch("box.lo", hz.shape))
        return lo, hz.add_(eps)

    def project_input_box(
        self, z: torch.Tensor, a: torch.Tensor, eps: float, scratch: Scratch | None = None
    ) -> torch.Tensor:
        """Projection of ``z`` on ``{z : h(z - eps) <= a <= h(z + eps)}`` (the box in the input variable).

        For nondecreasing ``h``: ``h(z - eps) <= a`` iff ``z - eps <= h_hi(a)`` and
        ``a <= h(z + eps)`` iff ``z + eps >= h_lo(a)``, so the set is the interval
        ``[h_lo(a) - eps, h_hi(a) + eps]``: an elementwise clamp, exact.
        """
        return torch.clamp(z, *self.input_box_bounds(a, eps, scratch))

    def input_box_bounds(
        self, a: torch.Tensor, eps: float, scratch: Scratch | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The interval ``[h_lo(a) - eps, h_hi(a) + eps]`` that :meth:`project_input_box` clamps to."""
        return self.lower_preimage(a) - eps, self.upper_preimage(a) + eps

    def input_box(self, z: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds ``h(z - eps), h(z + eps)`` of the ``a``-update under the input-variable box."""
        return self(z - eps), self(z + eps)

    def relaxed_argmin(self, c: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``argmin_z (z - c)^2 + (a - h(z))^2`` elementwise: dlADMM's hidden ``z``-subproblem.

        Only piecewise-linear activations have it in closed form (see
        :class:`LeakyReLU`); the others raise ``ValueError``.
        """
        raise ValueError(
            f"dlADMM supports the activations relu and leaky_relu (closed-form z-subproblem); got {self.name}"
        )

    def module(self) -> nn.Module:
        raise NotImplementedError


def _two_piece_argmin(c: torch.Tensor, a: torch.Tensor, slope: float) -> torch.Tensor:
    """``argmin_z (z - c)^2 + (a - h(z))^2`` for ``h(z) = z`` (``z >= 0``), ``slope * z`` (``z < 0``).

    On each half-line the function is a convex quadratic: its minimizer there is the
    unconstrained one clipped to the half-line, ``max((c + a)/2, 0)`` and
    ``min((c + slope a)/(1 + slope^2), 0)``; the global minimizer is the better of the two
    (ties: the nonnegative one). Exact and elementwise (dlADMM, Wang et al. 2019, for ReLU).
    """
    zp = ((c + a) / 2).clamp_min(0.0)
    zn = ((c + slope * a) / (1.0 + slope * slope)).clamp_max(0.0)
    fp = (zp - c).pow(2) + (a - zp).pow(2)
    fn = (zn - c).pow(2) + (a - slope * zn).pow(2)
    return torch.where(fn < fp, zn, zp)


def _lower_bound_or_none(y: torch.Tensor, scratch: Scratch | None = None, own: bool = False) -> torch.Tensor:
    """``y`` where ``y > 0``, the lowest finite number elsewhere: ReLU's ``h_lo(y)`` for a clamp.

    Where ``y <= 0`` ``h_lo(y) = -inf`` (no lower bound); clamping a finite ``z`` from below
    at the lowest finite number leaves it unchanged, so the clamp is the exact projection.
    Arithmetic instead of ``torch.where``: a data-dependent select on a random sign pattern is
    about 10x slower on CPU (branch mispredictions) and this is on the hot path of every
    iteration (``benchmarks/bench_tiam.py``). Bit-identical: ``y * 1 + 0 = y``, ``y * 0 - max = -max``.
    """
    keep = torch.sign(y) if scratch is None else torch.sign(y, out=scratch("proj.keep", y.shape))
    keep.clamp_min_(0.0)  # 1 where y > 0, else 0
    lo = y.mul_(keep) if own else y * keep  # own: y is the caller's temporary
    # lo + (keep - 1) * max in one pass: the product is exact (0 or -max), so fused or not the sum is the same.
    return lo.add_(keep.sub_(1.0), alpha=torch.finfo(y.dtype).max)


class ReLU(Activation):
    name = "relu"

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(z)

    def lower_preimage(self, y: torch.Tensor) -> torch.Tensor:
        return torch.where(y > 0, y, torch.full_like(y, -torch.inf))

    def upper_preimage(self, y: torch.Tensor) -> torch.Tensor:
        # y < 0 is infeasible (h >= 0); the closest points are z <= 0, the sup is 0.
        return y.clamp_min(0.0)

    def bounds(self, a: torch.Tensor, eps: float, scratch: Scratch | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        # Activation.bounds with -inf replaced by the lowest finite number (the same clamp).
        if scratch is None:
            return _lower_bound_or_none(a - eps, own=True), (a + eps).clamp_min_(0.0)
        lo = _lower_bound_or_none(torch.sub(a, eps, out=scratch("proj.y", a.shape)), scratch, own=True)
        return lo, torch.add(a, eps, out=scratch("proj.hi", a.shape)).clamp_min_(0.0)

    def input_box_bounds(
        self, a: torch.Tensor, eps: float, scratch: Scratch | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _lower_bound_or_none(a, scratch).sub_(eps), a.clamp_min(0.0).add_(eps)

    def relaxed_argmin(self, c: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return _two_piece_argmin(c, a, 0.0)


class LeakyReLU(Activation):
    name = "leaky_relu"

    def __init__(self, slope: float = 0.01) -> None:
        if not slope > 0:
            raise ValueError(
                f"invalid negative_slope={slope!r} for alternating minimization: expected > 0 "
                "(slope 0 is ReLU, a negative slope is not monotone)"
            )
        self.slope = float(slope)
        self.lipschitz = max(1.0, self.slope)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(z, self.slope)

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        # y for y >= 0, y / slope below (arithmetic, no data-dependent select: see _lower_bound_or_none).
        return y.clamp_min(0.0).add_(y.clamp_max(0.0).div_(self.slope))

    lower_preimage = _inverse
    upper_preimage = _inverse

    def relaxed_argmin(self, c: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return _two_piece_argmin(c, a, self.slope)


class ELU(Activation):
    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        if not alpha > 0:
            raise ValueError(f"invalid alpha={alpha!r} for ELU in alternating minimization: expected > 0")
        self.alpha = float(alpha)
        self.lipschitz = max(1.0, self.alpha)

    # Each piece is written as (positive part) + (map of the non-positive part): the other
    # part is exactly 0 there (expm1(0) = log1p(0) = 0), so this equals the select
    # where(y > 0, y, inner) bit for bit, without its branch mispredictions (see ReLU).
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return z.clamp_min(0.0).add_(torch.expm1(z.clamp_max(0.0)).mul_(self.alpha))

    def lower_preimage(self, y: torch.Tensor) -> torch.Tensor:
        inner = torch.log1p((y.clamp_max(0.0) / self.alpha).clamp_min_(-1.0))  # -inf at or below -alpha
        return y.clamp_min(0.0).add_(inner)

    def upper_preimage(self, y: torch.Tensor) -> torch.Tensor:
        # Empty set when y <= -alpha: use the limit point of the range (documented approximation).
        tiny = torch.finfo(y.dtype).eps
        inner = torch.log1p((y.clamp_max(0.0) / self.alpha).clamp_min_(-1.0 + tiny))
        return y.clamp_min(0.0).add_(inner)


def leaky_relu(slope: float) -> Activation:
    """The :class:`LeakyReLU` of ``slope``; slope 0 is :class:`ReLU` (its exact projection)."""
    return ReLU() if slope == 0.0 else LeakyReLU(slope)


def activation_from_module(module: nn.Module) -> Activation:
    """The :class:`Activation` of a torch activation module.

    Raises:
        ValueError: for an activation without a z-projection (tanh, sigmoid, SiLU...).
    """
    if type(module) is nn.ReLU:
        return ReLU()
    if type(module) is nn.LeakyReLU:
        return leaky_relu(module.negative_slope)
    if type(module) is nn.ELU:
        return ELU(module.alpha)
    raise ValueError(
        f"alternating minimization supports the activations relu, leaky_relu and elu (exact "
        f"z-projections); got {type(module).__name__}"
    )
