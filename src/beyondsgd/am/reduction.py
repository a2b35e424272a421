"""The reduction points of data-parallel alternating minimization.

Under data parallelism each rank owns a contiguous block of the training
samples (:func:`beyondsgd.distributed.owned_range`) and keeps the per-sample
variables ``z_l, a_l`` of those samples only. Everything that is a *sum over
samples* and feeds a shared variable (``W_l``, ``b_l``) or a decision (a
backtracking acceptance test, the safeguard's comparison, the prox's stopping
test) goes through a :class:`Reducer`, so every rank sees the global value and
takes the same decision; a 2-rank run then computes the 1-rank iterates, up to
the order in which sums are added.

In one process a :class:`Reducer` returns its inputs unchanged (same objects,
no arithmetic), so the single-process trainer runs exactly as before.
"""

from __future__ import annotations

import torch

from beyondsgd import distributed as dist


class Reducer:
    """Sums and maxima over ranks, packed into one collective per call.

    Args:
        distributed: reduce over the process group (``False``: identity).
    """

    def __init__(self, distributed: bool) -> None:
        self.distributed = bool(distributed)

    def sums(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """Each tensor summed over ranks; one all-reduce for all of them (latency is per call).

        Returns:
            New tensors (the inputs themselves in one process), same shapes.
        """
        if not self.distributed:
            return list(tensors)
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce_sum(flat)
        return [piece.view_as(t) for piece, t in zip(flat.split([t.numel() for t in tensors]), tensors)]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over ranks (itself in one process)."""
        return self.sums(tensor)[0]

    def max(self, value: float) -> float:
        """The largest ``value`` over ranks (itself in one process)."""
        if not self.distributed:
            return value
        return float(dist.all_reduce_max(torch.tensor([value], dtype=torch.float64))[0])


def abs_max(t: torch.Tensor) -> torch.Tensor:
    """``max |t|`` of a non-empty tensor as a 0-d tensor on its device (no host sync).

    ``max(max t, -min t)`` from one ``aminmax`` pass (no ``|t|`` temporary): the same value.
    """
    lo, hi = torch.aminmax(t)
    return torch.maximum(hi, lo.neg_())


def max_abs(t: torch.Tensor) -> float:
    """``max |t|`` as a float (:func:`abs_max`, one sync), 0 for an empty tensor (a rank may own no sample)."""
    return float(abs_max(t)) if t.numel() else 0.0
