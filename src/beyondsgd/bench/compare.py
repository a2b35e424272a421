"""``beyondsgd compare``: every algorithm on one problem, several seeds, one report."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from beyondsgd import distributed as dist
from beyondsgd.algorithms import algorithm_info, available_algorithms, make_trainer
from beyondsgd.bench.html import write_html_report
from beyondsgd.bench.io import write_atomic, write_csv, write_json
from beyondsgd.bench.plots import plot_metric_grid
from beyondsgd.bench.report import SUMMARY_COLUMNS, markdown_table, summarize
from beyondsgd.bench.runner import HISTORY_COLUMNS, Experiment, RunResult, loss_for, run_experiment
from beyondsgd.data import load_dataset
from beyondsgd.device import resolve_device
from beyondsgd.models import create_model
from beyondsgd.validation import NONNEGATIVE_INT, POSITIVE_INT, UNIT

log = logging.getLogger(__name__)


@dataclass
class CompareConfig:
    """What ``beyondsgd compare`` runs.

    Attributes:
        dataset, model: names (see ``beyondsgd list``).
        algorithms: names to compare; ``None`` means every registered algorithm.
        seeds: number of seeds (0, 1, ..., seeds-1).
        epochs: budget per run.
        batch_size: ``None`` uses each algorithm's preferred batch size (full batch
            for full-batch methods), else 64; an int or ``"full"`` forces it for all.
        hyperparams: per-algorithm overrides, ``{"sgd": {"lr": 0.1}}``.
        target_accuracy: the test accuracy whose time-to-reach is reported.
        dataset_options, model_options: passed to the loader and the model.
        out: output folder.
        device: ``auto``, ``cpu`` or ``cuda``.
        checkpoint_every: if set, each run checkpoints to ``out/checkpoints/`` every
            this many epochs; running the same comparison again resumes the
            interrupted run and skips the finished ones.
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

    DEFAULT_BATCH_SIZE = 64


@dataclass
class CompareOutput:
    out: Path
    results: list[RunResult]
    summary: list[dict[str, Any]]
    failures: list[tuple[str, int, str]]


