"""The three inertias of TIAM: constants or the iPALM-style schedule.

For a block ``u`` with iterates ``u^k, u^{k-1}`` (spec "The three inertias"):

    u_tilde = u^k + p1 (u^k - u^{k-1})   centre of the proximal term
    u_hat   = u^k + p2 (u^k - u^{k-1})   point where the coupling gradient is taken
    u_bar   = u^k + p3 (u^k - u^{k-1})   what the other blocks see

With ``schedule="constant"`` the ``p_i`` are used as given; with
``schedule="ipalm"`` outer iteration ``k`` (from 1) uses ``p_i * (k - 1)/(k + 2)``
(iPALM's ``(k-1)/(k+2)`` scaled by ``p_i``, so ``p_i = 1`` is iPALM's schedule).
The paper's values are unknown; both the schedule and the scaling are the
project's choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Inertia:
    """Inertial coefficients ``p1, p2, p3`` and how they vary with the outer iteration.

    Args:
        p1: proximal-centre inertia.
        p2: gradient-point inertia.
        p3: extrapolation seen by the other blocks.
        schedule: ``"constant"`` or ``"ipalm"``.
    """

    p1: float = 0.0
    p2: float = 0.0
    p3: float = 0.0
    schedule: str = "constant"

    def at(self, k: int) -> tuple[float, float, float]:
        """Coefficients of outer iteration ``k`` (1-based)."""
        scale = 1.0 if self.schedule == "constant" else max(k - 1, 0) / (k + 2)
        return self.p1 * scale, self.p2 * scale, self.p3 * scale

    @property
    def none(self) -> bool:
        return self.p1 == 0 and self.p2 == 0 and self.p3 == 0


def extrapolate(cur: torch.Tensor, prev: torch.Tensor, p: float) -> torch.Tensor:
    """``cur + p (cur - prev)``; returns ``cur`` itself when nothing moves (callers test identity to reuse products)."""
    if p == 0 or prev is cur:  # (the input layer's "previous" iterate is the input itself)
        return cur
    return torch.lerp(prev, cur, 1.0 + p)  # prev + (1 + p)(cur - prev) = cur + p (cur - prev)
