"""Output losses R(z_L; Y) of the alternating-minimization trainers and their proximal maps.

Both work per sample ("sum form": the value of sample i and the prox of
``R_i(z) + (rho/2)||z - v_i||^2``), vectorized over the batch.  The trainer
divides sums by the batch size, so ``R`` is the *mean* loss the runner uses
(``F.cross_entropy`` / ``F.mse_loss``).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


class OutputLoss(abc.ABC):
    """A loss whose per-sample proximal map the ``z_L`` block needs."""

    name = ""

    @abc.abstractmethod
    def sum(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``sum_i R_i(z_i; y_i)`` (0-d), such that ``sum / N`` is the runner's mean loss."""

    @abc.abstractmethod
    def prox(self, v: torch.Tensor, y: torch.Tensor, rho: float, start: torch.Tensor) -> torch.Tensor:
        """``argmin_z sum_i R_i(z_i) + (rho/2)||z - v||^2`` (separable over samples).

        Args:
            v: centres, ``(m, C)``.
            y: targets of the batch.
            rho: weight of the quadratic.
            start: warm start for iterative solvers (e.g. the previous ``z_L``).
        """

    def target(self, y: torch.Tensor, num_outputs: int, dtype: torch.dtype) -> torch.Tensor:
        """Initial ``z_L`` when started at the labels (mDLAM: +1 at the label, -1 elsewhere)."""
        raise NotImplementedError


class CrossEntropy(OutputLoss):
    """Softmax cross-entropy; prox by Nesterov's method for strongly convex functions.

    The objective ``CE(z) + (rho/2)||z - v||^2`` per sample has gradient
    ``softmax(z) - e_y + rho (z - v)``; the Hessian of CE is bounded by 1/2
    (Böhning's bound), so the gradient is ``(rho + 1/2)``-Lipschitz and the
    function ``rho``-strongly convex: constant momentum
    ``(sqrt(k) - 1)/(sqrt(k) + 1)`` with ``k = (rho + 1/2)/rho`` converges
    linearly, no Newton step or matrix inverse needed.

    Args:
        max_iters: inner iteration cap (the predecessors use 500).
        tol: stop when every sample's gradient norm is below ``tol``.
        reduce_max: under data parallelism, the maximum over ranks (samples are
            split across ranks, and the stopping test is global: every sample's
            ``z`` depends on the iteration count, so all ranks must stop together).
            ``None``: one process.
    """

    name = "cross_entropy"

    def __init__(
        self, max_iters: int = 500, tol: float = 1e-4, reduce_max: Callable[[float], float] | None = None
    ) -> None:
        self.max_iters, self.tol = int(max_iters), float(tol)
        self.reduce_max = reduce_max
        self.last_iters = 0

    def _converged(self, z: torch.Tensor, onehot: torch.Tensor, v: torch.Tensor, rho: float) -> bool:
        norms = self._grad(z, onehot, v, rho).norm(dim=1)
        if self.reduce_max is None:
            return float(norms.max()) <= self.tol
        return self.reduce_max(float(norms.max()) if norms.numel() else 0.0) <= self.tol

    def sum(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(z, y, reduction="sum")

    def _grad(self, z: torch.Tensor, onehot: torch.Tensor, v: torch.Tensor, rho: float) -> torch.Tensor:
        return torch.softmax(z, dim=1) - onehot + rho * (z - v)

    def prox(self, v: torch.Tensor, y: torch.Tensor, rho: float, start: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(y, v.shape[1]).to(v.dtype)
        step = 1.0 / (rho + 0.5)
        kappa = (rho + 0.5) / rho
        beta = (math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0)
        z, z_prev = start.clone(), start.clone()
        it = 0
        while it < self.max_iters:
            w = z + beta * (z - z_prev)
            z_prev, z = z, w - step * self._grad(w, onehot, v, rho)
            it += 1
            # Convergence is checked every 10 iterations: one host sync per check.
            if it % 10 == 0 and self._converged(z, onehot, v, rho):
                break
        self.last_iters = it
        return z

    def target(self, y: torch.Tensor, num_outputs: int, dtype: torch.dtype) -> torch.Tensor:
        return 2.0 * F.one_hot(y, num_outputs).to(dtype) - 1.0


class Squared(OutputLoss):
    """Mean squared error over all entries (``F.mse_loss``): closed-form prox.

    ``R = (1/(N C)) sum_i ||z_i - y_i||^2``, so per sample ``R_i = ||z_i - y_i||^2 / C``
    and ``prox = (2 y / C + rho v) / (2 / C + rho)``.
    """

    name = "squared"

    def _shape(self, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return y.reshape(like.shape).to(like.dtype)

    def sum(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (z - self._shape(y, z)).pow(2).sum() / z.shape[1]

    def prox(self, v: torch.Tensor, y: torch.Tensor, rho: float, start: torch.Tensor) -> torch.Tensor:
        c = 2.0 / v.shape[1]
        return (c * self._shape(y, v) + rho * v) / (c + rho)

    def target(self, y: torch.Tensor, num_outputs: int, dtype: torch.dtype) -> torch.Tensor:
        return y.reshape(-1, num_outputs).to(dtype)
