"""``beyondsgd compare``: every algorithm on one problem, several seeds, one report that decides.

The output folder holds ``compare.json`` (what was asked and what finished),
``runs/<algorithm>-seed<k>.json`` (one per finished run), ``results.csv``,
``summary.csv``, the plots and ``report.md`` / ``report.html``.

Runs survive interruption: every finished run is written at once (atomically);
Ctrl-C or SIGTERM writes a report of the finished runs marked *partial*; running
the same command again reuses every finished run whose experiment (algorithm,
data, model, hyperparameters, budget, seed) is the same, and trains only the
missing ones. An output folder holding runs of another problem is refused unless
``overwrite=True`` (``--overwrite``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from beyondsgd import distributed as dist
from beyondsgd.algorithms import algorithm_info, available_algorithms, make_trainer
from beyondsgd.bench.html import write_html_report
from beyondsgd.bench.io import _jsonable, write_atomic, write_csv, write_json
from beyondsgd.bench.plots import plot_family_panels
from beyondsgd.bench.report import markdown_table, report_metric, summarize, summary_columns, verdict_lines
from beyondsgd.bench.runner import HISTORY_COLUMNS, Experiment, RunResult, build_model, loss_for, run_experiment
from beyondsgd.bench.threads import busy_message, choose_threads
from beyondsgd.data import Dataset, load_dataset
from beyondsgd.data.registry import raw_from_user
from beyondsgd.device import resolve_device
from beyondsgd.validation import POSITIVE_INT, UNIT

log = logging.getLogger(__name__)

#: Version of ``compare.json``.
MANIFEST_FORMAT = 1

#: The files and folders a comparison writes (and ``--overwrite`` removes; nothing else is touched).
OUTPUT_FILES = (
    "compare.json",
    "runs",
    "checkpoints",
    "results.csv",
    "summary.csv",
    "curves_epoch.png",
    "curves_time.png",
    "report.md",
    "report.html",
)


@dataclass
class CompareConfig:
    """What ``beyondsgd compare`` runs.

    Attributes:
        dataset: a dataset name (see ``beyondsgd list``) or the path of a ``.csv``,
            ``.npz`` or ``.pt`` file (its options ``target``, ``task``,
            ``test_fraction`` go in ``dataset_options``).
        model: a model name (see ``beyondsgd list``).
        algorithms: names to compare; ``None`` means every registered algorithm.
        seeds: number of seeds (0, 1, ..., seeds-1).
        epochs: budget per run (at least 1).
        batch_size: ``None`` uses each algorithm's preferred batch size (full batch
            for full-batch methods), else 64; an int or ``"full"`` forces it for all.
        hyperparams: per-algorithm overrides, ``{"sgd": {"lr": 0.1}}``.
        target_accuracy: the test accuracy whose time-to-reach is reported.
        dataset_options, model_options: passed to the loader and the model.
        out: output folder.
        device: ``auto``, ``cpu`` or ``cuda``.
        checkpoint_every: if set, each run checkpoints to ``out/checkpoints/`` every
            this many epochs, so an interrupted run resumes mid-way (finished runs
            are skipped on a rerun in any case).
        keep_checkpoints: keep the checkpoint of a run after it finished (by
            default it is deleted: the run's results are in ``runs/``).
        overwrite: delete the results of a different comparison found in ``out``
            instead of refusing to run.
        threads: torch CPU threads per run: ``"auto"`` (see
            :mod:`beyondsgd.bench.threads`) or a positive integer.
    """

    dataset: str = "digits"
    model: str = "mlp"
    algorithms: Sequence[str] | None = None
    seeds: int = 3
    epochs: int = 20
    batch_size: int | str | None = None
    hyperparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    target_accuracy: float = 0.9
    dataset_options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    out: str | Path = "compare-results"
    device: str = "auto"
    checkpoint_every: int | None = None
    keep_checkpoints: bool = False
    overwrite: bool = False
    threads: int | str = "auto"

    DEFAULT_BATCH_SIZE = 64


@dataclass
class CompareOutput:
    """What :func:`run_compare` did.

    Attributes:
        out: the output folder.
        results: the finished runs (reused and new).
        summary: one row per algorithm (see :func:`beyondsgd.bench.report.summarize`).
        failures: ``(algorithm, seed, message)`` of runs that raised.
        reused: how many finished runs were found in ``out`` and not trained again.
        threads: the torch thread count the runs used (``None``: left as it was).
    """

    out: Path
    results: list[RunResult]
    summary: list[dict[str, Any]]
    failures: list[tuple[str, int, str]]
    reused: int = 0
    threads: int | None = None


def _experiments(cfg: CompareConfig, dataset_name: str, model_name: str) -> list[Experiment]:
    """Validate the whole config and build the run list before anything trains."""
    POSITIVE_INT.check("seeds", cfg.seeds)
    POSITIVE_INT.check("epochs", cfg.epochs)
    UNIT.check("target_accuracy", cfg.target_accuracy)
    if cfg.checkpoint_every is not None:
        POSITIVE_INT.check("checkpoint_every", cfg.checkpoint_every)
    for flag in ("keep_checkpoints", "overwrite"):
        if not isinstance(getattr(cfg, flag), bool):
            raise ValueError(f"invalid {flag}={getattr(cfg, flag)!r}: expected True or False")
    choose_threads(cfg.threads, 0)  # validates "auto" / positive int
    names = list(cfg.algorithms) if cfg.algorithms is not None else available_algorithms()
    if not names:
        raise ValueError("invalid algorithms: the list is empty")
    infos = [algorithm_info(n) for n in names]  # unknown names fail here
    twice = sorted({i.name for i in infos if [j.name for j in infos].count(i.name) > 1})
    if twice:  # (the same runs would be counted twice: a CI from one seed, a fake n in the tests)
        raise ValueError(f"invalid algorithms: {', '.join(map(repr, twice))} listed more than once")
    unknown = set(cfg.hyperparams) - {i.name for i in infos}
    if unknown:
        raise ValueError(f"hyperparameters given for algorithms that are not compared: {', '.join(sorted(unknown))}")
    exps = []
    for info in infos:
        bs = cfg.batch_size if cfg.batch_size is not None else (info.batch_size or CompareConfig.DEFAULT_BATCH_SIZE)
        for seed in range(cfg.seeds):
            exp = Experiment(
                algorithm=info.name,
                dataset=dataset_name,
                model=model_name,
                hyperparams=dict(cfg.hyperparams.get(info.name, {})),
                epochs=cfg.epochs,
                batch_size=bs,
                seed=seed,
                dataset_options=dict(cfg.dataset_options),
                model_options=dict(cfg.model_options),
                device=cfg.device,
            )
            exp.validate()
            exps.append(exp)
    return exps


def check_out_dir(out: str | Path) -> Path:
    """Make sure ``out`` is a folder this process can write, before anything is computed.

    Raises:
        ValueError: ``out`` is a file, lies under a file, or cannot be created or written;
            the message names the folder and the reason.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"invalid --out {str(out)!r}: it exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(
            f"invalid --out {str(out)!r}: cannot write there ({reason}); choose a folder you can write to"
        ) from None
    return out


