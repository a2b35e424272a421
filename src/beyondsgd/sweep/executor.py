"""Running a sweep's tasks: in this process, in local worker processes, or on Ray.

Every backend calls the same :func:`execute_task` (which builds the
:class:`~beyondsgd.bench.runner.Experiment` and calls
:func:`~beyondsgd.bench.runner.run_experiment`, the one runner of the package)
and hands each finished record back to the driver, which stores it atomically
in the :class:`~beyondsgd.sweep.store.RunStore` right away.  So:

* a kill -9 of the driver loses only the runs in flight (they re-run on ``--resume``);
* a worker process that dies (segfault, OOM kill, kill -9) breaks the pool: the
  pool is rebuilt and the unfinished tasks are resubmitted, each at most
  ``retries`` times, after which the run is reported as lost (not stored, so a
  later ``--resume`` tries it again);
* an exception inside a run is stored as a ``failed`` record with the error
  (deterministic failures would fail again; ``--retry-failed`` re-runs them).
"""

from __future__ import annotations

import logging
import os
import platform
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from typing import Any

from beyondsgd.sweep.config import RunTask
from beyondsgd.sweep.store import RunStore

log = logging.getLogger(__name__)

_DATA_CACHE: dict[str, Any] = {}


def _dataset(task: RunTask):
    """The task's dataset (cached per worker), split for tuning runs.

    Tuning runs train on the first ``1 - validation_fraction`` of a fixed random
    permutation of the training set and report the rest as their ``test_*``
    columns; the test set itself is never seen during tuning.
    """
    import json

    from beyondsgd.data import load_dataset

    exp = task.experiment
    ck = json.dumps([exp["dataset"], exp["dataset_options"], task.validation_fraction], sort_keys=True, default=str)
    if ck not in _DATA_CACHE:
        # Seed 0 for every run: the data (and its subsample) is part of the problem, not of the seed.
        data = load_dataset(exp["dataset"], seed=0, **exp["dataset_options"])
        if task.validation_fraction > 0:
            data = validation_split(data, task.validation_fraction)
        if len(_DATA_CACHE) > 8:
            _DATA_CACHE.clear()
        _DATA_CACHE[ck] = data
    return _DATA_CACHE[ck]


def validation_split(data, fraction: float):
    """The tuning view of a dataset: train on a fixed random ``1 - fraction`` of its training set,
    report the held-out rest as the ``test_*`` columns (the test set is never seen).

    Args:
        data: a :class:`~beyondsgd.data.Dataset`.
        fraction: share of the training set held out for validation, in (0, 1).

    Returns:
        A new :class:`~beyondsgd.data.Dataset` (same permutation, seed 12345, for every caller).
    """
    import torch

    from beyondsgd.data import Dataset

    n = data.n_train
    n_val = max(1, int(round(fraction * n)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(12345))
    val, tr = perm[:n_val], perm[n_val:]
    return Dataset(
        data.name,
        data.X_train[tr],
        data.y_train[tr],
        data.X_train[val],
        data.y_train[val],
        data.input_shape,
        data.num_classes,
        data.task,
        f"{data.source} [tuning split: {n - n_val} train / {n_val} validation]",
    )


def execute_task(
    task: RunTask, threads: int | None = None, model_factory: Callable[..., Any] | None = None
) -> dict[str, Any]:
    """Run one task and return its store record (never raises for a failing run).

    Args:
        task: the run.
        threads: ``torch.set_num_threads`` for this run (``None``: leave as is).
        model_factory: the user's model (``run_sweep(model=...)``), passed to
            :func:`~beyondsgd.bench.runner.run_experiment`; ``None``: the registered ``task`` model.
    """
    import torch

    from beyondsgd.bench.runner import Experiment, run_experiment

    if threads is not None:
        torch.set_num_threads(threads)
    record: dict[str, Any] = {"key": task.key, "task": asdict(task), "host": platform.node(), "pid": os.getpid()}
    start = time.perf_counter()
    reporter = None
    try:
        if task.optuna is not None:
            from beyondsgd.sweep.optuna_search import TrialReporter

            reporter = TrialReporter(task.optuna)
        result = run_experiment(
            Experiment(**task.experiment),
            data=_dataset(task),
            progress=False,
            checkpoint=task.checkpoint,
            checkpoint_every=task.checkpoint_every,
            on_log=reporter,
            model_factory=model_factory,
        )
        record.update(status=result.status, result=result.to_dict(), error=None)
    except KeyboardInterrupt:
        raise
    except Exception as err:
        if reporter is not None and isinstance(err, reporter.TrialPruned):
            # Stopped early by the tuner's pruner: keep what it logged; the study records it as pruned.
            record.update(
                status="pruned",
                result={"history": reporter.rows, "hyperparams": task.experiment["hyperparams"], "status": "pruned"},
                error=None,
            )
            record["wall_s"] = time.perf_counter() - start
            return record
        record.update(
            status="failed",
            result={"history": [], "hyperparams": task.experiment["hyperparams"]},
            error=f"{type(err).__name__}: {err}",
            traceback=traceback.format_exc(limit=5),
        )
    record["wall_s"] = time.perf_counter() - start
    return record


def _init_worker(threads: int) -> None:
    import signal

    import torch

    # Ctrl-C reaches the whole process group: let the driver alone handle it (it stops the workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    os.environ.setdefault("MPLBACKEND", "Agg")


Callback = Callable[[dict[str, Any]], None]


class LocalPool:
    """A process pool kept across the phases of a sweep (starting workers costs seconds each).

    Use as a context manager; :func:`run_local` replaces a pool broken by a dead worker.
    """

    def __init__(self, workers: int, threads: int) -> None:
        self.workers, self.threads = workers, threads
        self.executor: ProcessPoolExecutor | None = None

    def get(self) -> ProcessPoolExecutor:
        if self.executor is None:
            import multiprocessing as mp

            # "spawn": a fresh interpreter per worker; forking a process that already
            # runs torch's thread pools can deadlock.
            self.executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads,),
            )
        return self.executor

    def discard(self, wait_: bool = False, kill: bool = False) -> None:
        """Shut the pool down; ``kill`` also terminates runs in flight (after Ctrl-C: they are not stored)."""
        if self.executor is not None:
            procs = list((getattr(self.executor, "_processes", None) or {}).values()) if kill else []
            self.executor.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()
            if wait_ or kill:
                self.executor.shutdown(wait=True)
            self.executor = None

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, exc_type, *rest) -> None:
        self.discard(wait_=exc_type is None, kill=exc_type is not None)


