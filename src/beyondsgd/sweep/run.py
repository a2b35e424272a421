"""``beyondsgd sweep``: plan, execute (resumably) and report a sweep."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from beyondsgd.data import Dataset
from beyondsgd.sweep.config import ConfigError, Problem, SweepConfig, best_trials, final_tasks, tuning_tasks
from beyondsgd.sweep.executor import LocalPool, default_workers, run_local, run_ray
from beyondsgd.sweep.store import RunStore
from beyondsgd.validation import POSITIVE_INT


@dataclass
class SweepOutput:
    out: Path
    ran: int
    skipped: int
    lost: list[str]
    report: Path | None


def _outcome(rec: dict[str, Any], metric: str) -> str:
    """A stored run's outcome for a progress line: status (or how it failed / when it was pruned),
    the last logged accuracy (on the split named ``metric``) and its wall time."""
    hist = rec["result"].get("history") or [{}]
    msg = rec["status"] if rec["status"] != "failed" else f"failed ({rec['error']})"
    if rec["status"] == "pruned":
        msg = f"pruned after {len(hist) - 1} log point(s)"
    val = hist[-1].get("test_accuracy")
    acc = f" {metric} acc {val:.4f}" if isinstance(val, float) and val == val else ""
    return f"{msg}{acc} ({rec['wall_s']:.1f} s)"


def _probe(cfg: SweepConfig, model: Callable[..., Any] | None = None) -> None:
    """Load every problem's data and build its model once, so a bad name fails before training."""
    from beyondsgd.bench.runner import build_model
    from beyondsgd.data import load_dataset

    for prob in cfg.problems:
        data = load_dataset(prob.dataset, seed=0, **prob.dataset_options)
        n_out = data.num_classes or (data.y_train.shape[1] if data.y_train.dim() > 1 else 1)
        try:
            build_model(prob.model, data.input_shape, n_out, None, prob.model_options, model)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"problem {prob.name!r}: {err}") from None


def _check_model(model: Any) -> str:
    """``run_sweep(model=...)``: a callable the worker processes can receive; returns its name in the results."""
    import pickle

    from beyondsgd.bench.compare import _model_name

    if not callable(model):
        raise ValueError(f"invalid model={model!r}: expected a callable (input_shape, num_outputs) -> nn.Module")
    try:
        pickle.dumps(model)
    except Exception as err:  # PicklingError, AttributeError (local objects), TypeError
        raise ValueError(
            f"invalid model={model!r}: the sweep's worker processes receive it by pickling, and it cannot be "
            f"pickled ({type(err).__name__}: {err}); define it at module level (a function or class in a module, "
            "or at the top of your script, guarded by if __name__ == '__main__'), or register it with "
            "beyondsgd.models.register_model / a 'beyondsgd.models' entry point and name it in the config"
        ) from None
    return _model_name(model)


def _data_file(out: Path, prob: Problem, data: Any) -> tuple[Problem, Dataset, Path, str]:
    """``run_sweep(data=...)`` for one problem: the data checked and converted as ``run_compare`` does.

    Returns:
        The problem reading the data from ``out/data/NAME-SHA.pt`` (through the file loader, as
        workers, Ray and a resume do), the converted :class:`Dataset`, that file and the data's
        SHA-256 (16 hex digits).  Nothing is written yet.
    """
    from beyondsgd.bench.compare import CompareConfig, _data_from, _fingerprint

    name = Path(prob.dataset).stem if prob.dataset else "data"
    dataset = _data_from(data, CompareConfig(dataset=name, dataset_options=dict(prob.dataset_options)))
    sha = _fingerprint(dataset)
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(str(dataset.name)).stem)[:40] or "data"
    path = out.resolve() / "data" / f"{slug}-{sha}.pt"
    # The converted data is final: the file loader must not standardize it again.
    options: dict[str, Any] = {"standardize": "none", "task": dataset.task}
    return replace(prob, dataset=str(path), dataset_options=options), dataset, path, sha


