"""How many torch CPU threads a comparison's runs use, and whether the machine is busy.

Many small runs in one process are slowed down, not sped up, by torch's default
of one intra-op thread per core: each tiny matrix product is split over threads
that then wait for each other, and on a machine where other processes already
use the cores the waiting dominates (the default ``beyondsgd compare`` took
about 30 minutes instead of under one on a busy 2-core machine).

The ``auto`` rule (:func:`choose_threads`):

* on a GPU, torch's CPU threads are left as they are;
* under torchrun with several ranks on this machine, each rank gets
  ``max(1, usable cores // local ranks)`` threads;
* otherwise a run is *small* when ``parameters x batch size`` (the
  multiply-adds of one forward pass, the largest over the compared algorithms;
  a full batch counts as the training set) is below :data:`SMALL_WORK`: small
  runs use **1 thread**; larger ones use the idle cores
  (usable cores minus the 1-minute load average, at least 1, at most
  :data:`MAX_THREADS`).
"""

from __future__ import annotations

import math
import os

import torch

#: Multiply-adds per forward pass below which a run is "small" and uses one thread.
SMALL_WORK = 5e7

#: Most threads ``auto`` ever picks (beyond this, small-model training rarely gets faster).
MAX_THREADS = 8


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return math.nan


def busy_message(cores: int | None = None, load: float | None = None) -> str | None:
    """A warning when the machine is already busy (1-minute load >= usable cores), else ``None``."""
    cores = usable_cores() if cores is None else cores
    load = load_average() if load is None else load
    if math.isfinite(load) and load >= cores:
        return (
            f"the machine is busy before this run starts (1-minute load average {load:.1f} on {cores} usable "
            "cores): wall times will be longer and noisier than on an idle machine"
        )
    return None


def choose_threads(
    requested: int | str,
    work: float,
    device: torch.device | str = "cpu",
    local_ranks: int = 1,
    cores: int | None = None,
    load: float | None = None,
) -> int | None:
    """The number of torch intra-op threads for the runs of one comparison.

    Args:
        requested: a positive integer (used as is) or ``"auto"`` (the rule in the module docstring).
        work: multiply-adds of one forward pass of the largest batch (parameters x batch size).
        device: where the runs train.
        local_ranks: processes of the same job on this machine (torchrun's ``LOCAL_WORLD_SIZE``).
        cores: usable cores (default: :func:`usable_cores`).
        load: 1-minute load average (default: :func:`load_average`).

    Returns:
        The thread count, or ``None`` to leave torch's setting alone (GPU runs).

    Raises:
        ValueError: ``requested`` is neither ``"auto"`` nor a positive integer.
    """
    if requested != "auto":
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"invalid threads={requested!r}: expected 'auto' or a positive integer")
        return requested
    if torch.device(device).type != "cpu":
        return None
    cores = usable_cores() if cores is None else cores
    if local_ranks > 1:
        return max(1, cores // local_ranks)
    if work < SMALL_WORK:
        return 1
    load = load_average() if load is None else load
    idle = cores - (round(load) if math.isfinite(load) else 0)
    return max(1, min(idle, cores, MAX_THREADS))


def parse_threads(text: str) -> int | str:
    """``--threads`` values: ``"auto"`` or a positive integer.

    Raises:
        ValueError: anything else.
    """
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"expected 'auto' or a positive integer, got {text!r}")
    return value