def _experiments(cfg: CompareConfig) -> list[Experiment]:
    """Validate the whole config and build the run list before anything trains."""
    POSITIVE_INT.check("seeds", cfg.seeds)
    NONNEGATIVE_INT.check("epochs", cfg.epochs)
    UNIT.check("target_accuracy", cfg.target_accuracy)
    if cfg.checkpoint_every is not None:
        POSITIVE_INT.check("checkpoint_every", cfg.checkpoint_every)
    names = list(cfg.algorithms) if cfg.algorithms else available_algorithms()
    if not names:
        raise ValueError("invalid algorithms: the list is empty")
    infos = [algorithm_info(n) for n in names]  # unknown names fail here
    unknown = set(cfg.hyperparams) - {i.name for i in infos}
    if unknown:
        raise ValueError(f"hyperparameters given for algorithms that are not compared: {', '.join(sorted(unknown))}")
    exps = []
    for info in infos:
        bs = cfg.batch_size if cfg.batch_size is not None else (info.batch_size or CompareConfig.DEFAULT_BATCH_SIZE)
        for seed in range(cfg.seeds):
            exp = Experiment(
                algorithm=info.name,
                dataset=cfg.dataset,
                model=cfg.model,
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


def run_compare(cfg: CompareConfig, progress: bool | None = None) -> CompareOutput:
    """Run the comparison and write ``results.csv``, ``runs/*.json``, plots and ``report.md``.

    Results are written after every run (atomically), so an interrupted
    comparison keeps everything that finished. Under torchrun every rank runs
    every experiment data-parallel and only rank 0 writes files.

    Raises:
        ValueError: any bad name or value in the config, before training starts.
    """
    exps = _experiments(cfg)
    device = resolve_device(cfg.device)
    data = load_dataset(cfg.dataset, seed=0, **cfg.dataset_options).to(device)
    num_outputs = data.num_classes or (data.y_train.shape[1] if data.y_train.dim() > 1 else 1)
    create_model(cfg.model, data.input_shape, num_outputs, **cfg.model_options)  # bad model options fail now
    # Probe each algorithm's hyperparameters once so a typo fails before hours of training.
    for exp in exps[:: cfg.seeds]:
        probe = create_model(cfg.model, data.input_shape, num_outputs, device=device, **cfg.model_options)
        make_trainer(exp.algorithm, probe, data.X_train[:2], data.y_train[:2], loss_for(data.task), exp.hyperparams)

    out = Path(cfg.out)
    writes = dist.is_main()  # data-parallel: every rank holds the same results, rank 0 writes them
    if writes:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    failures: list[tuple[str, int, str]] = []
    started = time.perf_counter()
    for exp in exps:
        try:
            ckpt = out / "checkpoints" / f"{exp.algorithm}-seed{exp.seed}.pt" if cfg.checkpoint_every else None
            res = run_experiment(
                exp, data=data, progress=progress, checkpoint=ckpt, checkpoint_every=cfg.checkpoint_every or 1
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
            write_json(out / "runs" / f"{exp.algorithm}-seed{exp.seed}.json", res.to_dict())
            write_csv(out / "results.csv", [row for r in results for row in r.history], HISTORY_COLUMNS)
    elapsed = time.perf_counter() - started

    families = {r.experiment.algorithm: algorithm_info(r.experiment.algorithm).family for r in results}
    summary = summarize(results, cfg.target_accuracy, families)
    if not writes:
        return CompareOutput(out, results, summary, failures)
    write_csv(out / "summary.csv", summary, SUMMARY_COLUMNS)
    rows = [row for r in results for row in r.history]
    if rows:
        title = f"{cfg.dataset} / {cfg.model}, {cfg.seeds} seed(s)"
        plot_metric_grid(rows, out / "curves_epoch.png", "epoch", title=title)
        plot_metric_grid(rows, out / "curves_time.png", "time_s", title=title)
    _write_report(out, cfg, data, summary, failures, elapsed, device)
    return CompareOutput(out, results, summary, failures)


def _write_report(out: Path, cfg: CompareConfig, data, summary, failures, elapsed: float, device) -> None:
    lines = [
        f"# beyondsgd compare: {cfg.dataset} / {cfg.model}",
        "",
        f"- data: {data.source}; {data.n_train} training and {data.n_test} test samples, "
        f"input shape {data.input_shape}, task {data.task}",
        f"- model: `{cfg.model}` {cfg.model_options or ''}",
        f"- budget: {cfg.epochs} epochs per run, seeds 0..{cfg.seeds - 1}; target test accuracy {cfg.target_accuracy:.0%}",
        f"- device: {device}; torch {torch.__version__}; {platform.platform()}; "
        f"{torch.get_num_threads()} torch threads"
        + (f" per rank, data-parallel on {dist.world_size()} ranks" if dist.is_distributed() else "")
        + f"; total wall time {elapsed:.1f} s",
        "- time columns are training time only (evaluation excluded); means are over the seeds "
        "that did not diverge; `—` means no value (never reached, or every seed diverged).",
        "",
        "## Results",
        "",
        markdown_table(summary, cfg.target_accuracy),
        "## Curves",
        "",
        "![loss and accuracy vs epoch](curves_epoch.png)",
        "",
        "![loss and accuracy vs training time](curves_time.png)",
        "",
        "Files: `results.csv` (one row per algorithm, seed and epoch), `summary.csv`, `runs/*.json` "
        "(full history and hyperparameters of each run).",
    ]
    if failures:
        lines += ["", "## Runs that failed", ""] + [f"- {a} seed {s}: {msg}" for a, s, msg in failures]
    md = write_atomic(out / "report.md", "\n".join(lines) + "\n")
    write_html_report(md)  # the same report as one self-contained page
