"""Optuna-backed tuning for sweeps (``search: {method: tpe, pruner: none|median|asha}``).

One Optuna study per (problem, algorithm), named ``SWEEP/PROBLEM/ALGORITHM``, in
a real database: by default the SQLite file ``OUT/optuna.db`` inside the sweep
folder; any Optuna storage URL (``postgresql://...``, ``mysql://...``,
``sqlite:///...``) or a journal file (``journal:PATH``) with ``--storage``.

The driver process *asks* the study for a trial, sends the run to a worker
(this process, a local worker process, or a Ray task, as for grid/random
search) and *tells* the study the outcome.  The worker opens the same storage
and reports the validation metric at every log point to the trial, so the
pruner (median or ASHA) can stop a hopeless trial early; a stopped trial is
stored as ``pruned`` with the history it had.

Crash safety and sharing:

* the run record is stored (atomically, in ``runs/``) *before* the trial is
  told, so a finished trial is never lost: a trial left ``RUNNING`` by a driver
  that was killed (same host, process gone) is, on the next start, told from its
  stored record if there is one, and otherwise marked failed with the user
  attribute ``stale`` and not counted against the budget;
* several drivers (``beyondsgd sweep --storage URL`` on one or many machines, or
  :func:`run_tpe_tuning` in several processes) share a study: each asks until the
  study holds ``trials`` counted trials; a trial that a race made surplus (its
  number comes after the budget was already filled) is marked failed with the
  user attribute ``surplus`` before it runs, so the budget is never exceeded and
  no trial runs twice;
* the final phase picks the best complete trial from the study (ties: the lower
  trial number), so drivers on other machines see the same choice.

With one worker, the TPE sampler is seeded and the sweep is repeatable; with
several, the order in which results come back (and so TPE's proposals) depends
on timing.

References:
    Akiba et al., "Optuna: A Next-generation Hyperparameter Optimization Framework", KDD 2019.
    Bergstra et al., "Algorithms for Hyper-Parameter Optimization" (TPE), NeurIPS 2011.
    Li et al., "A System for Massively Parallel Hyperparameter Tuning" (ASHA), MLSys 2020.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from beyondsgd.sweep.config import (
    ConfigError,
    Dim,
    Problem,
    RunTask,
    SweepConfig,
    _hash,
    _task,
    fixed_params,
    score,
    tunable,
)

#: Optuna's categorical choices must be these types; other values (tuples: betas) go by index.
_PRIMITIVE = (type(None), bool, int, float, str)


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError(
            'search method tpe needs Optuna (a dependency of beyondsgd): pip install "optuna>=3.6"'
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distributions(space: Mapping[str, Dim]) -> tuple[dict[str, Any], Callable[[Mapping[str, Any]], dict[str, Any]]]:
    """Map a sweep search space onto Optuna distributions.

    ``log_uniform`` -> ``FloatDistribution(low, high, log=True)``, ``uniform`` ->
    ``FloatDistribution(low, high)``, a grid/choice of two or more values ->
    ``CategoricalDistribution`` (non-primitive values such as tuples are chosen by
    index), a scalar or one-value grid stays fixed (not searched).

    Args:
        space: hyperparameter -> :class:`~beyondsgd.sweep.config.Dim`.

    Returns:
        ``(distributions, decode)``: the searched dimensions, and a function that
        turns a trial's ``params`` into the full hyperparameters (fixed ones included).
    """
    optuna = _optuna()
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    dists: dict[str, Any] = {}
    by_index: dict[str, tuple[Any, ...]] = {}
    for name, d in sorted(space.items()):
        if d.kind == "log_uniform":
            dists[name] = FloatDistribution(d.low, d.high, log=True)
        elif d.kind == "uniform":
            dists[name] = FloatDistribution(d.low, d.high)
        elif len(d.values) > 1:
            if all(isinstance(v, _PRIMITIVE) for v in d.values):
                dists[name] = CategoricalDistribution(list(d.values))
            else:
                by_index[name] = d.values
                dists[name] = CategoricalDistribution(list(range(len(d.values))))
    fixed = fixed_params(space)
    del optuna

    def decode(params: Mapping[str, Any]) -> dict[str, Any]:
        hp = dict(fixed)
        for k, v in params.items():
            hp[k] = by_index[k][v] if k in by_index else v
        return dict(sorted(hp.items()))

    return dists, decode


def make_pruner(name: str):
    """The Optuna pruner of ``search.pruner``.

    ``none``: ``NopPruner``; ``median``: ``MedianPruner(n_startup_trials=4,
    n_warmup_steps=1)`` (a trial stops when its value at a log point is below the
    median of the earlier trials' values there); ``asha``:
    ``SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)`` (asynchronous
    successive halving: at log points 1, 3, 9, ... only the top third continues).
    Resources are counted in log points (epochs with ``eval_every: 1``).

    Raises:
        ConfigError: unknown name.
    """
    optuna = _optuna()
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3, min_early_stopping_rate=0)
    raise ConfigError(f"search.pruner: expected none, median or asha, got {name!r}")


def default_storage(out: str | Path) -> str:
    """The SQLite study database inside a sweep folder."""
    return f"sqlite:///{(Path(out) / 'optuna.db').resolve()}"


_STORAGES: dict[str, Any] = {}


def open_storage(url: str):
    """Open (and cache per process) an Optuna storage; fail early with a clear message.

    Args:
        url: an RDB URL (``sqlite:///PATH``, ``postgresql://...``, ``mysql://...``)
            or ``journal:PATH`` for Optuna's journal file storage.

    Raises:
        ConfigError: the URL has an unknown form, or the database cannot be reached.
    """
    if url in _STORAGES:
        return _STORAGES[url]
    optuna = _optuna()
    if not isinstance(url, str) or not url:
        raise ConfigError(f"invalid --storage {url!r}: expected an Optuna storage URL or journal:PATH")
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend

            path = Path(url[len("journal:") :])
            path.parent.mkdir(parents=True, exist_ok=True)
            storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        elif "://" in url:
            kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        else:
            raise ConfigError(
                f"invalid --storage {url!r}: expected an RDB URL (sqlite:///PATH, postgresql://USER@HOST/DB, ...) "
                "or journal:PATH"
            )
    except ConfigError:
        raise
    except Exception as err:  # sqlalchemy/driver errors: unreachable host, bad credentials, missing driver
        raise ConfigError(f"--storage {url!r} cannot be opened: {type(err).__name__}: {err}") from None
    _STORAGES[url] = storage
    return storage


def study_name(cfg: SweepConfig, problem: str, algorithm: str) -> str:
    return f"{cfg.name}/{problem}/{algorithm}"


def _sampler_seed(cfg: SweepConfig, prob: Problem, alg: str) -> int:
    return (cfg.search_seed * 1_000_003 + int(_hash([prob.name, alg])[:8], 16)) % 2**32


# --------------------------------------------------------------------------- worker side


class TrialReporter:
    """``on_log`` callback of a tuning run: reports each log point to its Optuna trial, prunes.

    Args:
        info: the task's ``optuna`` entry (storage, study, trial_id, pruner, metric).

    Attributes:
        rows: the history rows seen so far (what a pruned run stores).
    """

    def __init__(self, info: Mapping[str, Any]) -> None:
        optuna = _optuna()
        study = optuna.load_study(
            study_name=info["study"], storage=open_storage(info["storage"]), pruner=make_pruner(info["pruner"])
        )
        self.trial = optuna.trial.Trial(study, int(info["trial_id"]))
        self.metric = info["metric"]
        self.sign = -1.0 if self.metric.endswith("_loss") else 1.0
        self.rows: list[dict[str, Any]] = []
        self.TrialPruned = optuna.TrialPruned

    def __call__(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))
        if len(self.rows) == 1:  # the point before training
            return
        v = float(row.get(self.metric, math.nan))
        if not math.isfinite(v):
            return
        self.trial.report(self.sign * v, step=len(self.rows) - 1)
        if self.trial.should_prune():
            raise self.TrialPruned(f"pruned at log point {len(self.rows) - 1}")


# --------------------------------------------------------------------------- driver side


def _owner() -> str:
    return f"{platform.node()}:{os.getpid()}"


def _alive(owner: str) -> bool:
    """Whether the driver ``host:pid`` may still run (unknown for other hosts: assume yes)."""
    host, _, pid = owner.rpartition(":")
    if host != platform.node() or not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return False  # this process starts fresh: whatever it held before is gone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _counted(trial) -> bool:
    return not (trial.user_attrs.get("stale") or trial.user_attrs.get("surplus"))


def _record_value(rec: Mapping[str, Any], metric: str, select: str) -> tuple[str, float | None]:
    """The Optuna outcome of a stored record: (state name, value)."""
    if rec["status"] == "pruned":
        return "PRUNED", None
    if rec["status"] == "failed":
        return "FAIL", None
    return "COMPLETE", score(rec, metric, select)


class _Study:
    """One (problem, algorithm) study and what the driver needs to run its trials."""

    def __init__(self, cfg: SweepConfig, prob: Problem, alg: str, storage_url: str) -> None:
        optuna = _optuna()
        self.cfg, self.prob, self.alg, self.storage_url = cfg, prob, alg, storage_url
        self.name = study_name(cfg, prob.name, alg)
        self.dists, self.decode = distributions(cfg.spaces[alg])
        self.study = optuna.create_study(
            study_name=self.name,
            storage=open_storage(storage_url),
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=_sampler_seed(cfg, prob, alg)),
            pruner=make_pruner(cfg.pruner),
            load_if_exists=True,
        )
        n = len(self.study.trials)
        if n:
            # Resumed (or joined): a sampler seeded as at the start would re-propose the first
            # trials' points (TPE's start-up trials are random draws); seed it by the history's length.
            seed = (_sampler_seed(cfg, prob, alg) + n) % 2**32
            self.study.sampler = optuna.samplers.TPESampler(seed=seed)
        fp = self.study.user_attrs.get("fingerprint")
        if fp is None:
            self.study.set_user_attr("fingerprint", cfg.fingerprint())
        elif fp != cfg.fingerprint():
            raise ConfigError(
                f"study {self.name!r} in {storage_url} belongs to a sweep with another config (fingerprint {fp} "
                f"!= {cfg.fingerprint()}); use another --storage or sweep name"
            )

    def trials(self, states=None):
        return self.study.get_trials(deepcopy=False, states=states)

    def counted(self) -> int:
        return sum(_counted(t) for t in self.trials())

    def recover(self, store) -> int:
        """Settle trials left RUNNING by a dead driver: from the stored record, else failed+stale."""
        optuna = _optuna()
        fixed = 0
        for t in self.trials(states=(optuna.trial.TrialState.RUNNING,)):
            if _alive(t.user_attrs.get("driver", "")):
                continue
            rec = store.get(t.user_attrs["key"]) if "key" in t.user_attrs else None
            if rec is not None:
                state, value = _record_value(rec, self.prob.selection_metric, self.cfg.select)
                self._tell(t.number, state, value)
            else:
                self.study._storage.set_trial_user_attr(t._trial_id, "stale", True)
                self.study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            fixed += 1
        return fixed

    def _tell(self, number: int, state: str, value: float | None) -> None:
        optuna = _optuna()
        st = getattr(optuna.trial.TrialState, state)
        if st == optuna.trial.TrialState.COMPLETE:
            self.study.tell(number, value)
        else:
            self.study.tell(number, state=st)

    def _new_trial(self):
        """``study.ask(self.dists)``, except that the trial is created with its driver already attached.

        A driver killed between ``ask`` and labelling the trial would leave a RUNNING trial that nobody
        can tell from a live one, holding a place in the budget for ever. Optuna's queue of enqueued
        trials is no way round this: on SQLite two drivers can pop the same waiting trial. So this
        does what ``Study.ask`` does, with a template trial that carries the label (tests pin this down).
        """
        optuna = _optuna()
        template = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, user_attrs={"driver": _owner()})
        self.study._thread_local.cached_all_trials = None  # as ask(): the sampler sees the storage afresh
        trial_id = self.study._storage.create_new_trial(self.study._study_id, template_trial=template)
        trial = optuna.Trial(self.study, trial_id)
        for name, dist in self.dists.items():
            trial._suggest(name, dist)
        return trial

    def ask(self) -> RunTask | None:
        """A new trial as a run task; ``None`` when the budget was already filled (a race lost) or
        the proposed point was already tried (the trial is told that trial's outcome)."""
        optuna = _optuna()
        trial = self._new_trial()
        # Count the trials up to this one: if the budget was filled before it, it is surplus.
        before = [t for t in self.trials() if t.number <= trial.number and _counted(t)]
        if len(before) > self.cfg.trials:
            trial.set_user_attr("surplus", True)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return None
        # A point already tried (TPE re-proposes points of small categorical spaces): copy its
        # outcome instead of training the same run again.
        for t in self.trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)):
            if t.params == trial.params and "duplicate_of" not in t.user_attrs:
                trial.set_user_attr("duplicate_of", t.number)
                trial.set_user_attr("hyperparams", t.user_attrs.get("hyperparams", "{}"))
                if t.state == optuna.trial.TrialState.COMPLETE:
                    self.study.tell(trial, t.value)
                else:
                    self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                return None
        hp = self.decode(trial.params)
        task = _task(self.cfg, self.prob, self.alg, trial.number, hp, 0, "tune")
        trial.set_user_attr("key", task.key)
        trial.set_user_attr("hyperparams", json.dumps(hp, default=str))
        return replace(
            task,
            optuna={
                "storage": self.storage_url,
                "study": self.name,
                "trial_id": trial._trial_id,
                "pruner": self.cfg.pruner,
                "metric": self.prob.selection_metric,
            },
        )

    def tell(self, task: RunTask, rec: Mapping[str, Any] | None) -> None:
        """Tell the outcome of a trial's run (``None``: lost to a dead worker -> failed)."""
        if rec is None:
            self._tell(task.trial, "FAIL", None)
            return
        state, value = _record_value(rec, self.prob.selection_metric, self.cfg.select)
        self._tell(task.trial, state, value)

    def choice(self) -> dict[str, Any]:
        """The best complete trial (ties: lower number), in :func:`~beyondsgd.sweep.config.best_trials`' format."""
        optuna = _optuna()
        done = sorted(self.trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.number)
        space = self.cfg.spaces[self.alg]
        if not done:
            return {
                "trial": 0,
                "hyperparams": fixed_params(space),
                "trials": [],
                "scores": [],
                "metric": self.prob.selection_metric,
            }
        scores = [t.value if t.value is not None else -math.inf for t in done]
        best = max(range(len(done)), key=lambda i: (scores[i], -i))
        return {
            "trial": done[best].number,
            "hyperparams": json.loads(done[best].user_attrs["hyperparams"]),
            "trials": [json.loads(t.user_attrs["hyperparams"]) for t in done],
            "scores": scores,
            "metric": self.prob.selection_metric,
        }