def _fingerprint(data: Dataset) -> str:
    """SHA-256 of the dataset's tensors: a run is only reused on the very same data."""
    h = hashlib.sha256()
    for t in (data.X_train, data.y_train, data.X_test, data.y_test):
        t = t.detach().cpu().contiguous()
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def _model_name(model: Callable[..., nn.Module]) -> str:
    return "custom:" + (getattr(model, "__qualname__", None) or type(model).__name__)


def _data_from(data: Any, cfg: CompareConfig) -> Dataset:
    """``run_compare(data=...)``: a Dataset as is; arrays through the standard preprocessing."""
    if isinstance(data, Dataset):
        data.validate()
        if data.task == "regression" and data.y_train.dim() == 1:
            # (n,) targets against (n, 1) predictions would broadcast to an (n, n) loss.
            data = dataclasses.replace(data, y_train=data.y_train[:, None], y_test=data.y_test[:, None])
        return data
    task = cfg.dataset_options.get("task") or "classification"
    name = cfg.dataset if cfg.dataset != CompareConfig.dataset else "data"
    raw = raw_from_user(data, name, task, seed=0)
    from beyondsgd.data.registry import DatasetSpec, _load

    opts = {k: v for k, v in cfg.dataset_options.items() if k not in ("task", "test_fraction", "target")}
    return _load(DatasetSpec(name, "arrays passed to run_compare", lambda _req: raw, {}, "python"), seed=0, **opts)


