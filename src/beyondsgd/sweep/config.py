"""Sweep configs: problems x algorithms x hyperparameter search spaces x seeds.

A sweep has two phases per (problem, algorithm):

1. **tuning**: every trial of the algorithm's search space (a grid, or N draws
   of a random search) is trained on a *validation split* carved from the
   training set (the test set is never used to choose hyperparameters);
2. **final**: the best trial by the selection metric is re-trained on the full
   training set over several seeds and evaluated on the test set.  Those runs
   are what the report's statistics, curves and performance profiles use.

The config is a mapping (from YAML or TOML, see :func:`load_config`)::

    name: my-sweep
    problems:
      - {name: digits-mlp, dataset: digits, model: mlp, model_options: {widths: [64]},
         epochs: 10, batch_size: 64, target: {test_accuracy: 0.9}}
    algorithms:
      sgd: {lr: {log_uniform: [0.001, 1.0]}, momentum: [0.0, 0.9]}
      adam: {lr: [0.0003, 0.001, 0.003]}
      rmsprop: {}                    # its registered defaults, no tuning
    families: []                     # also include every algorithm of these families ("all")
    skip_missing: false              # unknown algorithm names: error (false) or skip with a note
    search: {method: auto, trials: 8, seed: 0, tuning_seeds: 1, validation_fraction: 0.2, select: final}
    seeds: 3
    device: cpu

A problem may omit ``dataset`` when :func:`~beyondsgd.sweep.run.run_sweep` is given
``data=`` (your own arrays or :class:`~beyondsgd.data.Dataset`); ``model=`` there
replaces ``model`` the same way.

Search-space values: a scalar (fixed), a list or ``{grid: [...]}`` (grid
values), ``{choice: [...]}`` (same, for random search), ``{log_uniform: [lo, hi]}``,
``{uniform: [lo, hi]}``; the string ``auto`` for the whole space means "the
registered default step size (``lr``, else ``eta_out``, ``eta``, ``step_size``)
times 0.1, 0.3, 1, 3, 10" (the defaults only when the algorithm has none);
``auto:NAME`` scans hyperparameter NAME around its registered default instead.  ``method: auto`` enumerates
an all-discrete space when it has at most ``trials`` points and otherwise draws
``trials`` random points.

``method: tpe`` hands the search to Optuna (:mod:`beyondsgd.sweep.optuna_search`):
``trials`` trials per (problem, algorithm) proposed by its TPE sampler (seeded by
``seed``), with ``pruner: none | median | asha`` stopping hopeless trials from the
validation metric each trial reports at every log point.  The space maps onto
Optuna distributions: ``log_uniform`` -> ``FloatDistribution(log=True)``,
``uniform`` -> ``FloatDistribution``, ``grid``/``choice``/lists ->
``CategoricalDistribution``, a scalar stays fixed.  The study lives in a database
(``OUT/optuna.db``, SQLite, by default), so an interrupted sweep resumes from it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beyondsgd.algorithms import algorithm_info, available_algorithms
from beyondsgd.bench.runner import Experiment
from beyondsgd.validation import Constraint, check_hyperparams

AUTO_LR_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
_PROBLEM_KEYS = {
    "name",
    "dataset",
    "model",
    "model_options",
    "dataset_options",
    "epochs",
    "iterations",
    "batch_size",
    "eval_every",
    "target",
}
_TOP_KEYS = {"name", "problems", "algorithms", "families", "skip_missing", "search", "seeds", "device"}
_SEARCH_KEYS = {"method", "trials", "seed", "tuning_seeds", "validation_fraction", "select", "metric", "pruner"}
#: ``search.method`` values; ``tpe`` is Optuna's TPE sampler (see :mod:`beyondsgd.sweep.optuna_search`).
SEARCH_METHODS = ("auto", "grid", "random", "tpe")
#: ``search.pruner`` values (``method: tpe`` only).
PRUNERS = ("none", "median", "asha")
_TARGET_METRICS = ("test_accuracy", "test_loss", "train_loss")


class ConfigError(ValueError):
    """A sweep config is invalid; the message says where (``problems[1].epochs``) and why."""


# --------------------------------------------------------------------------- search spaces


@dataclass(frozen=True)
class Dim:
    """One hyperparameter's search dimension.

    Attributes:
        kind: ``"fixed"``, ``"grid"``, ``"log_uniform"`` or ``"uniform"``.
        values: the fixed value (1 entry) or the grid values.
        low, high: bounds of a continuous distribution.
    """

    kind: str
    values: tuple[Any, ...] = ()
    low: float = math.nan
    high: float = math.nan

    @property
    def discrete(self) -> bool:
        return self.kind in ("fixed", "grid")


def _freeze(v: Any) -> Any:
    """YAML/TOML lists inside values (e.g. betas) become tuples, as the optimizers expect."""
    return tuple(_freeze(x) for x in v) if isinstance(v, list) else v


def parse_dim(where: str, spec: Any) -> Dim:
    """Parse one search-space entry (see the module docstring)."""
    if isinstance(spec, list):
        spec = {"grid": spec}
    if isinstance(spec, Mapping):
        if len(spec) != 1:
            raise ConfigError(f"{where}: expected one of grid, choice, log_uniform, uniform; got {sorted(spec)}")
        ((kind, arg),) = spec.items()
        if kind in ("grid", "choice"):
            if not isinstance(arg, list) or not arg:
                raise ConfigError(f"{where}.{kind}: expected a non-empty list of values, got {arg!r}")
            return Dim("grid", tuple(_freeze(v) for v in arg))
        if kind in ("log_uniform", "uniform"):
            ok = (
                isinstance(arg, list)
                and len(arg) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in arg)
            )
            if not ok or not arg[0] < arg[1]:
                raise ConfigError(f"{where}.{kind}: expected [low, high] with low < high, got {arg!r}")
            if kind == "log_uniform" and arg[0] <= 0:
                raise ConfigError(f"{where}.log_uniform: bounds must be > 0, got {arg!r}")
            return Dim(kind, (), float(arg[0]), float(arg[1]))
        raise ConfigError(f"{where}: unknown search kind {kind!r}; expected grid, choice, log_uniform or uniform")
    return Dim("fixed", (_freeze(spec),))


def _hp_table(name: str) -> Mapping[str, Constraint]:
    return algorithm_info(name).hyperparams


def check_space(where: str, algorithm: str, space: Mapping[str, Dim]) -> None:
    """Every grid value and both bounds of every distribution must be allowed values."""
    table = _hp_table(algorithm)
    owner = f"algorithm {algorithm!r}"
    for hp, dim in space.items():
        values = dim.values if dim.discrete else (dim.low, dim.high)
        for v in values:
            try:
                check_hyperparams(owner, {hp: v}, table)
            except ValueError as err:
                raise ConfigError(f"{where}.{hp}: {err}") from None


def trials(space: Mapping[str, Dim], method: str, budget: int, seed: int) -> list[dict[str, Any]]:
    """The hyperparameter settings to try, deterministic given ``seed``.

    Args:
        space: hyperparameter -> :class:`Dim`.
        method: ``"grid"`` (cartesian product of discrete dims), ``"random"``
            (``budget`` independent draws: log-uniform, uniform, or uniform over
            grid values; duplicates dropped) or ``"auto"`` (grid when the space is
            discrete with at most ``budget`` points, else random).
        budget: number of random draws.
        seed: seeds the random draws.
    """
    names = sorted(space)
    discrete = all(space[n].discrete for n in names)
    size = math.prod(len(space[n].values) for n in names) if discrete else math.inf
    if method == "auto":
        method = "grid" if size <= budget else "random"
    if method == "grid":
        if not discrete:
            cont = [n for n in names if not space[n].discrete]
            raise ConfigError(
                f"search.method=grid cannot enumerate continuous dimensions {cont}; use method: random (or auto)"
            )
        return [dict(zip(names, combo)) for combo in itertools.product(*(space[n].values for n in names))]
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(budget):
        point = {}
        for n in names:
            d = space[n]
            if d.discrete:
                point[n] = d.values[int(rng.integers(len(d.values)))]
            elif d.kind == "log_uniform":
                point[n] = float(np.exp(rng.uniform(math.log(d.low), math.log(d.high))))
            else:
                point[n] = float(rng.uniform(d.low, d.high))
        k = json.dumps(point, sort_keys=True, default=str)
        if k not in seen:
            seen.add(k)
            out.append(point)
    return out


#: Step-size names the ``auto`` space looks for in an algorithm's registered defaults, in order.
AUTO_STEP_NAMES = ("lr", "eta_out", "eta", "step_size")


def auto_space(algorithm: str, hyperparam: str | None = None) -> dict[str, Dim]:
    """The ``auto`` space: the registered default step size times 0.1 ... 10 (project choice).

    Multiples outside the hyperparameter's allowed range are left out (DSGD's ``lr``,
    whose guarantee needs ``(0, 2)``, scans 0.1, 0.3, 1).

    Args:
        algorithm: registry name.
        hyperparam: the hyperparameter to scan (``auto:NAME`` in a config); default:
            the first of :data:`AUTO_STEP_NAMES` among the algorithm's registered
            defaults (none found: the algorithm runs at its defaults).

    Raises:
        ConfigError: ``hyperparam`` has no positive numeric registered default.
    """
    info = algorithm_info(algorithm)
    defaults = info.defaults

    def grid(name: str, v: float) -> dict[str, Dim]:
        # Only the multiples the hyperparameter's range allows (e.g. DSGD's lr lives on (0, 2)).
        allowed = info.hyperparams.get(name)
        values = [float(f"{v * f:.6g}") for f in AUTO_LR_FACTORS]
        return {name: Dim("grid", tuple(x for x in values if allowed is None or allowed.allows(x)))}

    if hyperparam is not None:
        v = defaults.get(hyperparam)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ConfigError(
                f"algorithms.{algorithm}: auto:{hyperparam} needs a positive numeric registered "
                f"default for {hyperparam!r}; the defaults are {dict(defaults)}"
            )
        return grid(hyperparam, v)
    for name in AUTO_STEP_NAMES:
        v = defaults.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return grid(name, v)
    return {}


# --------------------------------------------------------------------------- config


@dataclass
class Problem:
    """One (dataset, model, budget, target) problem of a sweep."""

    name: str
    dataset: str
    model: str = "mlp"
    model_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    iterations: int | None = None
    batch_size: int | str | None = None
    eval_every: int = 1
    target_metric: str = "test_accuracy"
    target: float = 0.9

    @property
    def selection_metric(self) -> str:
        """What tuning maximizes/minimizes on the validation split (stored as ``test_*`` there)."""
        return "test_loss" if self.target_metric.endswith("_loss") else "test_accuracy"


@dataclass
class SweepConfig:
    """A validated sweep config (see the module docstring for the file format)."""

    name: str
    problems: list[Problem]
    spaces: dict[str, dict[str, Dim]]
    skipped: dict[str, str]
    method: str = "auto"
    trials: int = 8
    search_seed: int = 0
    tuning_seeds: int = 1
    validation_fraction: float = 0.2
    select: str = "final"
    seeds: int = 3
    device: str = "cpu"
    pruner: str = "none"
    raw: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Hash of the normalized config: a resumed sweep must have the same one."""
        return _hash(self.raw)[:16]


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _int(where: str, v: Any, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"{where}: expected an integer >= {low}, got {v!r}")
    return v


