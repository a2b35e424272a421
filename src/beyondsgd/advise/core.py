"""The race behind ``beyondsgd advise``: tune every family within a budget, re-run finalists, report.

How the wall-clock budget is spent (project choices, stated in the report):

1. setup: load the data, build one trainer per candidate to find the ones the
   model allows (an AM trainer needs a plain MLP, for example);
2. tuning, for 60% of the time the setup left (longer while the finals' estimated
   cost still fits): one Optuna study per algorithm (TPE sampler,
   ASHA pruner on the validation accuracy of every epoch), trials taken round-robin
   so that every algorithm gets its share; each algorithm's first trial is its
   registered default;
3. finals, until the budget minus a reserve for the report: the finalists — the
   best algorithm by validation accuracy, tuned SGD and tuned Adam (the references),
   the best of every other family, then the next best algorithms while the time
   estimate fits — each re-run over ``seeds`` seeds on the full training set and
   evaluated on the test set: the first three seed by seed across them, then one
   extra finalist at a time while its estimated cost fits;
4. the report (``advice.md``/``advice.html``, ``advice.json``, ``trials.csv``,
   ``finals.csv``, plots).

A run still going when its phase's time is up is stopped at its next log point
and discarded; the budget therefore holds to within one log interval of one run
plus the report's few seconds.  Ctrl-C stops the race the same way and writes the
report of what finished.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from beyondsgd.algorithms import algorithm_info, available_algorithms
from beyondsgd.bench.runner import Experiment, run_experiment
from beyondsgd.data import Dataset, load_dataset
from beyondsgd.sweep.config import AUTO_STEP_NAMES
from beyondsgd.sweep.executor import validation_split
from beyondsgd.validation import Interval

#: Share of the budget spent tuning; the finals get the rest (minus the report's reserve).
TUNE_SHARE = 0.6
#: Reference methods every other family is compared with.
REFERENCES = ("adam", "sgd")


class _OutOfTime(Exception):
    """Raised from a run's log callback when its phase's time is up."""


def parse_budget(budget: float | int | str) -> float:
    """A wall-clock budget in seconds from ``600``, ``"600"``, ``"90s"``, ``"10m"``, ``"1.5h"``.

    Raises:
        ValueError: not a positive duration.
    """
    seconds: float
    if isinstance(budget, bool):
        raise ValueError(f"invalid budget {budget!r}: expected seconds or a duration like 90s, 10m, 1h")
    if isinstance(budget, (int, float)):
        seconds = float(budget)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([smh]?)\s*", str(budget))
        if not m:
            raise ValueError(f"invalid budget {budget!r}: expected seconds or a duration like 90s, 10m, 1h")
        seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"invalid budget {budget!r}: must be > 0 seconds")
    return seconds


@dataclass
class Candidate:
    """One algorithm in the race and what it found."""

    algorithm: str
    family: str
    space: dict[str, tuple[float, float]]
    defaults: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    finals: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None

    @property
    def best_trial(self) -> dict[str, Any] | None:
        ok = [t for t in self.trials if t["state"] == "complete" and math.isfinite(t["value"])]
        return max(ok, key=lambda t: (t["value"], -t["number"])) if ok else None


@dataclass
class AdviseResult:
    """What :func:`advise` found.

    Attributes:
        out: the report folder.
        report: ``advice.md``.
        recommended: the recommended algorithm (``None``: nothing finished).
        hyperparams: its hyperparameters.
        tied: algorithms statistically tied with it.
        verdict: the verdict as a dict (also in ``advice.json``).
        elapsed_s: wall-clock time spent, report included.
        budget_s: the budget.
        interrupted: stopped by Ctrl-C (the report covers what finished).
    """

    out: Path
    report: Path
    recommended: str | None
    hyperparams: dict[str, Any]
    tied: list[str]
    verdict: dict[str, Any]
    elapsed_s: float
    budget_s: float
    interrupted: bool = False


def _is_step(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _family(name: str, all_families: Sequence[str]) -> str:
    """The family ``name`` means: its full name or its first word (``tiam`` for "TIAM (alternating
    minimization)"), in any case, or a prefix of one family only (``mult``)."""
    key = str(name).strip().lower()
    short = {f: f.split()[0].lower() for f in all_families}
    exact = [f for f in all_families if key in (f.lower(), short[f])]
    hits = exact or [f for f in all_families if key and short[f].startswith(key)]
    if len(hits) == 1:
        return hits[0]
    what = (
        f"ambiguous algorithm family {name!r} (matches {', '.join(hits)})"
        if hits
        else f"unknown algorithm family {name!r}"
    )
    raise ValueError(
        f"{what}; available families: {', '.join(all_families)} (a family's first word or a prefix of it also works)"
    )


