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


class Workspace:
    """Reusable scratch tensors for temporaries that are reduced right away, one per name.

    On CPU a fresh ``N x width`` tensor costs more than the elementwise op that fills it
    (the allocator returns large blocks to the OS, so every new one page-faults); an outer
    iteration makes dozens of such temporaries. A buffer is grown when needed and handed out
    as a view, so mini-batches of varying size share it. The caller must be done with a
    name's buffer before asking for the same name again.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}
        # (name, shape) -> (buffer, view): the view handed out last time, while its buffer is current.
        # Making a view costs two tensor ops; an outer iteration asks for dozens of them.
        self._views: dict[tuple[str, tuple[int, ...]], tuple[torch.Tensor, torch.Tensor]] = {}

    def get(self, name: str, shape: torch.Size | tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A tensor of ``shape`` with ``like``'s dtype and device; contents undefined."""
        key = (name, tuple(shape))
        hit = self._views.get(key)
        buf = self._buffers.get(name)
        if hit is not None and hit[0] is buf and buf.dtype == like.dtype and buf.device == like.device:
            view = hit[1]
            if view.shape == key[1]:  # (an op given the view as ``out=`` may have resized it)
                return view
        numel = 1
        for n in shape:
            numel *= int(n)
        if buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._buffers[name] = torch.empty(max(numel, 1), dtype=like.dtype, device=like.device)
            # The name's old views would keep the old buffer alive.
            self._views = {k: v for k, v in self._views.items() if k[0] != name}
        view = buf[:numel].view(shape)
        self._views[key] = (buf, view)
        return view


def penalty_sum(
    a_in: torch.Tensor,
    W: torch.Tensor,
    b: torch.Tensor,
    z: torch.Tensor,
    rho: float,
    aw: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(rho/2) ||z - a_in W^T - b||^2`` summed over the batch (0-d).

    Args:
        aw: ``a_in @ W.T`` when already computed (saves the product).
        out: scratch tensor of ``z``'s shape for the residual (e.g. from a :class:`Workspace`);
            ``None``: a new one. Either way the arithmetic is the same.
    """
    if aw is None:
        aw = a_in @ W.T
    r = torch.add(aw, b, out=out) if out is not None else aw + b  # in place from here, same arithmetic
    return 0.5 * rho * r.sub_(z).square_().sum()


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