def _mapping(where: str, v: Any) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {v!r}")
    return {str(k): _freeze(x) for k, x in v.items()}


def _unknown(where: str, given: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(given) - allowed)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")


def _problem(i: int, p: Any, base: Path | None = None) -> Problem:
    where = f"problems[{i}]"
    if not isinstance(p, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'dataset', 'model', 'epochs'..., got {p!r}")
    _unknown(where, p, _PROBLEM_KEYS)
    from beyondsgd.data import available_datasets
    from beyondsgd.data.files import FILE_FORMATS, looks_like_path
    from beyondsgd.models import available_models

    # A problem without a dataset takes the data passed to run_sweep(data=...) (checked there).
    dataset, model = str(p.get("dataset", "")), str(p.get("model", "mlp"))
    default_name = dataset or "data"
    if not dataset:
        pass
    elif looks_like_path(dataset):
        # A data file: relative paths are relative to the config file, made absolute so
        # that workers started in another folder find it.
        path = Path(dataset).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise ConfigError(f"{where}.dataset: data file {str(path)!r} not found")
        if path.suffix.lower() not in FILE_FORMATS:
            raise ConfigError(f"{where}.dataset: {str(path)!r} is not a {', '.join(FILE_FORMATS)} file")
        dataset, default_name = str(path.resolve()), path.stem
    elif dataset.lower() not in available_datasets():
        raise ConfigError(
            f"{where}.dataset: unknown dataset {dataset!r}; available: {', '.join(available_datasets())}, "
            f"or the path of a {'/'.join(FILE_FORMATS)} file"
        )
    if model not in available_models():
        raise ConfigError(f"{where}.model: unknown model {model!r}; available: {', '.join(available_models())}")
    target = p.get("target", {"test_accuracy": 0.9})
    if not isinstance(target, Mapping) or len(target) != 1:
        raise ConfigError(
            f"{where}.target: expected one entry like {{test_accuracy: 0.9}} or {{test_loss: 0.1}}, got {target!r}"
        )
    ((tmetric, tvalue),) = target.items()
    if tmetric not in _TARGET_METRICS:
        raise ConfigError(f"{where}.target: unknown metric {tmetric!r}; expected one of {', '.join(_TARGET_METRICS)}")
    if isinstance(tvalue, bool) or not isinstance(tvalue, (int, float)) or not math.isfinite(tvalue):
        raise ConfigError(f"{where}.target.{tmetric}: expected a number, got {tvalue!r}")
    prob = Problem(
        name=str(p.get("name", f"{default_name}-{model}")),
        dataset=dataset,
        model=model,
        model_options=_mapping(f"{where}.model_options", p.get("model_options")),
        dataset_options=_mapping(f"{where}.dataset_options", p.get("dataset_options")),
        epochs=_int(f"{where}.epochs", p.get("epochs", 10), 1),
        iterations=None if p.get("iterations") is None else _int(f"{where}.iterations", p["iterations"], 1),
        batch_size=p.get("batch_size"),
        eval_every=_int(f"{where}.eval_every", p.get("eval_every", 1), 1),
        target_metric=tmetric,
        target=float(tvalue),
    )
    bs = prob.batch_size
    if not (bs is None or bs == "full" or (isinstance(bs, int) and not isinstance(bs, bool) and bs > 0)):
        raise ConfigError(f"{where}.batch_size: expected a positive integer or 'full', got {bs!r}")
    return prob


def parse_config(raw: Mapping[str, Any], base: str | Path | None = None) -> SweepConfig:
    """Validate a config mapping and build a :class:`SweepConfig`.

    Args:
        raw: the parsed config.
        base: folder that relative data-file paths (``dataset: data/my.csv``) are
            relative to (:func:`load_config` passes the config file's folder; default: the current folder).

    Raises:
        ConfigError: naming the offending entry and what is allowed; nothing has run yet.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config: expected a mapping at the top level, got {type(raw).__name__}")
    raw = copy.deepcopy(dict(raw))
    _unknown("config", raw, _TOP_KEYS)
    problems_raw = raw.get("problems")
    if not isinstance(problems_raw, list) or not problems_raw:
        raise ConfigError("problems: expected a non-empty list of problems")
    problems = [_problem(i, p, None if base is None else Path(base)) for i, p in enumerate(problems_raw)]
    names = [p.name for p in problems]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"problems: duplicate problem name(s) {', '.join(dup)}; give each a distinct 'name'")

    search = _mapping("search", raw.get("search"))
    _unknown("search", search, _SEARCH_KEYS)
    method = search.get("method", "auto")
    if method not in SEARCH_METHODS:
        raise ConfigError(f"search.method: expected one of {', '.join(SEARCH_METHODS)}, got {method!r}")
    pruner = search.get("pruner", "none")
    if pruner not in PRUNERS:
        raise ConfigError(f"search.pruner: expected one of {', '.join(PRUNERS)}, got {pruner!r}")
    if pruner != "none" and method != "tpe":
        raise ConfigError(f"search.pruner: {pruner!r} needs method: tpe (grid/random trials always run to the end)")
    if method == "tpe" and search.get("tuning_seeds", 1) != 1:
        raise ConfigError("search.tuning_seeds: method tpe runs one seed per trial; set tuning_seeds: 1 (or omit it)")
    select = search.get("select", "final")
    if select not in ("final", "best"):
        raise ConfigError(f"search.select: expected final or best, got {select!r}")
    vf = search.get("validation_fraction", 0.2)
    if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0 < vf < 1:
        raise ConfigError(f"search.validation_fraction: expected a number in (0, 1), got {vf!r}")

    algs_raw = raw.get("algorithms", {})
    if isinstance(algs_raw, list):
        algs_raw = {str(a): {} for a in algs_raw}
    if not isinstance(algs_raw, Mapping):
        raise ConfigError(f"algorithms: expected a mapping name -> search space (or a list of names), got {algs_raw!r}")
    skip_missing = raw.get("skip_missing", False)
    if not isinstance(skip_missing, bool):
        raise ConfigError(f"skip_missing: expected true or false, got {skip_missing!r}")
    known = available_algorithms()
    spaces: dict[str, dict[str, Dim]] = {}
    skipped: dict[str, str] = {}
    for alg, space_raw in algs_raw.items():
        where = f"algorithms.{alg}"
        if str(alg).lower() not in known:
            if skip_missing:
                skipped[str(alg)] = "not registered in this installation"
                continue
            raise ConfigError(
                f"{where}: unknown algorithm {alg!r}; available: {', '.join(known)} (or set skip_missing: true)"
            )
        name = algorithm_info(alg).name
        if isinstance(space_raw, str) and (space_raw == "auto" or space_raw.startswith("auto:")):
            spaces[name] = auto_space(name, space_raw[5:] or None)
            continue
        if space_raw is None:
            space_raw = {}
        if not isinstance(space_raw, Mapping):
            raise ConfigError(f"{where}: expected a mapping hyperparameter -> values, or 'auto', got {space_raw!r}")
        spaces[name] = {hp: parse_dim(f"{where}.{hp}", v) for hp, v in space_raw.items()}
        check_space(where, name, spaces[name])
    families = raw.get("families", [])
    if isinstance(families, str):
        families = [families]
    if not isinstance(families, list):
        raise ConfigError(f"families: expected a list of family names or 'all', got {families!r}")
    for name in known:
        fam = algorithm_info(name).family
        if name not in spaces and ("all" in families or fam in families):
            spaces[name] = auto_space(name)
    if not spaces:
        raise ConfigError("algorithms: no algorithm to run (list some, or set families: [all])")

    cfg = SweepConfig(
        name=str(raw.get("name", "sweep")),
        problems=problems,
        spaces=spaces,
        skipped=skipped,
        method=method,
        trials=_int("search.trials", search.get("trials", 8), 1),
        search_seed=_int("search.seed", search.get("seed", 0), 0),
        tuning_seeds=_int("search.tuning_seeds", search.get("tuning_seeds", 1), 1),
        validation_fraction=float(vf),
        select=select,
        seeds=_int("seeds", raw.get("seeds", 3), 1),
        device=str(raw.get("device", "cpu")),
        pruner=pruner,
    )
    # Enumerate the trials now so a grid over continuous ranges fails before anything runs.
    if method != "tpe":
        for space in spaces.values():
            trials(space, cfg.method, cfg.trials, cfg.search_seed)
    cfg.raw = {
        "name": cfg.name,
        "problems": [asdict(p) for p in problems],
        "spaces": {a: {h: asdict(d) for h, d in s.items()} for a, s in spaces.items()},
        "search": {
            "method": cfg.method,
            "trials": cfg.trials,
            "seed": cfg.search_seed,
            "tuning_seeds": cfg.tuning_seeds,
            "validation_fraction": cfg.validation_fraction,
            "select": cfg.select,
            # Only tpe sweeps carry the key: the fingerprints of grid/random sweeps stay as they were.
            **({"pruner": cfg.pruner} if method == "tpe" else {}),
        },
        "seeds": cfg.seeds,
        "device": cfg.device,
        "skipped": skipped,
        "families": {a: algorithm_info(a).family for a in spaces},
    }
    return cfg


def load_config(path: str | Path) -> SweepConfig:
    """Read a ``.yaml``/``.yml`` or ``.toml`` sweep config and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            raw = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raise ConfigError(f"config file {str(path)!r}: expected a .yaml, .yml or .toml file")
    except ConfigError:
        raise
    except Exception as err:  # a syntax error of either format
        raise ConfigError(f"config file {str(path)!r} is not valid {path.suffix[1:].upper()}: {err}") from None
    return parse_config(raw, base=path.parent)


# --------------------------------------------------------------------------- the run plan


@dataclass
class RunTask:
    """One training run of the sweep (picklable; sent to worker processes or Ray).

    Attributes:
        key: unique, deterministic id (the store's file name).
        phase: ``"tune"`` (validation split) or ``"final"`` (full train, test set).
        problem: the problem's name.
        algorithm: registry name.
        trial: index of the hyperparameter trial.
        experiment: the :class:`Experiment` fields.
        validation_fraction: size of the validation split (tuning runs only).
        checkpoint: file the run checkpoints to (resumed from if it exists); ``None``: none.
        checkpoint_every: checkpoint every this many log points.
        optuna: for a ``method: tpe`` trial: ``storage`` (URL), ``study`` (name),
            ``trial_id``, ``pruner`` and ``metric``; the run reports its validation
            metric to that trial at every log point and stops when the pruner says so.
    """

    key: str
    phase: str
    problem: str
    algorithm: str
    trial: int
    experiment: dict[str, Any]
    validation_fraction: float = 0.0
    checkpoint: str | None = None
    checkpoint_every: int = 1
    optuna: dict[str, Any] | None = None


def _task(cfg: SweepConfig, prob: Problem, alg: str, trial: int, hp: dict[str, Any], seed: int, phase: str) -> RunTask:
    bs = prob.batch_size
    if bs is None:
        bs = algorithm_info(alg).batch_size or 64
    exp = Experiment(
        algorithm=alg,
        dataset=prob.dataset,
        model=prob.model,
        hyperparams=dict(hp),
        epochs=prob.epochs,
        iterations=prob.iterations,
        batch_size=bs,
        seed=seed,
        eval_every=prob.eval_every,
        dataset_options=dict(prob.dataset_options),
        model_options=dict(prob.model_options),
        device=cfg.device,
    )
    vf = cfg.validation_fraction if phase == "tune" else 0.0
    ident = {"phase": phase, "problem": asdict(prob), "experiment": asdict(exp), "validation_fraction": vf}
    key = f"{_slug(prob.name)}__{_slug(alg)}__{phase}{trial}__s{seed}__{_hash(ident)[:10]}"
    return RunTask(key, phase, prob.name, alg, trial, asdict(exp), vf)


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in s)