def _candidates(algorithms: Sequence[str] | None, families: Sequence[str] | None) -> list[Candidate]:
    known = available_algorithms()
    all_families = sorted({algorithm_info(a).family for a in known})
    if families is not None:
        families = [_family(f, all_families) for f in ([families] if isinstance(families, str) else families)]
    if algorithms is not None:
        if isinstance(algorithms, str):
            algorithms = [algorithms]
        bad = [a for a in algorithms if str(a).lower() not in known]
        if bad:
            raise ValueError(f"unknown algorithm {bad[0]!r}; available: {', '.join(known)}")
        names = [algorithm_info(a).name for a in algorithms]
    else:
        names = list(known)
    if families is not None:
        names = [a for a in names if algorithm_info(a).family in families]
    if not names:
        raise ValueError("no algorithm to race: the given algorithms and families have nothing in common")
    for ref in REFERENCES:  # the references are always raced (when registered)
        if ref in known and ref not in names:
            names.append(ref)
    out = []
    for a in dict.fromkeys(names):
        info = algorithm_info(a)
        # Every step size it has (a multiplicative rule has lr and eta_out): x/÷10 around the default.
        steps = [n for n in AUTO_STEP_NAMES if _is_step(info.defaults.get(n))]
        space = {n: _inside(info.hyperparams.get(n), info.defaults[n] / 10, info.defaults[n] * 10) for n in steps}
        out.append(Candidate(a, info.family, space, dict(info.defaults)))
    return out


def _inside(allowed: Any, lo: float, hi: float) -> tuple[float, float]:
    """``(lo, hi)`` kept inside the hyperparameter's allowed range (DSGD's lr: below 2)."""
    return allowed.clip(lo, hi) if isinstance(allowed, Interval) else (lo, hi)


def _load(data: str | Dataset, dataset_options: Mapping[str, Any]) -> Dataset:
    if isinstance(data, Dataset):
        if dataset_options:
            raise ValueError("dataset_options apply to a dataset name; a Dataset object is used as given")
        data.validate()
        return data
    if isinstance(data, str):
        return load_dataset(data, seed=0, **dict(dataset_options))
    raise ValueError(
        f"invalid data {type(data).__name__}: expected a dataset name (see `beyondsgd list`) "
        "or a beyondsgd.data.Dataset of tensors"
    )


class _Progress:
    """A bar over the budget's seconds with trials done, pruned and the current best."""

    def __init__(self, budget: float, show: bool) -> None:
        self.start = time.perf_counter()
        self.budget = budget
        self.done = self.pruned = 0
        self.best = ("—", math.nan)
        self.phase = "setup"
        self.bar = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=int(math.ceil(budget)), unit="s", desc="advise", dynamic_ncols=True, leave=True)

    def tick(self) -> None:
        if self.bar is None:
            return
        elapsed = min(int(time.perf_counter() - self.start), self.bar.total)
        self.bar.update(elapsed - self.bar.n)
        best = f"{self.best[0]} {self.best[1]:.4f}" if math.isfinite(self.best[1]) else "—"
        self.bar.set_postfix_str(
            f"{self.phase}: {self.done} trials, {self.pruned} pruned, best val acc {best}", refresh=False
        )

    def close(self) -> None:
        if self.bar is not None:
            self.tick()
            self.bar.close()


