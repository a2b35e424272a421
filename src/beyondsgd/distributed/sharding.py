"""Which samples each rank works on.

The runner hands *every* rank the same global batch (one :class:`BatchSampler`
with the same seed on every rank), exactly the batch a single process would
use; the trainer picks its part with one of two rules:

* :func:`batch_shard` — split each global batch into ``world_size`` nearly equal
  contiguous pieces. Balanced work; needs the whole training set on every rank.
  Used by :class:`~beyondsgd.training.trainer.GradientTrainer`: a gradient
  optimizer keeps no per-sample state.
* :func:`owned_shard` — each sample belongs to one rank for the whole run
  (:func:`owned_range`: contiguous blocks of the training set), and a rank
  processes the samples of the batch it owns. Per-sample variables (the
  ``z``/``a`` of alternating minimization) then never move between ranks; the
  price is that shard sizes vary from batch to batch (for full-batch training,
  the default of those methods, they are exactly the blocks).

Either way the rank's results must be combined as *sums over the global
batch* divided by the global batch size (see :func:`local_weight`), not as an
average of per-rank means: shards differ in size whenever the batch size is not
a multiple of the world size, and only sums make 2 ranks equal 1 rank.
"""

from __future__ import annotations

import torch

from beyondsgd.distributed.context import rank, world_size


def _global(indices: torch.Tensor | None, n: int, device: torch.device | None) -> torch.Tensor:
    return torch.arange(n, device=device) if indices is None else indices


def batch_shard(indices: torch.Tensor | None, n: int, device: torch.device | None = None) -> tuple[torch.Tensor, int]:
    """This rank's contiguous piece of a global batch.

    Args:
        indices: the global batch (sample indices), ``None`` for the full set.
        n: training-set size (used when ``indices`` is ``None``).
        device: where to create the index tensor for a full batch.

    Returns:
        ``(local_indices, global_batch_size)``. Pieces differ in length by at
        most one; a rank's piece is empty when the batch has fewer samples
        than there are ranks.
    """
    idx = _global(indices, n, device)
    return idx.tensor_split(world_size())[rank()], int(idx.shape[0])


def owned_range(n: int) -> tuple[int, int]:
    """``(start, stop)`` of the block of samples this rank owns for the whole run.

    Blocks are contiguous and differ in size by at most one: the first
    ``n % world_size`` ranks own one sample more.
    """
    w, r = world_size(), rank()
    base, extra = divmod(n, w)
    start = r * base + min(r, extra)
    return start, start + base + (1 if r < extra else 0)


def owned_shard(indices: torch.Tensor | None, n: int, device: torch.device | None = None) -> tuple[torch.Tensor, int]:
    """The samples of a global batch that this rank owns (see :func:`owned_range`).

    Returns:
        ``(local_indices, global_batch_size)``; ``local_indices`` are global
        sample indices (subtract ``owned_range(n)[0]`` for positions in the
        rank's own per-sample arrays), in batch order.
    """
    idx = _global(indices, n, device)
    start, stop = owned_range(n)
    if indices is None:
        return idx[start:stop], n
    return idx[(idx >= start) & (idx < stop)], int(idx.shape[0])


def local_weight(local_size: int, global_size: int) -> float:
    """Factor that turns a rank's *mean* over its shard into its share of the global mean.

    ``sum over ranks of local_weight * local_mean`` is the mean over the global
    batch. Under DistributedDataParallel, which *averages* gradients over
    ranks, multiply the local loss by ``world_size() * local_weight`` instead.
    """
    return local_size / global_size if global_size else 0.0