def tunable(space: Mapping[str, Dim]) -> bool:
    """Whether a space has anything to search (a continuous dimension or a grid of >= 2 values)."""
    return any(not d.discrete or len(d.values) > 1 for d in space.values())


def fixed_params(space: Mapping[str, Dim]) -> dict[str, Any]:
    """The dimensions that take one value (fixed scalars, one-value grids)."""
    return {n: d.values[0] for n, d in space.items() if d.discrete and len(d.values) == 1}


def algorithm_trials(cfg: SweepConfig, alg: str) -> list[dict[str, Any]]:
    """The grid/random settings of ``alg`` (``method: tpe``: only a space with nothing to search, as one setting)."""
    if cfg.method == "tpe":
        space = cfg.spaces[alg]
        return [] if tunable(space) else [fixed_params(space)]
    # Seeded by the algorithm name too, so adding an algorithm leaves the others' draws unchanged.
    seed = (cfg.search_seed * 1_000_003 + int(_hash(alg)[:8], 16)) % 2**32
    return trials(cfg.spaces[alg], cfg.method, cfg.trials, seed)


def tuning_tasks(cfg: SweepConfig) -> list[RunTask]:
    """Phase 1: every trial on the validation split (skipped when there is only one trial)."""
    out: list[RunTask] = []
    if cfg.method == "tpe":  # Optuna proposes the trials one by one (sweep.optuna_search)
        return out
    for prob in cfg.problems:
        for alg in cfg.spaces:
            points = algorithm_trials(cfg, alg)
            if len(points) < 2:
                continue
            for t, hp in enumerate(points):
                for s in range(cfg.tuning_seeds):
                    out.append(_task(cfg, prob, alg, t, hp, s, "tune"))
    return out