def advise(
    data: str | Dataset = "digits",
    model: str = "mlp",
    budget: float | str = "10m",
    out: str | Path = "advise-results",
    *,
    algorithms: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    epochs: int = 20,
    batch_size: int | str = 64,
    model_options: Mapping[str, Any] | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    validation_fraction: float = 0.2,
    seeds: int = 5,
    target_accuracy: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
) -> AdviseResult:
    """Race the algorithm families on ``data`` within ``budget`` and write the advice report.

    Args:
        data: a dataset name (``beyondsgd list``) or a :class:`~beyondsgd.data.Dataset`
            of tensors (your data); a string goes to :func:`~beyondsgd.data.load_dataset`,
            so a data file path works wherever that function accepts one.
        model: model name (``mlp``, ``cnn``, ...).
        budget: wall-clock budget: seconds, or ``"90s"``, ``"10m"``, ``"1h"``.
        out: the report folder (created; an existing report there is replaced).
        algorithms: restrict the race to these algorithms (default: every registered one);
            tuned SGD and Adam are always included as the references.
        families: restrict the race to these families (``baseline``, ``momentum``, ...).
        epochs: epochs per run (tuning and finals).
        batch_size: samples per update (an algorithm registered full-batch, the AM trainers, keeps its own).
        model_options: keyword arguments of the model.
        dataset_options: keyword arguments of :func:`~beyondsgd.data.load_dataset` (e.g. ``n_train``).
        validation_fraction: share of the training set held out for tuning.
        seeds: seeds per finalist (at least 5).
        target_accuracy: the accuracy for time-to-target; default: 95% of the recommended
            method's mean final test accuracy, rounded down to 0.01.
        seed: seeds the TPE samplers.
        device: ``cpu``, ``cuda`` or ``auto``.
        progress: show the progress bar (default: when stderr is a terminal).

    Returns:
        An :class:`AdviseResult`; the report is in ``out/advice.md``.

    Raises:
        ValueError: a bad argument (budget <= 0, unknown family/algorithm/dataset/model,
            fewer than 5 seeds, ...), before anything runs.

    References:
        Akiba et al., "Optuna", KDD 2019 (TPE sampling, pruning); Li et al., "A System for
        Massively Parallel Hyperparameter Tuning" (ASHA), MLSys 2020; Welch, "The generalization
        of 'Student's' problem when several different population variances are involved",
        Biometrika 1947; Holm, "A simple sequentially rejective multiple test procedure", 1979.
    """
    from beyondsgd.validation import POSITIVE_INT

    t0 = time.perf_counter()
    budget_s = parse_budget(budget)
    POSITIVE_INT.check("epochs", epochs)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 5:
        raise ValueError(f"invalid seeds={seeds!r}: advise re-runs the finalists over at least 5 seeds")
    if isinstance(validation_fraction, bool) or not 0 < validation_fraction < 1:
        raise ValueError(f"invalid validation_fraction={validation_fraction!r}: expected a number in (0, 1)")
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise ValueError(f"invalid target_accuracy={target_accuracy!r}: expected a number in (0, 1]")
    from beyondsgd.models import available_models

    if model not in available_models():
        raise ValueError(f"unknown model {model!r}; available: {', '.join(available_models())}")
    cands = _candidates(algorithms, families)
    full = _load(data, dataset_options or {})
    if full.task != "classification":
        raise ValueError("advise ranks methods by accuracy: it needs a classification dataset")
    tune_data = validation_split(full, validation_fraction)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_options = dict(model_options or {})
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(budget_s, show)
    bar.start = t0
    # The report's reserve: plots and files take a few seconds.
    reserve = min(max(4.0, 0.06 * budget_s), 30.0)
    deadline = t0 + budget_s - reserve
    interrupted = False
    ctx = _Context(full, tune_data, model, model_options, epochs, batch_size, device, bar)
    try:
        for c in cands:  # which candidates the model allows (builds each trainer once, no training)
            c.skipped = ctx.probe(c)
        live = [c for c in cands if c.skipped is None]
        if not live:
            raise ValueError(
                "no algorithm can train this model: " + "; ".join(f"{c.algorithm}: {c.skipped}" for c in cands)
            )
        bar.phase = "tuning"
        # Tuning gets its share of what the setup (imports, data, probes) left.
        now = time.perf_counter()
        tune_deadline = now + TUNE_SHARE * max(0.0, deadline - now)
        _tune(live, ctx, tune_deadline, seed, deadline, seeds)
        bar.phase = "finals"
        _finals(live, ctx, deadline, seeds)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    from beyondsgd.advise.report import write_advice

    settings = {
        "data": full.name if isinstance(data, Dataset) else data,
        "source": full.source,
        "n_train": full.n_train,
        "n_test": full.n_test,
        "model": model,
        "model_options": model_options,
        "dataset_options": dict(dataset_options or {}),
        "epochs": epochs,
        "batch_size": batch_size,
        "validation_fraction": validation_fraction,
        "seeds": seeds,
        "budget_s": budget_s,
        "tune_share": TUNE_SHARE,
        "reserve_s": reserve,
        "seed": seed,
        "device": device,
    }
    verdict, report = write_advice(out, cands, settings, target_accuracy, t0, interrupted)
    elapsed = time.perf_counter() - t0
    return AdviseResult(
        out=out,
        report=report,
        recommended=verdict.get("recommended"),
        hyperparams=verdict.get("hyperparams", {}),
        tied=verdict.get("tied", []),
        verdict=verdict,
        elapsed_s=elapsed,
        budget_s=budget_s,
        interrupted=interrupted,
    )


