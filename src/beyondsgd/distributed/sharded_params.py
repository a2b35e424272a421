"""Refuse parameters that are sharded across ranks (FSDP, ZeRO-3, tensor parallel).

Under DistributedDataParallel every rank holds every full parameter tensor, so an
optimizer sees exactly what it sees in one process. Under FSDP (``fully_shard``:
parameters become ``DTensor`` shards; the older ``FullyShardedDataParallel``:
flattened ``FlatParameter`` shards) each rank holds a slice of each tensor.
Elementwise updates (SGD, Adam, ...) are still correct on a slice; anything
computed from a *whole* tensor is not: a per-tensor norm, a spectral map (SVD of
a weight matrix), a per-layer score or step size (DSGD), a per-tensor trust
ratio. Such an optimizer would silently compute a different algorithm on each
rank, so the registry refuses sharded parameters for every optimizer not
declared ``shardable``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def is_sharded(tensor: torch.Tensor) -> bool:
    """True for a DTensor or an FSDP FlatParameter (a slice of a larger tensor)."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without distributed
        DTensor = ()  # type: ignore[assignment,misc]
    return isinstance(tensor, DTensor) or bool(getattr(tensor, "_is_flat_param", False))


def check_full_tensors(owner: str, params: Iterable[torch.Tensor]) -> None:
    """Raise if any parameter is a shard of a tensor split across ranks.

    Args:
        owner: what is being built, for the message (``"optimizer 'dsgd'"``).
        params: the parameters (tensors only; param-group dicts are unpacked by the caller).

    Raises:
        ValueError: naming the first sharded parameter and what to do instead.
    """
    for i, p in enumerate(params):
        if is_sharded(p):
            raise ValueError(
                f"{owner} needs whole parameter tensors, but parameter {i} (shape {tuple(p.shape)}) is a shard "
                f"({type(p).__name__}) of a tensor split across ranks by FSDP/ZeRO-3/tensor parallelism: its "
                "per-tensor statistics (norms, spectral maps, layer scores) would differ on every rank. Use "
                "DistributedDataParallel (what `torchrun -m beyondsgd` does), which keeps full tensors on every "
                "rank, or an elementwise optimizer (sgd, adam, rmsprop, adagrad)."
            )
