"""The relaxed objective F_eps of alternating minimization, its terms and the constraint gaps.

Samples are rows (the torch convention; the spec writes them as columns), so a
layer is ``z_l = a_{l-1} W_l^T + b_l``.  With ``N`` samples (the batch size in
mini-batch mode):

    F_eps = (1/N) [ sum_i R_i(z_L) + sum_l (rho/2) ||z_l - a_{l-1} W_l^T - b_l||^2 ]
            + sum_l (mu/2) ||W_l||^2
    s.t.  h(z_l) - eps <= a_l <= h(z_l) + eps      (l < L)

i.e. the mDLAM relaxation with the loss taken as a mean and the coupling
penalty divided by ``N`` too, so that ``rho`` and ``mu`` do not depend on the
number of samples (the project's scaling; mDLAM sums over samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def penalty_sum(
    a_in: torch.Tensor, W: torch.Tensor, b: torch.Tensor, z: torch.Tensor, rho: float, aw: torch.Tensor | None = None
) -> torch.Tensor:
    """``(rho/2) ||z - a_in W^T - b||^2`` summed over the batch (0-d).

    Args:
        aw: ``a_in @ W.T`` when already computed (saves the product).
    """
    if aw is None:
        aw = a_in @ W.T
    return 0.5 * rho * (aw + b - z).pow(2).sum()


@dataclass
class ObjectiveTerms:
    """The terms of ``F_eps`` (all per sample, i.e. divided by the batch size).

    Attributes:
        loss: ``R(z_L)``, the mean output loss on the auxiliary outputs.
        penalty: ``sum_l (rho/2N) ||z_l - W_l a_{l-1} - b_l||^2``.
        reg: ``sum_l (mu/2) ||W_l||^2``.
        activation_gap: ``max |a_l - h(z_l)|`` over hidden layers (<= eps when feasible).
        eps: the relaxation half-width in force.
    """

    loss: float
    penalty: float
    reg: float
    activation_gap: float
    eps: float

    @property
    def objective(self) -> float:
        return self.loss + self.penalty + self.reg

    def as_log(self, prefix: str = "am_") -> dict[str, float]:
        return {
            f"{prefix}objective": self.objective,
            f"{prefix}loss": self.loss,
            f"{prefix}penalty": self.penalty,
            f"{prefix}reg": self.reg,
            f"{prefix}activation_gap": self.activation_gap,
            f"{prefix}eps": self.eps,
        }