def run_local(
    tasks: Sequence[RunTask],
    store: RunStore,
    workers: int,
    threads: int,
    on_done: Callback | None = None,
    retries: int = 2,
    pool: LocalPool | None = None,
    model_factory: Callable[..., Any] | None = None,
) -> list[str]:
    """Run ``tasks`` in ``workers`` processes (``workers == 1``: in this process).

    Args:
        pool: a :class:`LocalPool` to reuse (default: one for this call only).
        model_factory: the user's model, pickled to the workers with each task (see :func:`execute_task`).

    Returns:
        Keys of runs lost to crashed workers after ``retries`` resubmissions.
    """
    if workers <= 1:
        for task in tasks:
            rec = execute_task(task, threads, model_factory)
            store.put(rec)
            if on_done:
                on_done(rec)
        return []
    own = pool is None
    pool = pool or LocalPool(workers, threads)
    pending = list(tasks)
    attempts = {t.key: 0 for t in tasks}
    lost: list[str] = []
    try:
        while pending:
            executor = pool.get()
            futures = {executor.submit(execute_task, t, threads, model_factory): t for t in pending}
            pending = []
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = futures[fut]
                    try:
                        rec = fut.result()
                    except BrokenProcessPool:
                        attempts[task.key] += 1
                        if attempts[task.key] > retries:
                            log.warning("run %s lost: its worker died %d times", task.key, attempts[task.key])
                            lost.append(task.key)
                        else:
                            pending.append(task)
                        continue
                    store.put(rec)
                    if on_done:
                        on_done(rec)
            if pending:  # a worker died: the pool is unusable, start a fresh one
                pool.discard()
    except BaseException:
        pool.discard(kill=True)
        raise
    if own:
        pool.discard(wait_=True)
    return lost


def run_ray(
    tasks: Sequence[RunTask],
    store: RunStore,
    threads: int,
    on_done: Callback | None = None,
    address: str | None = None,
    retries: int = 2,
    model_factory: Callable[..., Any] | None = None,
) -> list[str]:
    """Run ``tasks`` as Ray tasks (one CPU each); the driver stores each record as it arrives.

    ``model_factory`` (the user's model, see :func:`execute_task`) travels with each task.

    Connects to ``address`` (e.g. ``"auto"`` for a running cluster) or, when Ray
    is not initialized yet and no address is given, starts a local instance.

    Raises:
        ImportError: Ray is not installed (``pip install "beyondsgd[ray]"``).
    """
    try:
        import ray
    except ImportError:
        raise ImportError(
            'the ray backend needs Ray: pip install "beyondsgd[ray]" (from a checkout: pip install -e ".[ray]")'
        ) from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=retries)(execute_task)
    refs = {remote.remote(t, threads, model_factory): t for t in tasks}
    lost: list[str] = []
    remaining = list(refs)
    try:
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            for ref in done:
                try:
                    rec = ray.get(ref)
                except ray.exceptions.RayError as err:  # worker died more than max_retries times
                    log.warning("run %s lost: %s", refs[ref].key, err)
                    lost.append(refs[ref].key)
                    continue
                store.put(rec)
                if on_done:
                    on_done(rec)
    except BaseException:
        for ref in remaining:
            ray.cancel(ref, force=True)
        raise
    return lost