def _write_data(path: Path, dataset: Dataset, prob: Problem) -> None:
    """Write ``dataset`` to ``path`` (a ``.pt`` dict of tensors, atomically) unless it is there,
    and check that the file loader reads back exactly the same tensors."""
    import io

    import torch

    from beyondsgd.bench.io import write_atomic
    from beyondsgd.data import load_dataset

    tensors = {k: getattr(dataset, k).detach().cpu().contiguous() for k in ("X_train", "y_train", "X_test", "y_test")}
    if not path.is_file():
        buf = io.BytesIO()
        torch.save(tensors, buf)
        write_atomic(path, buf.getvalue())
    back = load_dataset(str(path), seed=0, **prob.dataset_options)
    same = all(torch.equal(getattr(back, k), v.to(getattr(back, k).dtype)) for k, v in tensors.items()) and (
        back.num_classes == dataset.num_classes
    )
    if not same:
        raise ConfigError(
            f"problem {prob.name!r}: the data passed as data= does not read back unchanged from {path} (for "
            "classification, every class id 0..num_classes-1 must occur in y_train or y_test)"
        )


def run_sweep(
    cfg: SweepConfig,
    out: str | Path,
    backend: str = "local",
    workers: int | None = None,
    threads: int | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    ray_address: str | None = None,
    verbose: bool = True,
    report: bool = True,
    checkpoint_every: int | None = None,
    storage: str | None = None,
    *,
    data: Dataset | tuple | dict | None = None,
    model: Callable[..., Any] | None = None,
) -> SweepOutput:
    """Run (or resume) a sweep into ``out`` and write its report.

    Args:
        cfg: the validated config.
        out: the sweep folder (the run store).
        backend: ``"local"`` (worker processes) or ``"ray"``.
        workers: local worker processes (default: one per core; 1 runs in this process).
        threads: torch threads per run (default: cores // workers, at least 1).
        resume: continue a sweep already in ``out``: finished runs are skipped.
        retry_failed: with ``resume``, also re-run runs stored as failed.
        ray_address: Ray cluster address (``None``: a local instance).
        verbose: one line per finished run on stderr.
        report: write the report at the end.
        checkpoint_every: each run also checkpoints to ``out/checkpoints/KEY.pt``
            every this many log points, so a killed sweep resumes runs mid-way
            (finished runs are skipped through the store either way).
        storage: ``method: tpe`` only: the Optuna storage of the studies (an RDB URL
            such as ``postgresql://...`` or ``journal:PATH``); default: the SQLite
            file ``out/optuna.db``.  Several sweeps given the same storage share its
            studies (see :mod:`beyondsgd.sweep.optuna_search`).
        data: your own data for every problem, instead of its ``dataset``: what
            :func:`~beyondsgd.bench.compare.run_compare` takes (a :class:`Dataset`
            used as is, ``(X, y)`` split 80/20 stratified with seed 0, ``(X_train,
            y_train, X_test, y_test)`` or a mapping with those keys; arrays are
            preprocessed with the problem's ``dataset_options``), checked and
            converted the same way.  It is written once to
            ``out/data/NAME-SHA.pt`` and every run (in any worker, on Ray, after
            ``--resume``) loads that file; its SHA-256 is part of the sweep's
            identity, so a resume with other data is refused.
        model: your own model for every problem, instead of its ``model``: a
            callable ``model(input_shape, num_outputs, **model_options)`` returning
            an ``nn.Module``.  Workers receive it by pickling, so it must be defined
            at module level (a lambda or a function defined inside another is refused).

    Raises:
        ConfigError: ``out`` holds another sweep, or a different config (or other
            data) on resume; a problem has no dataset and ``data`` is not given.
        ValueError: ``data`` or ``model`` cannot be used (the same checks as
            ``run_compare``), before anything is written.
    """
    if backend not in ("local", "ray"):
        raise ConfigError(f"invalid backend {backend!r}: expected local or ray")
    if checkpoint_every is not None:
        POSITIVE_INT.check("checkpoint_every", checkpoint_every)
    if storage is not None and cfg.method != "tpe":
        raise ConfigError(
            f"--storage is for search method tpe (the Optuna study database); this sweep uses {cfg.method}"
        )
    out = Path(out)
    for i, prob in enumerate(cfg.problems):
        if not prob.dataset and data is None:
            raise ConfigError(
                f"problems[{i}]: missing 'dataset' (a dataset name or a data file; from Python, run_sweep(data=...) gives your own)"
            )
    model_name = _check_model(model) if model is not None else None
    data_files: dict[Path, tuple[Dataset, Problem]] = {}
    if data is not None or model_name is not None:
        problems = []
        for prob in cfg.problems:
            if data is not None:
                prob, dataset, file, _sha = _data_file(out, prob, data)
                data_files.setdefault(file, (dataset, prob))
            problems.append(replace(prob, model=model_name) if model_name else prob)
        cfg = replace(cfg, problems=problems, raw={**cfg.raw, "problems": [asdict(p) for p in problems]})
    storage_url = None
    if cfg.method == "tpe":
        from beyondsgd.sweep.optuna_search import default_storage, open_storage

        storage_url = storage or default_storage(out)
        if storage is not None:
            open_storage(storage_url)  # an unreachable database fails here, before anything is written
    had_meta = (out / "sweep.json").is_file()
    if had_meta and not resume:
        raise ConfigError(f"{out} already holds a sweep; pass --resume to continue it, or choose another --out")
    store = RunStore(out)
    meta = store.read_meta()
    if meta is not None and meta.get("fingerprint") != cfg.fingerprint():
        _explain_mismatch(out, meta.get("config") or {}, cfg)
        raise ConfigError(
            f"{out} holds a sweep with a different config (fingerprint {meta.get('fingerprint')} "
            f"!= {cfg.fingerprint()}); resume it with the config it started with, or use another --out"
        )
    for data_path, (dataset, prob) in data_files.items():
        _write_data(data_path, dataset, prob)
    _probe(cfg, model)
    store.write_meta(
        {
            "fingerprint": cfg.fingerprint(),
            "config": cfg.raw,
            "created": meta["created"] if meta else time.strftime("%Y-%m-%d %H:%M:%S"),
            **({"storage": storage_url} if storage_url else {}),
            **{k: meta[k] for k in ("chosen", "sessions") if meta and k in meta},
        }
    )
    cores = default_workers()
    workers = workers or cores
    threads = threads or max(1, cores // workers)

    ran = skipped = 0
    lost: list[str] = []
    started = time.perf_counter()

    def with_checkpoint(t):
        if checkpoint_every is None:
            return t
        return replace(t, checkpoint=str(out / "checkpoints" / f"{t.key}.pt"), checkpoint_every=checkpoint_every)

    def todo(tasks):
        nonlocal skipped
        keep = []
        for t in tasks:
            rec = store.get(t.key) if t.key in store else None
            if rec is not None and not (retry_failed and rec.get("status") == "failed"):
                skipped += 1
            else:
                keep.append(with_checkpoint(t))
        return keep

    def execute(tasks, phase):
        total = len(tasks)
        count = 0

        def on_done(rec: dict[str, Any]) -> None:
            nonlocal count, ran
            count += 1
            ran += 1
            if verbose:
                t = rec["task"]
                print(
                    f"[{phase} {count}/{total}] {t['problem']} {t['algorithm']} trial {t['trial']} "
                    f"seed {t['experiment']['seed']}: {_outcome(rec, 'val' if phase == 'tune' else 'test')}",
                    file=sys.stderr,
                )

        if not tasks:
            return
        if backend == "ray":
            lost.extend(run_ray(tasks, store, threads, on_done, address=ray_address, model_factory=model))
        else:
            lost.extend(run_local(tasks, store, workers, threads, on_done, pool=pool, model_factory=model))

    with LocalPool(workers, threads) as pool:  # started on first use, shared by both phases
        chosen = None
        if storage_url is not None:
            missing, n_ran, n_lost = _tune_tpe(
                cfg, store, storage_url, backend, workers, threads, pool, ray_address, verbose, with_checkpoint, model
            )
            ran += n_ran
            lost.extend(n_lost)
            if not missing:
                from beyondsgd.sweep.optuna_search import tpe_choices

                chosen = tpe_choices(cfg, storage_url)
        else:
            tune = tuning_tasks(cfg)
            execute(todo(tune), "tune")
        records = {r["key"]: r for r in store.records()}
        if storage_url is None:
            missing = [t.key for t in tune if t.key not in records]
        if not missing:
            # Record the choice: the report counts only final runs of the chosen trial, so a
            # choice can never be mixed with runs of another one.
            chosen = chosen or best_trials(cfg, records)
            meta = store.read_meta() or {}
            meta["chosen"] = {f"{p}|{a}": c["trial"] for (p, a), c in chosen.items()}
            store.write_meta(meta)
            execute(todo(final_tasks(cfg, records, chosen)), "final")
        elif verbose:
            # Choosing now would pick from an incomplete set of trials; the final phase waits.
            print(
                f"{len(missing)} tuning run(s) missing (lost); the final runs start after --resume "
                "completes the tuning",
                file=sys.stderr,
            )
    elapsed = time.perf_counter() - started
    meta = store.read_meta() or {}
    sessions = meta.get("sessions", [])
    sessions.append(
        {
            "backend": backend,
            "workers": workers if backend == "local" else None,
            "threads": threads,
            "ran": ran,
            "skipped": skipped,
            "lost": lost,
            "wall_s": elapsed,
        }
    )
    meta["sessions"] = sessions
    store.write_meta(meta)
    path = None
    if report:
        from beyondsgd.sweep.report import write_report

        path = write_report(out)
    return SweepOutput(out, ran, skipped, lost, path)


def _tune_tpe(
    cfg, store, storage_url, backend, workers, threads, pool, ray_address, verbose, checkpoint, model=None
) -> tuple[list[str], int, list[str]]:
    """The tuning phase of a ``method: tpe`` sweep.

    Returns:
        The names of studies with unfinished trials, the number of runs made, the keys of lost runs.
    """
    from beyondsgd.sweep.executor import Dispatcher, PoolDispatcher, RayDispatcher
    from beyondsgd.sweep.optuna_search import run_tpe_tuning, tuning_complete

    if backend == "ray":
        dispatcher: Dispatcher = RayDispatcher(threads, ray_address, model_factory=model)
    elif workers > 1:
        dispatcher = PoolDispatcher(pool, threads, model_factory=model)
    else:
        dispatcher = Dispatcher(threads, model_factory=model)
    total = len(cfg.problems) * sum(1 for a in cfg.spaces if _tunable(cfg, a)) * cfg.trials
    count = {"ran": 0, "pruned": 0}

    def on_done(rec: dict[str, Any]) -> None:
        count["ran"] += 1
        count["pruned"] += rec["status"] == "pruned"
        if verbose:
            t = rec["task"]
            print(
                f"[tune {count['ran']} this session, {total} in the studies; {count['pruned']} pruned] {t['problem']} "
                f"{t['algorithm']} trial {t['trial']}: {_outcome(rec, 'val')}",
                file=sys.stderr,
            )

    lost = run_tpe_tuning(cfg, store, storage_url, dispatcher, on_done, checkpoint)
    missing = tuning_complete(cfg, storage_url)
    if missing and verbose:
        print(
            f"{len(missing)} study(ies) still have unfinished trials (another process, or lost runs); "
            "the final runs start after --resume completes the tuning",
            file=sys.stderr,
        )
    return missing, count["ran"], lost


def _explain_mismatch(out: Path, old: dict[str, Any], cfg: SweepConfig) -> None:
    """A resume whose data or model differs from the stored sweep's: say so (else the generic message)."""
    old_problems = {p.get("name"): p for p in old.get("problems") or [] if isinstance(p, dict)}
    for prob in cfg.problems:
        was = old_problems.get(prob.name)
        if was is None:
            continue
        data_dir = str(out.resolve() / "data")
        old_file, new_file = str(was.get("dataset")), prob.dataset
        if old_file != new_file and Path(old_file).name == Path(new_file).name:
            raise ConfigError(
                f"{out} holds a sweep started in another folder (its data file was {old_file}): the path of the "
                "data file is part of a sweep's identity; resume it where it was created, or use another --out"
            )
        if old_file != new_file and data_dir in (str(Path(old_file).parent), str(Path(new_file).parent)):
            raise ConfigError(
                f"{out} holds a sweep of problem {prob.name!r} on other data ({Path(old_file).name} there, "
                f"{Path(new_file).name if new_file.startswith(data_dir) else repr(new_file)} now: the names end in "
                "the data's SHA-256); resume it with the data it started with (run_sweep(data=...)), "
                "or use another --out"
            )
        if was.get("model") != prob.model:
            raise ConfigError(
                f"{out} holds a sweep of problem {prob.name!r} with model {was.get('model')!r}, not {prob.model!r}; "
                "resume it with the model it started with (run_sweep(model=...) for your own), or use another --out"
            )


def _tunable(cfg: SweepConfig, alg: str) -> bool:
    from beyondsgd.sweep.config import tunable

    return tunable(cfg.spaces[alg])