class _Context:
    """Shared state of one race: the data, the budget per run, the progress bar."""

    def __init__(self, full, tune_data, model, model_options, epochs, batch_size, device, bar) -> None:
        self.full, self.tune_data = full, tune_data
        self.model, self.model_options = model, model_options
        self.epochs, self.batch_size, self.device, self.bar = epochs, batch_size, device, bar

    def experiment(self, c: Candidate, hp: Mapping[str, Any], seed: int, epochs: int | None = None) -> Experiment:
        return Experiment(
            algorithm=c.algorithm,
            dataset=self.full.name,
            model=self.model,
            hyperparams=dict(hp),
            epochs=self.epochs if epochs is None else epochs,
            batch_size=algorithm_info(c.algorithm).batch_size or self.batch_size,
            seed=seed,
            model_options=dict(self.model_options),
            device=self.device,
        )

    def probe(self, c: Candidate) -> str | None:
        """``None`` if the algorithm can train the model (zero-epoch run), else the reason."""
        try:
            run_experiment(self.experiment(c, {}, 0, epochs=0), data=self.tune_data, progress=False)
        except (ValueError, TypeError, NotImplementedError, RuntimeError) as err:
            return f"{type(err).__name__}: {err}"
        return None

    def run(self, c: Candidate, hp, seed: int, data, deadline: float, on_value=None):
        """One run; raises :class:`_OutOfTime` if ``deadline`` passes before it ends."""

        def on_log(row: dict[str, Any]) -> None:
            self.bar.tick()
            if row["step"] > 0 and on_value is not None:
                on_value(row)
            if time.perf_counter() > deadline:
                raise _OutOfTime

        start = time.perf_counter()
        res = run_experiment(self.experiment(c, hp, seed), data=data, progress=False, on_log=on_log)
        return res, time.perf_counter() - start


