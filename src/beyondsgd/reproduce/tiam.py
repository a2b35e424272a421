"""``beyondsgd reproduce tiam``: TIAM vs plain AM, its ablations and gradient methods.

The paper (Yan et al., arXiv 2503.08489) trains a 3-layer MLP with 100 hidden
units per layer, ReLU-type activations, full batch, on four datasets, and
claims better test accuracy in fewer iterations than AM baselines and gradient
methods.  Its tables are not available to us, so this reproduction measures
the claim on the data we have:

* offline: ``digits``, ``mnist5k``, ``mnist1d`` and synthetic ``blobs``; the
  downloadable ``mnist``, ``fashion-mnist`` (first 10 000 training images) when
  their files are present (never required: offline they are listed as skipped);
* ReLU and leaky ReLU;
* TIAM, plain AM, dlADMM, the six single/double-inertia ablations (full batch), TIAM in
  mini-batch mode (paper preset only), full-batch gradient descent and Adam (one
  update per iteration, like AM), mini-batch SGD and Adam run for the same
  training wall time as TIAM.

Tuning (:func:`tune`), before the headline runs of every dataset / activation: each of TIAM, AM,
dlADMM, GD, full-batch Adam, SGD and Adam (batch 64) picks one value of one knob from a grid of
the same size (:data:`TUNE_GRIDS`, 3 points: ``lr`` for the gradient methods, ``rho`` for the AM
family, ``rho = nu`` for dlADMM) by its mean final accuracy on a validation split (20 % of the
training images, :func:`~beyondsgd.reproduce.common.validation_split`; the tuning runs train on
the other 80 %, the test split is never read), over the tuning seeds (2; 1 with ``--quick``) and
the headline's iterations (mini-batch methods: TIAM's training time). The headline runs train on
the whole training set at the chosen values and are scored on the test split.

Evidence (:mod:`beyondsgd.bench.evidence`): every problem is run for >= 5 seeds (2 with
``--quick``); the headline claims -- TIAM beats plain AM, beats dlADMM, beats the best (tuned)
full-batch gradient method at equal iterations, beats the best (tuned) gradient method at TIAM's
wall time -- are paired comparisons of final test accuracy over the seeds (delta = 1 point),
Holm-corrected over every claim of the report, each printed with the rule that decided it; the
tie-with-best verdict over all methods is reported too.  The "best gradient method" is chosen
among the tuned ones by its mean on the same seeds (a selection that favours the baseline).

Budget: ``benchmarks/tiam_budget.py --dataset fashion-mnist`` times one tuning seed (21 cells on the
8 000-image split: 215 s) and one headline seed (7 methods on 10 000 images: 122 s) on the shared
2-core machine (one thread, load average ~4) and estimates the full ``--dataset fashion-mnist`` run
(2 tuning seeds, 5 headline seeds, 50 iterations) at 1040 s, about 17 min (under 45 min with a 2x
margin for load). dlADMM is the most expensive method (~28 s of training per run vs 6-8 s for TIAM).

Sizes: ``--quick`` (digits), the default (real Fashion-MNIST, first 10 000 training images, and
mnist5k; ReLU), ``--dataset NAME`` for one dataset, ``--activation relu|leaky_relu`` for one
activation (e.g. the leaky ReLU rows, which only the paper preset runs otherwise), and ``--preset paper`` (full Fashion-MNIST and MNIST,
the 3x100 MLP and the AM papers' 784-1000-1000-10, 100 iterations; for a GPU, not run here).

Outputs: ``results.csv`` (every logged point), ``summary.csv``, ``tuning.csv`` (every tuning cell), per
dataset/activation plots of test accuracy against iteration and against
training time, and ``report.md`` with the grids, the validation scores, the chosen settings and the
verdict computed from the numbers.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from beyondsgd.am import ABLATIONS
from beyondsgd.bench import evidence as ev
from beyondsgd.bench.io import write_csv
from beyondsgd.bench.plots import plot_metric_grid
from beyondsgd.bench.runner import HISTORY_COLUMNS, Experiment, RunResult
from beyondsgd.bench.stats import summarize_values, to_target
from beyondsgd.data import load_dataset
from beyondsgd.data.errors import DatasetUnavailableError
from beyondsgd.reproduce.common import (
    ReproduceContext,
    Reproduction,
    register_reproduction,
    validation_split,
    write_report,
)

log = logging.getLogger(__name__)

WIDTHS = (100, 100)  # "3 layers, 100 hidden units": three Linear layers
#: The activations every method of the comparison trains with (dlADMM has no closed form for ELU).
ACTIVATIONS = ("relu", "leaky_relu")
#: Full-batch gradient baselines (one update per iteration, like AM): label -> registry name.
FULL_BATCH = {"gd": "sgd", "adam_full": "adam"}
#: Mini-batch baselines (batch 64), run for TIAM's training wall time: label -> registry name.
MINI_BATCH = {"sgd_mb": "sgd", "adam_mb": "adam"}
#: AM-family methods of the headline comparison (full batch): label -> registry name.
AM_METHODS = {"tiam": "tiam", "am": "am", "dladmm": "dladmm"}
MB_SIZE = 64
TARGET_FRACTION = 0.9  # target accuracy = 90 % of the best final accuracy on that problem
GRADIENT = ("gd", "adam_full", "sgd_mb", "adam_mb")
#: The one knob each method is tuned over and its grid -- the same size (3 points) for every method.
#: Gradient methods: the learning rate, a log grid (factor ~3) centred on the constant chosen once on
#: digits in earlier versions (GD 1.0, full-batch Adam 1e-2, SGD 0.05, Adam 1e-3). AM family: the
#: penalty ``rho`` of the layer constraints, a log grid (factor ~3) around the registry default 1.0
#: (for dlADMM ``rho`` and ``nu`` move together, ``rho = nu`` as in the authors' code, so the knob is
#: the penalty of every constraint, as ``rho`` is for TIAM and AM). The inertias of TIAM keep their
#: defaults (tuning them too would give TIAM a larger budget than the others).
TUNE_GRIDS: dict[str, tuple[str, tuple[float, ...]]] = {
    "tiam": ("rho", (0.3, 1.0, 3.0)),
    # am, dladmm and gd are centred one half-decade lower than the others: a one-seed pilot on
    # Fashion-MNIST (benchmarks/tiam_budget.py) chose their lowest point on the (0.3, 1, 3) grid.
    "am": ("rho", (0.1, 0.3, 1.0)),
    "dladmm": ("rho", (0.1, 0.3, 1.0)),
    "gd": ("lr", (0.1, 0.3, 1.0)),
    "adam_full": ("lr", (3e-3, 1e-2, 3e-2)),
    "sgd_mb": ("lr", (0.015, 0.05, 0.15)),
    "adam_mb": ("lr", (3e-4, 1e-3, 3e-3)),
}
#: Fraction of the training images held out as the validation split of the tuning phase.
VAL_FRACTION = 0.2


def _registry_name(label: str) -> str:
    return {**AM_METHODS, **FULL_BATCH, **MINI_BATCH}[label]


def _setting(label: str, value: float) -> dict[str, Any]:
    """Hyperparameters of ``label`` at grid value ``value`` of its knob."""
    knob = TUNE_GRIDS[label][0]
    return {"rho": value, "nu": value} if label == "dladmm" else {knob: value}


DELTA = 0.01  # one accuracy point: the smallest difference that matters for every claim


@dataclass
class Plan:
    datasets: tuple[str, ...]
    downloadable: tuple[str, ...]
    activations: tuple[str, ...]
    iterations: int
    seeds: tuple[int, ...]
    am_variants: tuple[str, ...]
    mini_batch_am: bool
    widths: tuple[tuple[int, ...], ...] = (WIDTHS,)
    n_train: int | None = 10000  # subsample of the downloadable datasets (None: all)
    tune_seeds: tuple[int, ...] = (0, 1)  # seeds of every tuning cell (validation split)
    tune_iterations: int | None = None  # outer iterations of a full-batch tuning cell (None: ``iterations``)

    @property
    def tune_iters(self) -> int:
        """Outer iterations of every full-batch tuning cell."""
        return self.iterations if self.tune_iterations is None else self.tune_iterations


def plan(quick: bool, ctx: ReproduceContext | None = None) -> Plan:
    """The sizes of a run: quick, the default full run, or ``--preset paper``; then ``--dataset``/``--seeds``/``--activation``."""
    from dataclasses import replace

    preset = "default" if ctx is None else ctx.preset
    seeds = tuple(ctx.seed_list()) if ctx is not None else ((0, 1) if quick else (0, 1, 2, 3, 4))
    if quick:
        p = Plan(("digits",), (), ("relu",), 15, seeds, ("tiam", "am", "tiam_p1", "tiam_p2", "tiam_p3"), False)
        p = replace(p, n_train=2000, tune_seeds=(0,))
    elif preset == "paper":
        p = Plan(
            ("mnist5k",),
            ("fashion-mnist", "mnist"),
            ("relu", "leaky_relu"),
            100,
            seeds,
            ("tiam", "am", *ABLATIONS),
            True,
            widths=(WIDTHS, (1000, 1000)),
            n_train=None,
        )
    else:
        p = Plan(("mnist5k",), ("fashion-mnist",), ("relu",), 50, seeds, ("tiam", "am"), False)
    if ctx is not None and ctx.activation is not None:
        if ctx.activation not in ACTIVATIONS:
            raise ValueError(f"invalid activation={ctx.activation!r}: expected one of {', '.join(ACTIVATIONS)}")
        p = replace(p, activations=(ctx.activation,))
    if ctx is not None and ctx.dataset is not None:
        downloadable = ctx.dataset in ("mnist", "fashion-mnist", "cifar10")
        p = replace(
            p, datasets=() if downloadable else (ctx.dataset,), downloadable=(ctx.dataset,) if downloadable else ()
        )
    return p


def _am_experiment(name: str, rho: float) -> tuple[str, dict[str, Any]]:
    """TIAM / AM / an ablation (``tiam`` with some inertias 0), at TIAM's tuned ``rho``."""
    if name in ("tiam", "am"):
        return name, {"rho": rho}
    return "tiam", {**ABLATIONS[name], "rho": rho}