def score(record: Mapping[str, Any] | None, metric: str, select: str) -> float:
    """A tuning run's score, oriented so that larger is better (-inf: diverged/failed/missing)."""
    from beyondsgd.bench.stats import best_value, final_value, lower_is_better

    if record is None or record.get("status") == "failed":
        return -math.inf
    hist = record["result"]["history"]
    v = (final_value if select == "final" else best_value)(hist, metric, record["status"])
    if not math.isfinite(v):
        return -math.inf
    return -v if lower_is_better(metric) else v


def best_trials(cfg: SweepConfig, records: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (problem, algorithm): the chosen trial, its hyperparameters and the trial scores.

    The score of a trial is the mean over tuning seeds of :func:`score`; ties go to
    the earlier trial.  An algorithm with one trial is chosen without tuning.
    """
    chosen = {}
    for prob in cfg.problems:
        metric = prob.selection_metric
        for alg in cfg.spaces:
            if cfg.method == "tpe" and tunable(cfg.spaces[alg]):
                chosen[(prob.name, alg)] = _best_recorded_trial(cfg, prob, alg, records)
                continue
            points = algorithm_trials(cfg, alg)
            scores = []
            if len(points) >= 2:
                for t, hp in enumerate(points):
                    s = [
                        score(records.get(_task(cfg, prob, alg, t, hp, seed, "tune").key), metric, cfg.select)
                        for seed in range(cfg.tuning_seeds)
                    ]
                    scores.append(float(np.mean(s)) if all(math.isfinite(x) for x in s) else -math.inf)
                best = int(np.argmax(scores)) if scores else 0
            else:
                best = 0
            chosen[(prob.name, alg)] = {
                "trial": best,
                "hyperparams": points[best] if points else {},
                "trials": points,
                "scores": scores,
                "metric": metric,
            }
    return chosen


def _best_recorded_trial(
    cfg: SweepConfig, prob: Problem, alg: str, records: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``method: tpe``: the best stored tuning trial (pruned trials score -inf; ties: lower trial number)."""
    metric = prob.selection_metric
    recs = sorted(
        (
            r
            for r in records.values()
            if r["task"]["phase"] == "tune" and r["task"]["problem"] == prob.name and r["task"]["algorithm"] == alg
        ),
        key=lambda r: r["task"]["trial"],
    )
    scores = [score(r, metric, cfg.select) if r["status"] != "pruned" else -math.inf for r in recs]
    best = int(np.argmax(scores)) if scores else 0
    return {
        "trial": recs[best]["task"]["trial"] if recs else 0,
        "hyperparams": dict(recs[best]["task"]["experiment"]["hyperparams"]) if recs else fixed_params(cfg.spaces[alg]),
        "trials": [r["task"]["experiment"]["hyperparams"] for r in recs],
        "scores": scores,
        "metric": metric,
    }


def final_tasks(
    cfg: SweepConfig,
    records: Mapping[str, Mapping[str, Any]],
    chosen: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> list[RunTask]:
    """Phase 2: the chosen setting of each (problem, algorithm) over ``cfg.seeds`` seeds.

    Args:
        chosen: the choice (as :func:`best_trials` returns it); default: :func:`best_trials` of ``records``.
    """
    chosen = best_trials(cfg, records) if chosen is None else chosen
    out = []
    for prob in cfg.problems:
        for alg in cfg.spaces:
            c = chosen[(prob.name, alg)]
            for seed in range(cfg.seeds):
                out.append(_task(cfg, prob, alg, c["trial"], c["hyperparams"], seed, "final"))
    return out