def _tune(live: list[Candidate], ctx: _Context, deadline: float, seed: int, end: float, seeds: int) -> None:
    """Round-robin TPE trials until ``deadline`` or, when that is later, until the estimated cost of
    re-running every candidate over ``seeds`` seeds would no longer fit before ``end``."""
    import optuna

    from beyondsgd.sweep.config import _hash

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = {}
    for c in live:
        sampler = optuna.samplers.TPESampler(seed=(seed * 1_000_003 + int(_hash(c.algorithm)[:8], 16)) % 2**32)
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
        st = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
        if c.space:
            st.enqueue_trial({n: float(c.defaults[n]) for n in c.space})  # the registered default first
        studies[c.algorithm] = st
    bar = ctx.bar
    rnd = 0
    base = deadline
    while time.perf_counter() < deadline:
        progressed = False
        for c in live:
            if time.perf_counter() >= deadline:
                break
            if not c.space and c.trials:  # nothing to tune: its one setting ran
                continue
            st = studies[c.algorithm]
            dists: dict[str, optuna.distributions.BaseDistribution] = {
                n: optuna.distributions.FloatDistribution(lo, hi, log=True) for n, (lo, hi) in c.space.items()
            }
            trial = st.ask(dists)
            hp = dict(trial.params)
            step = [0]

            def report(row, trial=trial, step=step):
                step[0] += 1
                v = float(row["test_accuracy"])
                if math.isfinite(v):
                    trial.report(v, step[0])
                    if trial.should_prune():
                        raise optuna.TrialPruned

            entry = {"algorithm": c.algorithm, "number": trial.number, "hyperparams": hp, "round": rnd}
            try:
                res, wall = ctx.run(c, hp, 0, ctx.tune_data, deadline, report)
            except optuna.TrialPruned:
                st.tell(trial, state=optuna.trial.TrialState.PRUNED)
                entry.update(state="pruned", value=math.nan, epochs=step[0], wall_s=math.nan)
                bar.pruned += 1
            except _OutOfTime:
                st.tell(trial, state=optuna.trial.TrialState.FAIL)
                break  # its time is up: not a finished trial, not recorded
            else:
                v = res.final("test_accuracy")
                st.tell(trial, v if math.isfinite(v) else -math.inf)
                entry.update(state="complete" if res.status == "ok" else res.status, value=v, epochs=step[0])
                entry["wall_s"] = wall
                if math.isfinite(v) and not v <= bar.best[1]:
                    bar.best = (c.algorithm, v)
            c.trials.append(entry)
            bar.done += 1
            progressed = True
            bar.tick()
        rnd += 1
        if not progressed:
            break
        if rnd >= 1:  # runs are cheap relative to the budget: tune longer, keep the finals' share
            est = 1.25 * sum(_final_cost(c, seeds) for c in live)
            deadline = max(base, min(end - est, end))


def _final_cost(c: Candidate, seeds: int) -> float:
    """Estimated seconds for ``seeds`` final runs: the mean of its complete tuning runs x 1.3
    (the full training set is larger than the tuning split)."""
    walls = [t["wall_s"] for t in c.trials if t["state"] == "complete" and math.isfinite(t.get("wall_s", math.nan))]
    per_run = (sum(walls) / len(walls)) if walls else 1.0
    return per_run * 1.3 * seeds


def _priority(live: list[Candidate]) -> list[Candidate]:
    """Finalists in priority order: the best by validation accuracy, the references (tuned SGD and
    Adam), the best of every other family (best first), then everything else (best first)."""
    ranked = sorted((c for c in live if c.best_trial), key=lambda c: -c.best_trial["value"])  # type: ignore[index]
    if not ranked:
        return []
    by_name = {c.algorithm: c for c in ranked}
    order = [ranked[0]] + [by_name[r] for r in REFERENCES if r in by_name]
    seen_fam = {c.family for c in order}
    for c in ranked:
        if c.family not in seen_fam:
            order.append(c)
            seen_fam.add(c.family)
    order += ranked
    return list({c.algorithm: c for c in order}.values())


def _finals(live: list[Candidate], ctx: _Context, deadline: float, seeds: int) -> None:
    """The first three finalists seed by seed across them, then one finalist at a time (all its
    seeds) while its estimated cost fits, so a low estimate leaves at most one incomplete."""
    order = _priority(live)

    def run(c: Candidate, s: int) -> bool:
        if time.perf_counter() >= deadline:
            return False
        try:
            best = c.best_trial
            assert best is not None  # finalists have a finished trial
            res, wall = ctx.run(c, best["hyperparams"], s, ctx.full, deadline)
        except _OutOfTime:
            return False
        c.finals.append({"seed": s, "status": res.status, "history": res.history, "wall_s": wall})
        ctx.bar.tick()
        return True

    for s in range(seeds):
        for c in order[:3]:
            if not run(c, s):
                return
    for c in order[3:]:
        if time.perf_counter() + _final_cost(c, seeds) > deadline:
            continue  # does not fit: a cheaper one further down may
        for s in range(seeds):
            if not run(c, s):
                return


def candidate_dicts(cands: Sequence[Candidate]) -> list[dict[str, Any]]:
    """The candidates as plain dicts (for ``advice.json``)."""
    return [asdict(c) for c in cands]
