"""The "specialized approximation": a linearized, backtracked step for one block.

TIAM replaces each sub-problem ``min_u f(u, v_bar) + g(u)`` (``g`` = 0 or the
indicator of a box) by the quadratic upper model of ``f`` at ``u_hat`` with
step ``1/theta``:

    u+ = Op(u_tilde - grad f(u_hat) / theta)

and doubles ``theta`` until the sufficient-decrease condition

    f(u+) <= f(u_hat) + <grad f(u_hat), u+ - u_hat> + (theta/2) ||u+ - u_hat||^2

holds (spec "Specialized approximation").  No linear system is solved: the BCD
predecessors invert ``rho a a^T + mu I``; this needs only matrix products.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

Op = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class StepResult:
    """Outcome of :func:`backtracking_step`.

    Attributes:
        u: the accepted point (``None`` when the doubling cap was hit).
        value: ``f(u)`` at the accepted point.
        theta: the accepted ``theta`` (on the cap: the last one tried).
        doublings: how many times ``theta`` doubled.
    """

    u: torch.Tensor | None
    value: torch.Tensor | None
    theta: float
    doublings: int


def backtracking_step(
    f: Callable[[torch.Tensor], torch.Tensor],
    f_hat: torch.Tensor,
    grad_hat: torch.Tensor,
    u_tilde: torch.Tensor,
    u_hat: torch.Tensor,
    theta: float,
    op: Op | None = None,
    max_doublings: int = 10,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    scratch: Callable[[str, torch.Size], torch.Tensor] | None = None,
    f_trial: Callable[[torch.Tensor, float], torch.Tensor] | None = None,
) -> StepResult:
    """One linearized step with backtracking on ``theta``.

    Args:
        f: the smooth block function.
        f_hat: ``f(u_hat)``.
        grad_hat: ``grad f(u_hat)``.
        u_tilde: centre of the proximal term.
        u_hat: point where the gradient was taken.
        theta: first ``theta`` to try (the last accepted one, spec).
        op: projection applied to the step (``None``: identity); it receives a fresh
            tensor and may modify it in place.
        max_doublings: cap on the doublings (mDLAM: 10).
        reduce: for a block split across ranks by samples (``a_l`` under data
            parallelism): sums a tensor over ranks. ``f``, ``<grad, d>`` and
            ``||d||^2`` are then rank-local sums, reduced in one call per trial,
            and ``f_hat`` must already be the global value; the test is taken on
            global sums, so every rank accepts the same ``theta``, and the
            returned ``value`` is global. ``None``: the block is not split (one
            process, or a shared block whose ``f`` reduces internally).
        scratch: ``scratch(name, shape)`` returns a reusable tensor for the two
            temporaries of the test (``u - u_hat`` and its product with the gradient;
            see :class:`beyondsgd.am.objective.Workspace`); ``None``: new tensors.
        f_trial: ``f_trial(u, theta)``, ``f`` at the trial point ``u`` of step ``theta``
            (``None``: ``f(u)``). Knowing ``theta`` lets a caller reuse work along the line
            ``u(theta) = u_tilde - g/theta`` (``op`` = identity), e.g. a product with ``u``.

    Returns:
        A :class:`StepResult`; ``u is None`` when the condition failed
        ``max_doublings + 1`` times (the caller keeps the current iterate).

    References:
        Spec "Specialized approximation"; iPALM (Pock & Sabach 2016) eq. (4.2)
        for the inertial linearized step.
    """
    # Slack for float rounding, relative to the size of the values compared
    # (an absolute slack would swamp small block objectives).
    info = torch.finfo(f_hat.dtype)
    ulp = info.eps
    for doublings in range(max_doublings + 1):
        if math.frexp(theta)[0] == 0.5 and info.tiny <= 1.0 / theta and theta <= info.max:
            # theta a power of two (theta_init = 1, doubled): g * (-1/theta) is exact, so the
            # fused u_tilde + g * (-1/theta) is u_tilde - g/theta bit for bit, in one pass (tested).
            u = torch.add(u_tilde, grad_hat, alpha=-1.0 / theta)
        else:
            # Temporaries are updated in place (fewer allocations, the same arithmetic):
            # u_tilde - g/theta == (-(g/theta)) + u_tilde exactly.
            u = (grad_hat / theta).neg_().add_(u_tilde)
        if op is not None:
            u = op(u)  # may work in place on u (a fresh tensor)
        if scratch is None:
            d = u - u_hat
            gd = grad_hat * d
        else:
            d = torch.sub(u, u_hat, out=scratch("step.d", u.shape))
            gd = torch.mul(grad_hat, d, out=scratch("step.gd", u.shape))
        value = f(u) if f_trial is None else f_trial(u, theta)
        inner = gd.sum()
        sq = d.square_().sum()
        if reduce is None:
            model = f_hat + inner + 0.5 * theta * sq
        else:
            value, inner, sq = reduce(torch.stack([value, inner, sq])).unbind()
            model = f_hat + inner + 0.5 * theta * sq
        # One host sync per trial: the acceptance decision (the only one a trial needs).
        if bool(value - model <= 32 * ulp * torch.maximum(f_hat.abs(), value.abs())):
            return StepResult(u, value, theta, doublings)
        theta *= 2.0
    return StepResult(None, None, theta / 2.0, max_doublings)
