"""Run a function on several local processes joined in a gloo process group.

For tests, benchmarks and trying data-parallel code on one machine without
torchrun: ``run_local(fn, 2, args)`` starts 2 processes on the loopback
interface, calls ``fn(*args)`` in each inside a process group and returns the
per-rank results. On a cluster use torchrun (see ``docs/distributed.md``).

The processes are started with ``spawn``: in a script, call ``run_local`` under
``if __name__ == "__main__":`` and define ``fn`` at module level.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from beyondsgd.distributed.context import init_from_env, shutdown


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(
    rank: int,
    world: int,
    port: int,
    timeout_s: float,
    threads: int | None,
    fn: Callable[..., Any],
    args: Sequence[Any],
    results: mp.Queue,
) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    try:
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        init_from_env("gloo", timeout_s)
        try:
            # Plain pickle bytes, not the queue's own pickling: that one passes tensor storage by
            # file descriptor through a socket of this process, which is gone if it exits before
            # the parent has read the result (FileNotFoundError there, seen under load).
            results.put((rank, True, pickle.dumps(fn(*args))))
        finally:
            shutdown()
    except BaseException as err:  # report every failure to the parent, then exit non-zero
        results.put((rank, False, f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
        raise SystemExit(1) from err


def run_local(
    fn: Callable[..., Any],
    world_size: int,
    args: Sequence[Any] = (),
    timeout_s: float = 60.0,
    collective_timeout_s: float = 30.0,
    threads: int | None = 1,
) -> list[Any]:
    """Call ``fn(*args)`` on ``world_size`` local processes in one gloo group.

    Args:
        fn: a picklable (module-level) function; it may use
            :mod:`beyondsgd.distributed` and DistributedDataParallel.
        world_size: number of processes.
        args: picklable arguments, the same for every rank.
        timeout_s: wall-clock limit for the whole call.
        collective_timeout_s: the process group's timeout (a rank that stops
            communicating makes the others fail after this long).
        threads: torch threads per process (``None``: torch's default).

    Returns:
        ``fn``'s return value on each rank, by rank.

    Raises:
        RuntimeError: a rank raised (its message and traceback are included),
            exited without a result, or the call ran past ``timeout_s``.
    """
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    procs = [
        ctx.Process(
            target=_worker, args=(r, world_size, port, collective_timeout_s, threads, fn, args, results), daemon=True
        )
        for r in range(world_size)
    ]
    for p in procs:
        p.start()
    out: dict[int, Any] = {}
    errors: dict[int, str] = {}
    deadline = time.monotonic() + timeout_s
    timed_out = False
    try:
        # Wait until every rank has reported or exited: a rank whose peer died must fail
        # by itself (collective timeout), which is what callers test.
        while len(out) + len(errors) < world_size:
            try:
                r, ok, value = results.get(timeout=0.2)
            except queue.Empty:
                if all(p.exitcode is not None for p in procs) and results.empty():
                    break
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                continue
            if ok:
                out[r] = pickle.loads(value)
            else:
                errors[r] = value
    finally:
        for p in procs:
            p.join(timeout=5 if not (errors or timed_out) else 0.5)
            if p.is_alive():
                p.terminate()
                p.join()
    for r, p in enumerate(procs):
        if r not in out and r not in errors:
            errors[r] = (
                f"no result within {timeout_s:g} s (terminated)"
                if timed_out
                else f"exited with code {p.exitcode} without a result"
            )
    if errors:
        raise RuntimeError("run_local failed:\n" + "\n".join(f"rank {r}: {e}" for r, e in sorted(errors.items())))
    return [out[r] for r in range(world_size)]