class Dispatcher:
    """Runs tasks one at a time as they are handed in (for a driver that decides the next task
    from the results so far, as Optuna's ask/tell loop does); this base class runs them in this process.

    Attributes:
        capacity: how many tasks may be in flight at once.
        in_flight: how many are (submitted and not yet returned by :meth:`wait`).
    """

    def __init__(self, threads: int | None = None, model_factory: Callable[..., Any] | None = None) -> None:
        self.threads = threads
        self.model_factory = model_factory
        self.capacity = 1
        self._done: list[tuple[RunTask, dict[str, Any] | None]] = []

    @property
    def in_flight(self) -> int:
        return len(self._done)

    def submit(self, task: RunTask) -> None:
        self._done.append((task, execute_task(task, self.threads, self.model_factory)))

    def wait(self) -> list[tuple[RunTask, dict[str, Any] | None]]:
        """Block until at least one task finished; its ``(task, record)`` (record ``None``: lost)."""
        done, self._done = self._done, []
        return done

    def abort(self) -> None:
        """Stop the tasks in flight (after Ctrl-C or an error); their results are not returned."""
        self._done = []


class PoolDispatcher(Dispatcher):
    """Tasks on a :class:`LocalPool`; a worker death rebuilds the pool and resubmits (``retries`` times)."""

    def __init__(
        self, pool: LocalPool, threads: int, retries: int = 2, model_factory: Callable[..., Any] | None = None
    ) -> None:
        super().__init__(threads, model_factory)
        self.pool, self.retries = pool, retries
        self.capacity = pool.workers
        self._futures: dict[Any, RunTask] = {}
        self._attempts: dict[str, int] = {}

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    def submit(self, task: RunTask) -> None:
        self._futures[self.pool.get().submit(execute_task, task, self.threads, self.model_factory)] = task

    def wait(self) -> list[tuple[RunTask, dict[str, Any] | None]]:
        done, _ = wait(set(self._futures), return_when=FIRST_COMPLETED)
        out, resubmit = [], []
        for fut in done:
            task = self._futures.pop(fut)
            try:
                out.append((task, fut.result()))
            except BrokenProcessPool:
                self._attempts[task.key] = self._attempts.get(task.key, 0) + 1
                if self._attempts[task.key] > self.retries:
                    log.warning("run %s lost: its worker died %d times", task.key, self._attempts[task.key])
                    out.append((task, None))
                else:
                    resubmit.append(task)
        if resubmit:  # the pool is unusable: every task still in it is lost too, start a fresh one
            resubmit += list(self._futures.values())
            self._futures = {}
            self.pool.discard()
            for task in resubmit:
                self.submit(task)
        return out

    def abort(self) -> None:
        self._futures = {}
        self.pool.discard(kill=True)


class RayDispatcher(Dispatcher):
    """Tasks as Ray tasks (one CPU each); ``capacity``: the cluster's CPUs."""

    def __init__(
        self,
        threads: int,
        address: str | None = None,
        retries: int = 2,
        model_factory: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(threads, model_factory)
        try:
            import ray
        except ImportError:
            raise ImportError('the ray backend needs Ray: pip install "beyondsgd[ray]"') from None
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.ray = ray
        self.remote = ray.remote(num_cpus=1, max_retries=retries)(execute_task)
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._refs: dict[Any, RunTask] = {}

    @property
    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, task: RunTask) -> None:
        self._refs[self.remote.remote(task, self.threads, self.model_factory)] = task

    def wait(self) -> list[tuple[RunTask, dict[str, Any] | None]]:
        done, _ = self.ray.wait(list(self._refs), num_returns=1)
        out = []
        for ref in done:
            task = self._refs.pop(ref)
            try:
                out.append((task, self.ray.get(ref)))
            except self.ray.exceptions.RayError as err:
                log.warning("run %s lost: %s", task.key, err)
                out.append((task, None))
        return out

    def abort(self) -> None:
        for ref in self._refs:
            self.ray.cancel(ref, force=True)
        self._refs = {}


def default_workers() -> int:
    """One worker per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