def _run_file(out: Path, exp: Experiment) -> Path:
    return out / "runs" / f"{exp.algorithm}-seed{exp.seed}.json"


def _identity(exp: Experiment) -> Any:
    return json.loads(json.dumps(_jsonable(asdict(exp))))


def _problem(cfg: CompareConfig, data: Dataset, dataset_name: str, model_name: str) -> dict[str, Any]:
    """What makes two comparisons the same problem (their runs may be mixed in one folder)."""
    return _jsonable(
        {
            "dataset": dataset_name,
            "dataset_options": cfg.dataset_options,
            "data_sha256": _fingerprint(data),
            "model": model_name,
            "model_options": cfg.model_options,
            "epochs": cfg.epochs,
        }
    )


def _clear_outputs(out: Path) -> None:
    for name in OUTPUT_FILES:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _check_folder(out: Path, problem: dict[str, Any], exps: Sequence[Experiment], overwrite: bool) -> None:
    """Refuse a folder holding another problem's runs (or runs of another config under the same names)."""
    manifest = out / "compare.json"
    hint = "choose another --out, or pass --overwrite (Python: overwrite=True) to delete those results"
    stale: list[str] = []
    if manifest.is_file():
        try:
            old = json.loads(manifest.read_text())
            if old.get("problem") != json.loads(json.dumps(problem)):
                stale.append(f"compare.json describes another problem ({_diff(old.get('problem'), problem)})")
        except (OSError, ValueError):
            stale.append("compare.json is unreadable")
    elif (out / "runs").is_dir() and any((out / "runs").glob("*.json")):
        stale.append("runs/ holds results but there is no compare.json")
    if not stale:
        for exp in exps:
            f = _run_file(out, exp)
            if f.is_file():
                try:
                    got = json.loads(f.read_text()).get("experiment")
                except (OSError, ValueError):
                    continue  # a damaged run file is simply run again
                if got != _identity(exp):
                    stale.append(f"{f.name} is a run of another configuration ({_diff(got, _identity(exp))})")
                    break
    if stale and not overwrite:
        raise ValueError(f"--out {str(out)!r} holds results of a different comparison: {stale[0]}; {hint}")
    if stale:
        log.warning("--overwrite: deleting the earlier results in %s", out)
        _clear_outputs(out)