def open_studies(cfg: SweepConfig, storage_url: str) -> list[_Study]:
    """The studies of every (problem, algorithm) whose space has something to search."""
    return [
        _Study(cfg, prob, alg, storage_url) for prob in cfg.problems for alg in cfg.spaces if tunable(cfg.spaces[alg])
    ]


def tuning_complete(cfg: SweepConfig, storage_url: str) -> list[str]:
    """Names of studies that still miss trials (not finished or not yet asked); empty when tuning is complete."""
    optuna = _optuna()
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return [s.name for s in open_studies(cfg, storage_url) if sum(_counted(t) for t in s.trials(done)) < cfg.trials]


def run_tpe_tuning(
    cfg: SweepConfig,
    store,
    storage_url: str,
    dispatcher,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    checkpoint: Callable[[RunTask], RunTask] | None = None,
) -> list[str]:
    """Run the tuning phase of a ``method: tpe`` sweep until every study holds ``cfg.trials`` trials.

    Args:
        cfg: a config with ``method: tpe``.
        store: the sweep's :class:`~beyondsgd.sweep.store.RunStore` (records are stored before the trial is told).
        storage_url: the Optuna storage (see :func:`open_storage`).
        dispatcher: runs tasks (see :mod:`beyondsgd.sweep.executor`): ``submit(task)``, ``wait()``
            (finished ``(task, record or None)`` pairs), ``in_flight``, ``capacity``.
        on_done: called with each stored record.
        checkpoint: adds a checkpoint file to a task (``--checkpoint-every``).

    Returns:
        Keys of runs lost to crashed workers.
    """
    studies = open_studies(cfg, storage_url)
    for s in studies:
        s.recover(store)
    by_name = {s.name: s for s in studies}
    lost: list[str] = []
    in_flight: dict[str, int] = {s.name: 0 for s in studies}
    try:
        while True:
            # Fill free slots from the study with the fewest trials (ties: config order).
            while dispatcher.in_flight < dispatcher.capacity:
                open_ = [(s.counted(), i, s) for i, s in enumerate(studies) if s.counted() < cfg.trials]
                if not open_:
                    break
                _, _, s = min(open_, key=lambda x: (x[0], x[1]))
                task = s.ask()
                if task is None:
                    continue
                if checkpoint is not None:
                    task = checkpoint(task)
                in_flight[s.name] += 1
                dispatcher.submit(task)
            if dispatcher.in_flight == 0:
                break
            for task, rec in dispatcher.wait():
                s = by_name[task.optuna["study"]]
                in_flight[s.name] -= 1
                if rec is None:
                    lost.append(task.key)
                else:
                    store.put(rec)  # stored first: a kill between the two steps loses nothing (see recover)
                s.tell(task, rec)
                if rec is not None and on_done:
                    on_done(rec)
    except BaseException:
        dispatcher.abort()
        raise
    return lost


def tpe_choices(cfg: SweepConfig, storage_url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (problem, algorithm): the chosen trial (from the study; untunable spaces: their one setting)."""
    chosen = {}
    studies = {(s.prob.name, s.alg): s for s in open_studies(cfg, storage_url)}
    for prob in cfg.problems:
        for alg in cfg.spaces:
            if (prob.name, alg) in studies:
                chosen[(prob.name, alg)] = studies[(prob.name, alg)].choice()
            else:
                p = fixed_params(cfg.spaces[alg])
                chosen[(prob.name, alg)] = {
                    "trial": 0,
                    "hyperparams": p,
                    "trials": [p],
                    "scores": [],
                    "metric": prob.selection_metric,
                }
    return chosen


def trial_counts(cfg: SweepConfig, storage_url: str) -> dict[str, dict[str, int]]:
    """Per study: complete / pruned / failed / running trial counts (stale and surplus ones left out)."""
    out = {}
    for s in open_studies(cfg, storage_url):
        c = {"complete": 0, "pruned": 0, "fail": 0, "running": 0}
        for t in s.trials():
            if _counted(t) and t.state.name.lower() in c:
                c[t.state.name.lower()] += 1
        out[s.name] = c
    return out