def _relabel(res: RunResult, label: str) -> RunResult:
    for row in res.history:
        row["algorithm"] = label
    return res


def _run(label, alg, hp, data, act, seed, ctx, epochs, batch_size, widths=WIDTHS) -> RunResult:
    exp = Experiment(
        algorithm=alg,
        hyperparams=hp,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        model="mlp",
        model_options={"widths": tuple(widths), "activation": act},
        device=str(ctx.device),
    )
    tag = "" if tuple(widths) == WIDTHS else "-w" + "x".join(map(str, widths))
    return _relabel(ctx.run_experiment(exp, data, key=f"{data.name}{tag}-{act}-{label}-seed{seed}"), label)


def _load(name: str, ctx: ReproduceContext, notes: list[str], n_train: int | None = 10000):
    try:
        if name in ("mnist", "fashion-mnist", "cifar10"):
            return load_dataset(name, n_train=n_train, data_dir=ctx.data_dir)
        return load_dataset(name)
    except DatasetUnavailableError as err:
        if ctx.dataset is not None:
            raise  # asked for explicitly: no silent skip
        notes.append(f"- `{name}` skipped: not available offline ({str(err).splitlines()[0]})")
        return None


def tune(
    ctx: ReproduceContext, p: Plan, tune_data: Any, act: str, widths: tuple[int, ...] = WIDTHS
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Pick every method's setting on the validation split, with the same budget for each.

    Every method of :data:`TUNE_GRIDS` runs each of its (equally many) grid values for each of
    ``p.tune_seeds``; full-batch methods for ``p.tune_iters`` outer iterations, mini-batch methods
    for the epochs that fit in TIAM's training time at its middle grid value (same seed). A cell's
    score is its final accuracy on ``tune_data``'s test split, which is the validation split
    (:func:`~beyondsgd.reproduce.common.validation_split`: training images only); the chosen value
    has the best mean score over the tuning seeds (ties: the one nearest the grid's middle).

    Args:
        ctx: the reproduction's context (runs are checkpointed under ``tune-`` keys).
        p: the plan (tuning seeds and iterations).
        tune_data: training rows only: its train split is what tuning fits, its test split the validation rows.
        act: activation of the MLP.
        widths: hidden widths of the MLP.

    Returns:
        ``(cells, chosen)``: one row per (method, value, seed) with its ``val_accuracy``, and the
        chosen value of every method's knob.
    """
    cells: list[dict[str, Any]] = []
    for seed in p.tune_seeds:
        tiam_time = math.nan
        for label, (knob, grid) in TUNE_GRIDS.items():  # TIAM first: the mini-batch budget is its time
            alg = _registry_name(label)
            batch: int | str = "full"
            epochs = p.tune_iters
            if label in MINI_BATCH:
                batch = MB_SIZE
                mid = _setting(label, grid[len(grid) // 2])
                probe = _run(f"tune-{label}-probe", alg, mid, tune_data, act, seed, ctx, 1, MB_SIZE, widths)
                epochs = max(1, math.ceil(tiam_time / max(probe.history[-1]["time_s"], 1e-6)))
            for k, value in enumerate(grid):
                res = _run(f"tune-{label}-{knob}{value:g}", alg, _setting(label, value), tune_data, act, seed, ctx,
                           epochs, batch, widths)  # fmt: skip
                if label == "tiam" and k == len(grid) // 2:
                    tiam_time = res.history[-1]["time_s"]
                cells.append(
                    {
                        "method": label,
                        "algorithm": alg,
                        "knob": knob,
                        "value": value,
                        "seed": seed,
                        "epochs": epochs,
                        "batch_size": batch,
                        "status": res.status,
                        "val_accuracy": _final(res),
                        "train_time_s": res.history[-1]["time_s"],
                    }
                )
    return cells, choose(cells)


def choose(cells: list[dict[str, Any]]) -> dict[str, float]:
    """Per method: the grid value with the best mean ``val_accuracy`` (NaN = diverged = worst; ties: middle)."""
    chosen: dict[str, float] = {}
    for label, (_, grid) in TUNE_GRIDS.items():
        scores = [_mean(c["val_accuracy"] for c in cells if c["method"] == label and c["value"] == v) for v in grid]
        mid = (len(grid) - 1) / 2
        best = max(range(len(grid)), key=lambda k: (_nz(scores[k]), -abs(k - mid)))
        chosen[label] = grid[best]
    return chosen


def headline_seed(
    ctx: ReproduceContext,
    p: Plan,
    data: Any,
    act: str,
    widths: tuple[int, ...],
    seed: int,
    chosen: dict[str, float],
    problem: dict[str, list[RunResult]],
) -> None:
    """One seed of the headline comparison at the tuned settings; appends each method's run to ``problem``.

    Args:
        ctx, p, act, widths: as for :func:`tune`.
        data: the dataset (whole training set; scored on its test split).
        seed: the seed.
        chosen: the tuned value of every method's knob (:func:`choose`).
        problem: method -> runs so far (updated in place).
    """
    for name in p.am_variants:
        alg, hp = _am_experiment(name, chosen["tiam"] if name != "am" else chosen["am"])
        problem.setdefault(name, []).append(_run(name, alg, hp, data, act, seed, ctx, p.iterations, "full", widths))
    if p.mini_batch_am:
        problem.setdefault("tiam_mb512", []).append(
            _run("tiam_mb512", "tiam", {"rho": chosen["tiam"]}, data, act, seed, ctx, p.iterations, 512, widths)
        )
    for label in ("dladmm", *FULL_BATCH):
        hp = _setting(label, chosen[label])
        problem.setdefault(label, []).append(
            _run(label, _registry_name(label), hp, data, act, seed, ctx, p.iterations, "full", widths)
        )
    # Mini-batch methods get TIAM's training wall time: time one epoch, size the budget.
    tiam_time = problem["tiam"][-1].history[-1]["time_s"]
    for label, alg in MINI_BATCH.items():
        hp = _setting(label, chosen[label])
        probe = _run(label, alg, hp, data, act, seed, ctx, 1, MB_SIZE, widths)
        epochs = max(1, math.ceil(tiam_time / max(probe.history[-1]["time_s"], 1e-6)))
        problem.setdefault(label, []).append(_run(label, alg, hp, data, act, seed, ctx, epochs, MB_SIZE, widths))


def _validation_rows(data: Any) -> int:
    return max(1, round(VAL_FRACTION * int(data.X_train.shape[0])))


def run(ctx: ReproduceContext) -> Path:
    """Tune on a validation split, run the comparison and write the report (see the module docstring)."""
    p = plan(ctx.quick, ctx)
    started = time.perf_counter()
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    plots: list[tuple[str, str, str]] = []
    claims: dict[tuple[str, str], dict[str, Any]] = {}
    tuning: list[dict[str, Any]] = []
    chosen_all: dict[tuple[str, str], dict[str, float]] = {}
    for ds in p.datasets + p.downloadable:
        data = _load(ds, ctx, notes, p.n_train)
        if data is None:
            continue
        # Tuning sees training images only: a seeded 80/20 split of the training set.
        tune_data, _ = validation_split(data, _validation_rows(data), seed=0)
        for act, widths in ((a, w) for a in p.activations for w in p.widths):
            wtag = "" if tuple(widths) == WIDTHS else "_w" + "x".join(map(str, widths))
            cells, chosen = tune(ctx, p, tune_data, act, widths)
            tuning += [
                dict(c, dataset=ds + wtag, activation=act, chosen=c["value"] == chosen[c["method"]]) for c in cells
            ]
            chosen_all[(ds + wtag, act)] = chosen
            write_csv(ctx.out / "tuning.csv", tuning, TUNING_COLUMNS)
            problem: dict[str, list[RunResult]] = {}
            for seed in p.seeds:
                headline_seed(ctx, p, data, act, widths, seed, chosen, problem)
            summary += _summarize(ds + wtag, act, problem, chosen)
            claims[(ds + wtag, act)] = _claims(problem)
            tag = f"{ds}{wtag}_{act}"
            prows = [
                dict(r, dataset=ds, activation=act) for runs in problem.values() for res in runs for r in res.history
            ]
            rows += prows
            title = f"{ds} / MLP {'x'.join(map(str, widths))} {act}, seeds {list(p.seeds)}"
            full = [r for r in prows if r["algorithm"] not in MINI_BATCH]
            plot_metric_grid(full, ctx.out / f"{tag}_iteration.png", "epoch", ("train_loss", "test_accuracy"), title)
            plot_metric_grid(prows, ctx.out / f"{tag}_time.png", "time_s", ("train_loss", "test_accuracy"), title)
            plots.append((ds + wtag, act, tag))
            # Written after every problem, so an interrupted run keeps what finished.
            write_csv(ctx.out / "summary.csv", summary, SUMMARY_COLUMNS)
            _report(ctx, p, summary, plots, notes, time.perf_counter() - started, claims, tuning, chosen_all)
    if rows:
        columns = (
            "dataset",
            "activation",
            *HISTORY_COLUMNS,
            "am_objective",
            "am_loss",
            "am_penalty",
            "am_activation_gap",
            "am_eps",
            "am_safeguard_redos",
            "dladmm_objective",
            "dladmm_residual",
        )
        write_csv(ctx.out / "results.csv", [{c: r.get(c, "") for c in columns} for r in rows], columns)
    return _report(ctx, p, summary, plots, notes, time.perf_counter() - started, claims, tuning, chosen_all)


TUNING_COLUMNS = (
    "dataset",
    "activation",
    "method",
    "algorithm",
    "knob",
    "value",
    "seed",
    "epochs",
    "batch_size",
    "status",
    "val_accuracy",
    "train_time_s",
    "chosen",
)
SUMMARY_COLUMNS = (
    "dataset",
    "activation",
    "algorithm",
    "runs",
    "diverged",
    "final_test_accuracy",
    "peak_test_accuracy",
    "target",
    "iterations_to_target",
    "time_to_target_s",
    "am_target",
    "iterations_to_am_target",
    "train_time_s",
    "accuracy_at_tiam_time",
    "safeguard_redos",
    "tuned_setting",
)


def _mean(values) -> float:
    """Mean of the finite values (NaN if none)."""
    return summarize_values(values).mean


def _mean_if_all(values: list[float]) -> float:
    """Mean over the seeds of a to-target value, only if every seed reached the target (NaN otherwise).

    Iterations and time to target share this rule: a mean over the seeds that happened to reach
    the target would favour a method that reaches it in few seeds.
    """
    return _mean(values) if values and all(math.isfinite(v) for v in values) else math.nan


def _accuracy_at_time(res: RunResult, t: float) -> float:
    inside = [r["test_accuracy"] for r in res.history if r["time_s"] <= t * 1.0001]
    return inside[-1] if inside else math.nan


def _setting_text(name: str, chosen: dict[str, float] | None) -> str:
    """The tuned setting a headline method ran at (ablations and ``tiam_mb512``: TIAM's ``rho``)."""
    if not chosen:
        return ""
    label = name if name in TUNE_GRIDS else "tiam"
    knob = TUNE_GRIDS[label][0]
    return f"{knob}={chosen[label]:g}" + (" (=nu)" if label == "dladmm" else "")


def _summarize(
    ds: str, act: str, problem: dict[str, list[RunResult]], chosen: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    finals = {k: _mean(r.final("test_accuracy") for r in runs) for k, runs in problem.items()}
    target = TARGET_FRACTION * max((v for v in finals.values() if math.isfinite(v)), default=math.nan)
    # A second, lower target that the AM family reaches: 90 % of the best of tiam / am.
    am_target = TARGET_FRACTION * max(_nz(finals["tiam"]), _nz(finals["am"]))
    tiam_times = [r.history[-1]["time_s"] for r in problem["tiam"]]
    out = []
    for name, runs in problem.items():
        ok = [r for r in runs if r.status == "ok"]
        # "epoch" = outer iterations for full-batch methods, passes over the data for mini-batch ones.
        iters = [to_target(r.history, "test_accuracy", target, "epoch") for r in ok]
        am_iters = [to_target(r.history, "test_accuracy", am_target, "epoch") for r in ok]
        times = [to_target(r.history, "test_accuracy", target, "time_s") for r in ok]
        # Equal-time accuracy of every method, at TIAM's training time of the same seed.
        at_t = [_accuracy_at_time(r, t) for r, t in zip(runs, tiam_times)]
        out.append(
            {
                "dataset": ds,
                "activation": act,
                "algorithm": name,
                "runs": len(runs),
                "diverged": len(runs) - len(ok),
                "final_test_accuracy": finals[name],
                "peak_test_accuracy": _mean(max(h["test_accuracy"] for h in r.history) for r in ok),
                "target": target,
                "iterations_to_target": _mean_if_all(iters),
                "time_to_target_s": _mean_if_all(times),
                "am_target": am_target,
                "iterations_to_am_target": _mean_if_all(am_iters),
                "train_time_s": _mean(r.history[-1]["time_s"] for r in ok),
                "accuracy_at_tiam_time": _mean(at_t),
                "safeguard_redos": _mean(r.history[-1].get("am_safeguard_redos", math.nan) for r in ok),
                "tuned_setting": _setting_text(name, chosen),
            }
        )
    return out


def _final(res: RunResult) -> float:
    return res.final("test_accuracy") if res.status == "ok" else math.nan


def _claims(problem: dict[str, list[RunResult]]) -> dict[str, Any]:
    """Per-seed numbers of the headline claims of one problem (same seeds, same data order).

    Returns ``{"diffs": claim -> PairedDifference, "ties": TieVerdict, "chosen": {...}}``;
    every method ran at its setting tuned on the validation split (:func:`tune`); the best
    gradient baselines are then chosen among them by their mean over these same seeds.
    """
    tiam = [_final(r) for r in problem["tiam"]]
    am = [_final(r) for r in problem["am"]]
    tiam_times = [r.history[-1]["time_s"] for r in problem["tiam"]]
    finals = {k: [_final(r) for r in v] for k, v in problem.items()}
    full = max(GRADIENT[:2], key=lambda k: _nz(_mean(finals[k])))
    at_t = {
        k: [_accuracy_at_time(r, t) for r, t in zip(problem[k], tiam_times, strict=True)]
        for k in GRADIENT
        if k in problem
    }
    timed = max(at_t, key=lambda k: _nz(_mean(at_t[k])))
    return {
        "diffs": {
            "TIAM beats plain AM (equal iterations)": ev.paired_difference(tiam, am),
            "TIAM beats dlADMM (equal iterations)": ev.paired_difference(tiam, finals["dladmm"]),
            f"TIAM beats `{full}` (best full-batch gradient, equal iterations)": ev.paired_difference(
                tiam, finals[full]
            ),
            f"TIAM beats `{timed}` (best gradient method at TIAM's wall time)": ev.paired_difference(tiam, at_t[timed]),
        },
        "ties": ev.ties_with_best(finals),
    }


def _f(x: float, fmt: str = ".3f") -> str:
    return "—" if x is None or not math.isfinite(x) else format(x, fmt)


def _verdict(rows: list[dict[str, Any]]) -> list[str]:
    by = {r["algorithm"]: r for r in rows}
    tiam, am = by["tiam"], by["am"]
    grad_final = max(GRADIENT[:2], key=lambda k: by[k]["final_test_accuracy"])
    grad_time = max(GRADIENT, key=lambda k: _nz(by[k]["accuracy_at_tiam_time"]))
    d_am = tiam["final_test_accuracy"] - am["final_test_accuracy"]
    lines = [
        f"TIAM vs plain AM ({_f(tiam['final_test_accuracy'])} vs {_f(am['final_test_accuracy'])}, "
        f"{d_am:+.3f}; iterations to "
        f"{_f(tiam['am_target'])}: {_f(tiam['iterations_to_am_target'], '.0f')} vs "
        f"{_f(am['iterations_to_am_target'], '.0f')}, gd {_f(by['gd']['iterations_to_am_target'], '.0f')}, "
        f"adam_full {_f(by['adam_full']['iterations_to_am_target'], '.0f')})",
        f"TIAM vs dlADMM ({_f(tiam['final_test_accuracy'])} vs {_f(by['dladmm']['final_test_accuracy'])}, "
        f"{tiam['final_test_accuracy'] - by['dladmm']['final_test_accuracy']:+.3f}; iterations to AM target "
        f"{_f(by['dladmm']['iterations_to_am_target'], '.0f')})",
        f"at equal iterations, best full-batch gradient method `{grad_final}`: "
        f"{_f(by[grad_final]['final_test_accuracy'])} ({tiam['final_test_accuracy'] - by[grad_final]['final_test_accuracy']:+.3f} for TIAM)",
        f"at TIAM's training time, best gradient method `{grad_time}`: {_f(by[grad_time]['accuracy_at_tiam_time'])} "
        f"({tiam['final_test_accuracy'] - by[grad_time]['accuracy_at_tiam_time']:+.3f} for TIAM)",
    ]
    abl = [r for r in rows if r["algorithm"].startswith("tiam_p")]
    if abl:
        best = max(abl, key=lambda r: _nz(r["final_test_accuracy"]))
        lines.append(f"best ablation `{best['algorithm']}`: {_f(best['final_test_accuracy'])}")
    return lines


def _nz(x: float) -> float:
    return x if x is not None and math.isfinite(x) else -math.inf


def _evidence_lines(p: Plan, claims: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """The headline claims of every problem, Holm-corrected together, with the rule."""
    diffs = {f"{ds} / {act}: {c}": d for (ds, act), cl in claims.items() for c, d in cl["diffs"].items()}
    if not diffs:
        return []
    min_seeds = ev.MIN_SEEDS if len(p.seeds) >= ev.MIN_SEEDS else max(2, len(p.seeds))
    verdicts = ev.verdicts_holm(diffs, DELTA, min_seeds=min_seeds)
    lines = [
        f"Final test accuracy, paired over seeds {list(p.seeds)} (same seeds and data order for every method); "
        f"delta = {DELTA:g} (one accuracy point); Holm over all {len(diffs)} claims below.",
        "",
        *ev.verdict_table(verdicts, "claim"),
    ]
    if len(p.seeds) < ev.MIN_SEEDS:
        lines += [
            "",
            f"Only {len(p.seeds)} seeds: decided with n >= {min_seeds} (quick); a full verdict needs "
            f">= {ev.MIN_SEEDS}.",
        ]
    lines += ["", "Ties with the best method (final test accuracy):", ""]
    for (ds, act), cl in claims.items():
        t = cl["ties"]
        lines.append(
            f"- {ds} / {act}: best `{t.best}`; tied: {', '.join(t.tied) or 'none'}; different: "
            f"{', '.join(t.different) or 'none'}" + (f"; {t.note}" if t.note else "")
        )
    lines += ["", f"> {ev.TIE_RULE}"]
    return lines


def _tuning_lines(
    p: Plan, tuning: list[dict[str, Any]], chosen_all: dict[tuple[str, str], dict[str, float]]
) -> list[str]:
    """The tuning protocol, every method's grid, the per-cell validation scores and the chosen values."""
    lines = [
        "## Tuning (validation split of the training set, equal budget)",
        "",
        f"Before the headline runs, every method picks one value of one knob from a grid of the same size "
        f"({len(next(iter(TUNE_GRIDS.values()))[1])} points) by validation accuracy: {VAL_FRACTION:.0%} of the "
        f"training images (seeded split, seed 0) are held out and scored, the other {1 - VAL_FRACTION:.0%} are "
        f"trained on; the test split is never read. Seeds {list(p.tune_seeds)} per cell; full-batch methods "
        f"{p.tune_iters} outer iterations, mini-batch methods the epochs that fit in TIAM's training time at "
        "its middle rho (same seed). The chosen value has the best mean validation accuracy (ties: the grid's "
        "middle; a value at the grid's edge is marked, the best may lie outside). The headline runs then train on the whole training set at the chosen values and are scored "
        "on the test split. Ablations and `tiam_mb512` use TIAM's chosen rho; for dlADMM rho = nu. Every cell "
        "is in `tuning.csv`.",
        "",
    ]
    for (ds, act), chosen in chosen_all.items():
        lines += [
            f"### {ds} / {act}",
            "",
            "| method | knob | grid | validation accuracy per grid value (mean over seeds) | chosen |",
            "|---|---|---|---|---|",
        ]
        for label, (knob, grid) in TUNE_GRIDS.items():
            cells = [c for c in tuning if (c["dataset"], c["activation"], c["method"]) == (ds, act, label)]
            scores = [_mean(c["val_accuracy"] for c in cells if c["value"] == v) for v in grid]
            epochs = sorted({c["epochs"] for c in cells})
            budget = f" ({'/'.join(map(str, epochs))} epochs)" if label in MINI_BATCH else ""
            lines.append(
                f"| {label}{budget} | {knob}{' (=nu)' if label == 'dladmm' else ''} | "
                f"{', '.join(f'{v:g}' for v in grid)} | "
                f"{', '.join(f'{v:g}: {_f(a)}' for v, a in zip(grid, scores, strict=True))} | "
                f"**{chosen[label]:g}**{' (grid edge)' if chosen[label] in (grid[0], grid[-1]) else ''} |"
            )
        lines.append("")
    return lines


def _problem_rows(summary: list[dict[str, Any]], ds: str, act: str) -> list[dict[str, Any]]:
    """The summary rows of one problem, best final accuracy first."""
    rows = [r for r in summary if (r["dataset"], r["activation"]) == (ds, act)]
    return sorted(rows, key=lambda r: -_nz(r["final_test_accuracy"]))


_TABLE_HEAD = (
    "| algorithm | tuned setting | final test acc | peak | iterations to target | time to target [s] | "
    "iterations to AM target | train time [s] | acc at TIAM's time | safeguard redos |"
)


def _results_table(rows: list[dict[str, Any]]) -> list[str]:
    """The report's table of one problem (header, rule, one line per method)."""
    lines = [_TABLE_HEAD, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['algorithm']} | {r['tuned_setting']} | {_f(r['final_test_accuracy'])} | {_f(r['peak_test_accuracy'])} | "
            f"{_f(r['iterations_to_target'], '.0f')} | {_f(r['time_to_target_s'], '.2f')} | "
            f"{_f(r['iterations_to_am_target'], '.0f')} | "
            f"{_f(r['train_time_s'], '.2f')} | {_f(r['accuracy_at_tiam_time'])} | "
            f"{_f(r['safeguard_redos'], '.0f')} |"
        )
    return lines


def _target_line(rows: list[dict[str, Any]]) -> str:
    """The sentence under a problem's table: its targets and how the to-target columns are made."""
    return (
        f"target: {_f(rows[0]['target'])} (90% of the best final accuracy); AM target: "
        f"{_f(rows[0]['am_target'])} (90% of the better of tiam / am). Iterations are outer "
        "iterations for full-batch methods and epochs for mini-batch ones; iterations and time to a "
        "target are means over the seeds, given only when every seed reached it (else —)."
    )


def refresh_summary(folder: str | Path) -> Path:
    """Recompute a written report's summary (``summary.csv`` and the tables of ``report.md``) from its ``results.csv``.

    ``results.csv`` holds every logged point of every headline run, so the summary's columns
    (finals, peaks, targets, iterations and time to target, accuracy at TIAM's time, safeguard
    redos) come back from it exactly; the tuned settings come from ``tuning.csv``. Everything
    else in the report (verdicts, claims, plots, notes) is left as written. Used when the
    summary's rules change, so a committed report can follow without re-running it (a re-run
    moves the wall-time-budgeted mini-batch rows). ``report.html`` is rewritten from the new
    ``report.md``. Reports with one hidden width per problem only: ``results.csv`` does not
    record the width tag of extra widths, so a report with several is refused.

    Returns:
        The path of ``report.md``.

    Raises:
        ValueError: a file is missing, ``results.csv`` holds two runs under one name, or ``report.md``
            lacks the table of a problem in ``results.csv``.
    """
    from beyondsgd.bench.html import write_html_report
    from beyondsgd.bench.io import read_csv, write_atomic

    folder = Path(folder)
    paths = {name: folder / name for name in ("results.csv", "tuning.csv", "report.md")}
    missing = [str(q) for q in paths.values() if not q.is_file()]
    if missing:
        raise ValueError(f"cannot refresh the summary of {str(folder)!r}: missing {', '.join(missing)}")
    problems: dict[tuple[str, str], dict[str, dict[int, list[dict[str, Any]]]]] = {}
    for row in read_csv(paths["results.csv"]):
        runs = problems.setdefault((row["dataset"], row["activation"]), {}).setdefault(row["algorithm"], {})
        history = runs.setdefault(int(row["seed"]), [])
        if history and row["step"] == 0:  # a second run under the same name: another width's
            raise ValueError(
                f"{paths['results.csv']} holds more than one {row['algorithm']} run of seed {int(row['seed'])} on "
                f"{row['dataset']} / {row['activation']} (a report with several widths per problem cannot be refreshed)"
            )
        history.append(row)
    chosen: dict[tuple[str, str], dict[str, float]] = {}
    for cell in read_csv(paths["tuning.csv"]):
        if str(cell["chosen"]) == "True":
            chosen.setdefault((cell["dataset"], cell["activation"]), {})[cell["method"]] = float(cell["value"])
    summary: list[dict[str, Any]] = []
    lines = paths["report.md"].read_text().splitlines()
    for (ds, act), by_name in problems.items():
        problem = {
            name: [_stored_run(history) for _, history in sorted(seeds.items())] for name, seeds in by_name.items()
        }
        rows = _summarize(ds, act, problem, chosen.get((ds, act)))
        summary += rows
        heading = f"### {ds} / {act}"  # (the tuning section has headings of the same name)
        starts = [i + 2 for i, line in enumerate(lines[:-2]) if line == heading and lines[i + 2] == _TABLE_HEAD]
        if len(starts) != 1:
            raise ValueError(f"{paths['report.md']} has {len(starts)} results tables for {ds} / {act}, expected 1")
        start = end = starts[0]
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        ordered = _problem_rows(rows, ds, act)
        if end + 1 < len(lines) and lines[end + 1].startswith("target: "):
            lines[end + 1] = _target_line(ordered)
        lines[start:end] = _results_table(ordered)
    write_csv(folder / "summary.csv", summary, SUMMARY_COLUMNS)
    write_atomic(paths["report.md"], "\n".join(lines) + "\n")
    write_html_report(paths["report.md"])
    return paths["report.md"]


def _stored_run(history: list[dict[str, Any]]) -> RunResult:
    """A headline run rebuilt from its ``results.csv`` rows (history and status; the experiment is not stored)."""
    status = "diverged" if any(r.get("status") == "diverged" for r in history) else "ok"
    return RunResult(Experiment(algorithm=str(history[0]["algorithm"])), {}, history, status)


def _report(ctx, p: Plan, summary, plots, notes, elapsed: float, claims=None, tuning=None, chosen_all=None) -> Path:
    lines = (
        [
            "# Reproduction: TIAM (triple-inertial alternating minimization), arXiv 2503.08489",
            "",
            f"- command: `{ctx.command('tiam')}`",
            f"- mode: {'quick (CI-sized)' if ctx.quick else ctx.preset} — {p.iterations} outer iterations (= full-batch "
            f"epochs), seeds {list(p.seeds)}, MLP hidden widths {' and '.join(str(list(w)) for w in p.widths)}, "
            f"activations {', '.join(p.activations)}; downloadable datasets: "
            f"{'all' if p.n_train is None else f'first {p.n_train}'} training images, the canonical test set",
            f"- device: {ctx.device}; torch {torch.__version__}; {platform.platform()}; "
            f"{torch.get_num_threads()} threads; total wall time {elapsed:.0f} s",
            "- Every method runs at its setting tuned on a validation split of the training set (section "
            "Tuning; the `tuned_setting` column of `summary.csv`), other hyperparameters at the registry "
            "defaults of `tiam` / `am` / `dladmm` (docs/tiam.md); ablations are `tiam` "
            "with the other inertias set to 0 (`tiam_p13` keeps p1 and p3). `gd`/`adam_full`: one full-batch "
            "gradient step per iteration; `sgd_mb`/`adam_mb`: batch 64, run for TIAM's training wall time. "
            "`dladmm`: dlADMM, full batch, one backward-then-forward sweep per iteration. `tiam_mb512`: TIAM "
            "on mini-batches of 512 (one iteration = one epoch in the iteration columns).",
            f"- target accuracy = {TARGET_FRACTION:.0%} of the best final test accuracy on that dataset and "
            "activation; times are training only (evaluation excluded) and depend on the machine's load.",
            "- These are the project's measurements, not the paper's numbers (which we do not have).",
        ]
        + ([""] + notes if notes else [])
        + ["", "## Verdict", ""]
        + _evidence_lines(p, claims or {})
        + ["", "Per problem (means over seeds):", ""]
    )
    tuning_lines = _tuning_lines(p, tuning or [], chosen_all or {})
    keys = sorted({(r["dataset"], r["activation"]) for r in summary}, key=lambda k: (k[0], k[1]))
    for ds, act in keys:
        rows = [r for r in summary if (r["dataset"], r["activation"]) == (ds, act)]
        lines.append(f"- **{ds} / {act}**: " + "; ".join(_verdict(rows)) + ".")
    lines += ["", *tuning_lines, "## Results", ""]
    for ds, act in keys:
        rows = _problem_rows(summary, ds, act)
        lines += [f"### {ds} / {act}", "", *_results_table(rows)]
        lines += [
            "",
            _target_line(rows),
            "",
            f"![vs iteration]({ds}_{act}_iteration.png)",
            "",
            f"![vs time]({ds}_{act}_time.png)",
            "",
        ]
    lines += [
        "Files: `results.csv` (every logged point, with the AM and dlADMM objective terms), `summary.csv`, "
        "`tuning.csv` (every tuning cell: method, knob, value, seed, validation accuracy, chosen)."
    ]
    command = ctx.command("tiam")
    return write_report(ctx.out, lines, command=command, device=ctx.device)


register_reproduction(
    Reproduction(
        "tiam",
        run,
        "TIAM vs plain AM, dlADMM, inertia ablations, GD/Adam, each tuned on a validation split (3x100 MLP)",
        checkpoints=True,
        activations=ACTIVATIONS,
    )
)