def _diff(old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        return "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys[:3])
    return "different content"


def _reuse(out: Path, exp: Experiment) -> RunResult | None:
    f = _run_file(out, exp)
    if not f.is_file():
        return None
    try:
        d = json.loads(f.read_text())
        if d.get("experiment") != _identity(exp) or d.get("status") not in ("ok", "diverged"):
            return None
        res = RunResult.from_dict(d)
    except (OSError, ValueError):
        return None
    res.experiment = exp
    return res


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM) turned into an interrupt; ``signum`` says which signal.

    A subclass of ``KeyboardInterrupt``, so everything that stops cleanly on Ctrl-C stops the same
    way; the command line exits with ``128 + signum`` (143 for SIGTERM, as a shell reports it).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt), so a killed comparison writes its partial report."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not allowed here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def run_compare(
    cfg: CompareConfig,
    progress: bool | None = None,
    *,
    data: Dataset | tuple | dict | None = None,
    model: Callable[..., nn.Module] | None = None,
) -> CompareOutput:
    """Run the comparison and write the report, results and plots to ``cfg.out``.

    Every finished run is written at once (atomically). Ctrl-C or SIGTERM
    writes a report of the finished runs marked partial, then re-raises
    ``KeyboardInterrupt``; running the same comparison again reuses the
    finished runs. Under torchrun every rank runs every experiment data-parallel
    and only rank 0 writes files.

    Args:
        cfg: the comparison.
        progress: progress bars; ``None`` shows them when stderr is a terminal.
        data: your own data instead of ``cfg.dataset``: a :class:`Dataset` (used as
            is), ``(X, y)`` (split 80/20, stratified, seed 0), ``(X_train, y_train,
            X_test, y_test)`` or a mapping with those keys; arrays are standardized
            with train statistics like every dataset (``cfg.dataset_options`` may
            hold ``task="regression"`` and ``standardize``). ``cfg.dataset``, if
            changed from the default, names it in the report.
        model: your own model instead of ``cfg.model``: a callable
            ``model(input_shape, num_outputs, **cfg.model_options)`` returning an
            ``nn.Module`` (an ``nn.Module`` subclass with that constructor works).

    Returns:
        :class:`CompareOutput`.

    Raises:
        ValueError: any bad name or value in the config, a bad data file, an
            unwritable ``out`` or one holding another comparison's results,
            before training starts.
        KeyboardInterrupt: after the partial report is written.
    """
    if model is not None and not callable(model):
        raise ValueError(f"invalid model={model!r}: expected a callable (input_shape, num_outputs) -> nn.Module")
    model_name = _model_name(model) if model is not None else cfg.model
    writes = dist.is_main()  # data-parallel: every rank holds the same results, rank 0 writes them
    created = not Path(cfg.out).exists()
    out = check_out_dir(cfg.out) if writes else Path(cfg.out)
    try:
        return _run(cfg, progress, data, model, model_name, writes, out)
    finally:
        if created and writes:
            _remove_empty(out)  # bad input: leave no empty folder behind


