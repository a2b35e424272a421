"""The process group: start it from torchrun's environment, ask who we are, reduce sums.

Everything here is a no-op in a single process (no process group, or a group of
one), so algorithm code calls these functions unconditionally and the same code
runs on a laptop and on 64 ranks.

Every collective goes through :func:`all_reduce_sum` (or :func:`broadcast`),
which turns the backend's error into :class:`RankFailure`: a rank that died, or
one that stopped calling collectives, makes the others fail after the group's
timeout with a message that says so, instead of hanging forever.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
import torch.distributed as dist

#: Seconds a collective waits for the other ranks before failing (``--dist-timeout``,
#: or the ``BEYONDSGD_DIST_TIMEOUT`` environment variable).
DEFAULT_TIMEOUT_S = 300.0

#: Environment variables torchrun sets for every worker.
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class RankFailure(RuntimeError):
    """A collective failed: another rank died, raised, or stopped communicating."""


def launched_by_torchrun() -> bool:
    """True when the torchrun (or torch.distributed.launch) variables are set."""
    return all(v in os.environ for v in TORCHRUN_VARS)


def _timeout_s(timeout_s: float | None) -> float:
    if timeout_s is None:
        timeout_s = float(os.environ.get("BEYONDSGD_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    if not timeout_s > 0:
        raise ValueError(f"invalid distributed timeout={timeout_s!r}: expected a number of seconds > 0")
    return float(timeout_s)


def init_from_env(backend: str | None = None, timeout_s: float | None = None) -> bool:
    """Join the process group described by torchrun's environment variables.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; ``None`` picks nccl when CUDA is
            available, else gloo.
        timeout_s: how long any collective waits for the other ranks before
            failing with :class:`RankFailure` (default :data:`DEFAULT_TIMEOUT_S`,
            or ``$BEYONDSGD_DIST_TIMEOUT``).

    Returns:
        True if a process group is active afterwards (False outside torchrun:
        the run stays single-process).

    Raises:
        ValueError: a bad timeout or backend.
        RankFailure: the rendezvous with the other ranks failed or timed out.
    """
    if dist.is_available() and dist.is_initialized():
        return True
    if not launched_by_torchrun():
        return False
    if not dist.is_available():  # pragma: no cover - torch built without distributed
        raise RankFailure("this torch build has no torch.distributed support")
    timeout = _timeout_s(timeout_s)
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"invalid backend={backend!r}: expected 'gloo' or 'nccl'")
    if backend == "nccl":
        # One GPU per rank: "cuda" then means this rank's GPU everywhere in the package.
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    except Exception as err:  # the store and backends raise several types
        raise RankFailure(
            f"could not join the process group (rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}, "
            f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}, timeout {timeout:g} s): {err}"
        ) from err
    return True


def shutdown() -> None:
    """Leave the process group (no-op if none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_initialized() -> bool:
    """A process group exists (possibly of one rank)."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def is_main() -> bool:
    """Rank 0: the one that writes files and shows progress."""
    return rank() == 0


def is_distributed() -> bool:
    """More than one rank: data-parallel code paths are on."""
    return world_size() > 1


def _fail(what: str, err: BaseException) -> RankFailure:
    return RankFailure(
        f"rank {rank()} of {world_size()}: {what} failed — another rank died, raised an error, or took a "
        f"different code path and stopped communicating (the collective timed out). Look at the other "
        f"ranks' output for the first error. Backend message: {err}"
    )


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, in place; every rank gets the same bytes.

    A no-op in a single process. Use it for every sum over samples that an
    algorithm takes a decision from (losses, acceptance tests, sub-problem
    gradients), so all ranks take the same decision.

    Returns:
        ``tensor`` (now holding the sum).

    Raises:
        RankFailure: another rank died or did not join the collective in time.
    """
    return _all_reduce(tensor, dist.ReduceOp.SUM)


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Elementwise maximum of ``tensor`` over all ranks, in place (no-op in one process).

    For global stopping tests and logged maxima (e.g. the largest per-sample
    residual), where a sum is not the statistic.

    Raises:
        RankFailure: another rank died or did not join the collective in time.
    """
    return _all_reduce(tensor, dist.ReduceOp.MAX)


def _all_reduce(tensor: torch.Tensor, op: Any) -> torch.Tensor:  # a dist.ReduceOp member
    if is_distributed():
        try:
            dist.all_reduce(tensor, op=op)
        except Exception as err:
            raise _fail("all_reduce", err) from err
    return tensor


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` with rank ``src``'s value on every rank (in place)."""
    if is_distributed():
        try:
            dist.broadcast(tensor, src=src)
        except Exception as err:
            raise _fail("broadcast", err) from err
    return tensor


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        try:
            dist.barrier()
        except Exception as err:
            raise _fail("barrier", err) from err


def same_on_all_ranks(tensor: torch.Tensor) -> bool:
    """True if ``tensor`` is bitwise identical on every rank (a collective: all ranks must call it).

    Compares rank 0's broadcast copy with the local value; for tests and for
    debugging a trainer whose replicas drift apart.
    """
    if not is_distributed():
        return True
    reference = broadcast(tensor.detach().clone())
    equal = torch.tensor([float(torch.equal(reference, tensor.detach()))], dtype=torch.float64, device=tensor.device)
    return bool(all_reduce_sum(equal).item() == world_size())