def _run(
    cfg: CompareConfig,
    progress: bool | None,
    data: Any,
    model: Callable[..., nn.Module] | None,
    model_name: str,
    writes: bool,
    out: Path,
) -> CompareOutput:
    device = resolve_device(cfg.device)
    if data is not None:
        dataset = _data_from(data, cfg)
    else:
        dataset = load_dataset(cfg.dataset, seed=0, **cfg.dataset_options)
    dataset_name = dataset.name
    exps = _experiments(cfg, dataset_name, model_name)
    dataset = dataset.to(device)
    num_outputs = dataset.num_classes or (dataset.y_train.shape[1] if dataset.y_train.dim() > 1 else 1)
    probe = build_model(model_name, dataset.input_shape, num_outputs, None, cfg.model_options, model)
    # Probe each algorithm's hyperparameters once so a typo fails before hours of training.
    for exp in exps[:: cfg.seeds]:
        probe = build_model(model_name, dataset.input_shape, num_outputs, device, cfg.model_options, model)
        make_trainer(
            exp.algorithm, probe, dataset.X_train[:2], dataset.y_train[:2], loss_for(dataset.task), exp.hyperparams
        )
    batch = max(
        dataset.n_train if e.batch_size in ("full", None) else min(int(e.batch_size), dataset.n_train) for e in exps
    )
    import os

    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if dist.is_distributed() else 1
    threads = choose_threads(cfg.threads, _n_params(probe) * batch, device, local_ranks)
    busy = busy_message() if device.type == "cpu" else None
    if busy and writes:
        print(f"beyondsgd: warning: {busy}", file=sys.stderr)

    problem = _problem(cfg, dataset, dataset_name, model_name)
    if writes:
        _check_folder(out, problem, exps, cfg.overwrite)
        (out / "runs").mkdir(parents=True, exist_ok=True)
    meta = {
        "format": MANIFEST_FORMAT,
        "problem": problem,
        "config": _jsonable(
            {
                **{k: v for k, v in asdict(cfg).items() if k not in ("out", "overwrite")},
                "dataset": dataset_name,
                "model": model_name,
            }
        ),
        "data": {
            "name": dataset_name,
            "source": dataset.source,
            "n_train": dataset.n_train,
            "n_test": dataset.n_test,
            "input_shape": list(dataset.input_shape),
            "task": dataset.task,
            "class_names": list(dataset.class_names) if dataset.class_names else None,
        },
        "runs": [_run_file(out, e).name for e in exps],
        "families": {e.algorithm: algorithm_info(e.algorithm).family for e in exps},
        "environment": {
            "device": str(device),
            "torch": torch.__version__,
            "platform": platform.platform(),
            "threads": threads if threads is not None else torch.get_num_threads(),
            "threads_setting": cfg.threads,
            "ranks": dist.world_size() if dist.is_distributed() else 1,
            "busy": busy,
        },
        "complete": False,
        "failures": [],
        "elapsed_s": 0.0,
    }
    if writes:
        write_json(out / "compare.json", meta)

    results: list[RunResult] = []
    failures: list[tuple[str, int, str]] = []
    reused = 0
    started = time.perf_counter()
    interrupted = finished = False
    with _sigterm_as_interrupt(), _torch_threads(threads):
        try:
            for exp in exps:
                done = _reuse(out, exp) if writes or not dist.is_distributed() else None
                if dist.is_distributed():
                    done = None  # ranks must train together; only single-process runs are reused
                if done is not None:
                    results.append(done)
                    reused += 1
                    continue
                ckpt_path = out / "checkpoints" / f"{exp.algorithm}-seed{exp.seed}.pt"
                ckpt = ckpt_path if cfg.checkpoint_every else None
                try:
                    res = run_experiment(
                        exp,
                        data=dataset,
                        progress=progress,
                        checkpoint=ckpt,
                        checkpoint_every=cfg.checkpoint_every or 1,
                        model_factory=model,
                    )
                except (ValueError, KeyboardInterrupt, dist.RankFailure):
                    raise
                except Exception as err:  # an algorithm crashing must not lose the other runs
                    if dist.is_distributed():
                        raise  # the other ranks may be inside a collective: going on would deadlock them
                    log.warning("run %s seed %d failed: %s", exp.algorithm, exp.seed, err)
                    failures.append((exp.algorithm, exp.seed, f"{type(err).__name__}: {err}"))
                    continue
                results.append(res)
                if writes:
                    write_json(_run_file(out, exp), res.to_dict())
                    write_csv(out / "results.csv", [row for r in results for row in r.history], HISTORY_COLUMNS)
                    if not cfg.keep_checkpoints:
                        # (also the checkpoint an interrupted earlier call left, when this one has none)
                        ckpt_path.unlink(missing_ok=True)
            finished = True
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            # Interrupted, or stopped by an error: a partial report of what finished, marked so.
            meta["elapsed_s"] = time.perf_counter() - started
            meta["failures"] = [list(f) for f in failures]
            meta["complete"] = finished
            meta["stopped"] = None if finished else ("interrupted" if interrupted else "stopped by an error")
            if writes and (results or finished):
                write_json(out / "compare.json", meta)
                write_csv(out / "results.csv", [row for r in results for row in r.history], HISTORY_COLUMNS)
                _remove_empty(out / "checkpoints")
                summary = write_compare_report(out, meta, results)
            elif writes:
                write_json(out / "compare.json", meta)
    if not writes:
        summary = summarize(results, cfg.target_accuracy, meta["families"], report_metric(dataset.task))
    return CompareOutput(out, results, summary, failures, reused, threads)


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def load_results(out: str | Path) -> tuple[dict[str, Any], list[RunResult]]:
    """Read a comparison folder: its ``compare.json`` and the runs listed there that finished.

    Raises:
        ValueError: no readable ``compare.json``.
    """
    out = Path(out)
    try:
        meta = json.loads((out / "compare.json").read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{out} is not a comparison folder (compare.json: {err})") from None
    results = []
    for name in meta.get("runs", []):
        f = out / "runs" / name
        if f.is_file():
            try:
                results.append(RunResult.from_dict(json.loads(f.read_text())))
            except (OSError, ValueError) as err:
                log.warning("skipping unreadable run file %s: %s", f, err)
    return meta, results


def rewrite_report(out: str | Path) -> Path:
    """``beyondsgd report DIR`` for a comparison: the report again from ``runs/*.json``.

    Works on a partial folder (interrupted, or killed before it could write a
    report): the report then says how many of the planned runs finished.

    Returns:
        The path of ``report.md`` (``report.html`` is written next to it).
    """
    out = Path(out)
    meta, results = load_results(out)
    if results:
        write_csv(out / "results.csv", [row for r in results for row in r.history], HISTORY_COLUMNS)
    write_compare_report(out, meta, results)
    return out / "report.md"


def write_compare_report(out: Path, meta: dict[str, Any], results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """Write ``summary.csv``, the plots, ``report.md`` and ``report.html`` from the runs; return the summary."""
    cfg, data, env = meta["config"], meta["data"], meta["environment"]
    metric = report_metric(data["task"])
    families = meta.get("families", {})
    summary = summarize(results, cfg["target_accuracy"], families, metric)
    write_csv(out / "summary.csv", summary, summary_columns(metric))
    rows = [row for r in results for row in r.history]
    planned = len(meta.get("runs", []))
    partial = len(results) < planned - len(meta.get("failures", [])) or not meta.get("complete", False)
    title = f"{Path(str(data['name'])).name} / {cfg['model']}, {cfg['seeds']} seed(s)"
    curves = []
    if rows:
        metrics = ("train_loss", metric)
        plot_family_panels(rows, out / "curves_epoch.png", "epoch", families, metrics, title=title)
        plot_family_panels(rows, out / "curves_time.png", "time_s", families, metrics, title=title)
        curves = [
            "![loss and test metric vs epoch, one row per family, baselines repeated](curves_epoch.png)",
            "",
            "![loss and test metric vs training time (log axis), one row per family](curves_time.png)",
            "",
        ]
    lines = [f"# beyondsgd compare: {data['name']} / {cfg['model']}", ""]
    if partial:
        lines += [
            f"> **PARTIAL REPORT**: {len(results)} of {planned} planned runs finished "
            f"({(meta.get('stopped') or 'interrupted') if not meta.get('complete') else 'some runs failed'}). "
            "Run the same command again to train only the missing runs.",
            "",
        ]
    classes = data.get("class_names")
    lines += [
        f"- data: {data['source']}; {data['n_train']} training and {data['n_test']} test samples, "
        f"input shape {tuple(data['input_shape'])}, task {data['task']}",
    ]
    if classes:
        lines.append("- classes (id = label): " + ", ".join(f"{i} = {c}" for i, c in enumerate(classes)))
    target = (
        f"; target test accuracy {cfg['target_accuracy']:.0%}"
        if metric == "test_accuracy"
        else "; decided on test loss"
    )
    lines += [
        f"- model: `{cfg['model']}` {cfg.get('model_options') or ''}",
        f"- budget: {cfg['epochs']} epochs per run, seeds 0..{cfg['seeds'] - 1}{target}",
        f"- device: {env['device']}; torch {env['torch']}; {env['platform']}; {env['threads']} torch thread(s) "
        f"(--threads {env['threads_setting']})"
        + (f" per rank, data-parallel on {env['ranks']} ranks" if env.get("ranks", 1) > 1 else "")
        + f"; total wall time {meta.get('elapsed_s', 0.0):.1f} s",
    ]
    if env.get("busy"):
        lines.append(f"- warning: {env['busy']}")
    lines += [
        "- time columns are training time only (evaluation excluded); means are over the seeds "
        "that did not diverge; `—` means no value (never reached, or every seed diverged); "
        "bold: the best value of its column.",
        "",
        "## Verdict",
        "",
        *verdict_lines(results, families, metric),
        "",
        "## Results",
        "",
        markdown_table(summary, cfg["target_accuracy"], metric) if summary else "No run finished yet.\n",
        "## Curves",
        "",
        *curves,
        "Files: `results.csv` (one row per algorithm, seed and epoch), `summary.csv`, `runs/*.json` "
        "(full history and hyperparameters of each run), `compare.json` (the configuration and which runs finished).",
    ]
    failures = meta.get("failures", [])
    if failures:
        lines += ["", "## Runs that failed", ""] + [f"- {a} seed {s}: {msg}" for a, s, msg in failures]
    md = write_atomic(out / "report.md", "\n".join(lines) + "\n")
    write_html_report(md)  # the same report as one self-contained page
    return summary
