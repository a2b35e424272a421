"""Run one experiment: (dataset, model, algorithm, budget, batch size, seed).

The runner splits the data into batches, calls the algorithm's
:class:`~beyondsgd.training.trainer.Trainer`, times training only (evaluation is
excluded), evaluates on the train and test sets at every log point, and stops a
run whose loss becomes NaN/inf, marking it as diverged instead of raising.

Under torchrun (a process group of several ranks) every rank runs the same
experiment: the same batch order (one sampler, same seed), the trainer
processes its rank's part of each batch (see :mod:`beyondsgd.training.trainer`),
evaluation is split over the ranks and all-reduced, so every rank logs the same
numbers; only rank 0 writes checkpoints and shows progress.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from beyondsgd import distributed as dist
from beyondsgd.algorithms import algorithm_info, effective_hyperparams, make_trainer
from beyondsgd.bench.checkpoint import load_checkpoint, save_checkpoint
from beyondsgd.bench.metrics import evaluate
from beyondsgd.data import Dataset, load_dataset
from beyondsgd.device import resolve_device
from beyondsgd.models import create_model
from beyondsgd.training.trainer import LossFn, Trainer
from beyondsgd.validation import NONNEGATIVE_INT, POSITIVE_INT, Interval

#: Columns of the per-log-point rows (results.csv), in order.
HISTORY_COLUMNS = (
    "algorithm",
    "seed",
    "epoch",
    "step",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "time_s",
    "status",
)


@dataclass
class Experiment:
    """Everything that defines one training run.

    Attributes:
        algorithm: name from :func:`beyondsgd.bench.available_algorithms`.
        dataset: name from :func:`beyondsgd.data.available_datasets`.
        model: name from :func:`beyondsgd.models.available_models`.
        hyperparams: overrides of the algorithm's defaults.
        epochs: budget in passes over the training set (ignored if ``iterations`` is set).
        iterations: budget in updates instead of epochs.
        batch_size: samples per update; ``"full"`` (or ``None``) for full batch.
        seed: seeds the model initialization, batch order and any randomness of the algorithm.
        eval_every: log every this many epochs (or updates, with an ``iterations`` budget).
        dataset_options: keyword arguments of :func:`beyondsgd.data.load_dataset`.
        model_options: keyword arguments of :func:`beyondsgd.models.create_model`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
    """

    algorithm: str = "sgd"
    dataset: str = "digits"
    model: str = "mlp"
    hyperparams: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    iterations: int | None = None
    batch_size: int | str | None = 64
    seed: int = 0
    eval_every: int = 1
    dataset_options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"

    def validate(self) -> None:
        """Check the budget fields; names are checked when they are looked up.

        Raises:
            ValueError: naming the offending field and what is allowed.
        """
        NONNEGATIVE_INT.check("epochs", self.epochs)
        if self.iterations is not None:
            NONNEGATIVE_INT.check("iterations", self.iterations)
        POSITIVE_INT.check("eval_every", self.eval_every)
        Interval(integer=True).check("seed", self.seed)
        if not (self.batch_size in ("full", None) or POSITIVE_INT.allows(self.batch_size)):
            raise ValueError(f"invalid batch_size={self.batch_size!r}: expected a positive integer or 'full'")


@dataclass
class RunResult:
    """The outcome of one run.

    Attributes:
        experiment: the run's definition.
        hyperparams: the hyperparameters actually used (defaults filled in).
        history: one dict per log point (see :data:`HISTORY_COLUMNS`, plus any
            extra values the trainer logs); the first row is before training.
        status: ``"ok"`` or ``"diverged"``.
        diverged_step: the update at which the loss first became NaN/inf.
    """

    experiment: Experiment
    hyperparams: dict[str, Any]
    history: list[dict[str, Any]]
    status: str = "ok"
    diverged_step: int | None = None

    def final(self, key: str) -> float:
        """Last logged value of ``key`` (NaN for a diverged run: it has no valid final value)."""
        if self.status != "ok" or not self.history:
            return math.nan
        return float(self.history[-1].get(key, math.nan))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        """The inverse of :meth:`to_dict` (``runs/*.json`` back to a result; JSON nulls become NaN).

        Raises:
            ValueError: the dict lacks a field or holds an unknown experiment field.
        """
        try:
            exp = Experiment(**d["experiment"])
            history = [{k: (math.nan if v is None else v) for k, v in row.items()} for row in d["history"]]
            return cls(exp, dict(d["hyperparams"]), history, d["status"], d.get("diverged_step"))
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a run result ({type(err).__name__}: {err})") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": asdict(self.experiment),
            "hyperparams": self.hyperparams,
            "status": self.status,
            "diverged_step": self.diverged_step,
            "history": self.history,
        }


def loss_for(task: str) -> LossFn:
    """Mean cross-entropy for classification, mean squared error for regression."""
    if task == "classification":
        return nn.functional.cross_entropy
    return nn.functional.mse_loss


class BatchSampler:
    """Index batches in a fresh random order each epoch (``None`` batches for full batch).

    Its state (generator, current permutation, position) is checkpointed, so a
    resumed run sees exactly the batches the uninterrupted run would have seen.
    """

    def __init__(self, n: int, batch_size: int | None, seed: int, device: torch.device) -> None:
        self.n, self.batch_size, self.device = n, batch_size, device
        self.full = batch_size is None or batch_size >= n
        self.generator = torch.Generator().manual_seed(seed)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def next(self) -> torch.Tensor | None:
        if self.full:
            return None
        if self.perm is None or self.pos >= self.n:
            # One host-to-device copy per epoch, not per step.
            self.perm, self.pos = torch.randperm(self.n, generator=self.generator).to(self.device), 0
        size = cast(int, self.batch_size)  # not full batch
        batch = self.perm[self.pos : self.pos + size]
        self.pos += size
        return batch

    def state_dict(self) -> dict[str, Any]:
        perm = None if self.perm is None else self.perm.cpu()
        return {"generator": self.generator.get_state(), "perm": perm, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm = None if state["perm"] is None else state["perm"].to(self.device)
        self.pos = state["pos"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_experiment(
    exp: Experiment,
    data: Dataset | None = None,
    progress: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    model_factory: Callable[..., nn.Module] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    keep_final_state: bool = True,
) -> RunResult:
    """Train and log one experiment.

    Args:
        exp: the experiment.
        data: the dataset already loaded (and on the right device), to share it
            across runs; loaded from ``exp`` when ``None``.
        progress: show a progress bar; ``None`` shows one when stderr is a terminal.
        checkpoint: file to checkpoint to. If it exists, the run resumes from it
            (and returns at once if it had finished); the resumed run is
            identical to an uninterrupted one on the CPU (same batches, RNG
            streams, optimizer state), apart from wall-clock times.
        checkpoint_every: write the checkpoint every this many log points
            (and always at the end).
        model_factory: build the model with ``model_factory(input_shape, num_outputs,
            **exp.model_options)`` instead of the registered model ``exp.model``
            (``exp.model`` then only names it in the results).
        on_log: called with each new history row (after the row is appended,
            before the checkpoint of that point is written).  An exception it
            raises stops the run and propagates to the caller: a tuner uses this
            to report per-epoch values and to prune (early-stop) a trial.
        keep_final_state: the checkpoint written when the run finishes keeps the trainer's
            state (weights, optimizer state, TIAM's auxiliaries), the sampler and the RNG;
            ``False`` keeps its results only (history, status), which is all a rerun needs
            to return at once, in a fraction of the space (a TIAM run's state holds every
            training sample's auxiliary variables).

    Returns:
        The :class:`RunResult`. A run whose loss becomes NaN/inf is returned with
        ``status="diverged"`` instead of raising.

    Raises:
        ValueError: bad experiment fields, unknown names, bad hyperparameters
            (all raised before any training), or a checkpoint of another experiment.
    """
    exp.validate()
    POSITIVE_INT.check("checkpoint_every", checkpoint_every)
    device = resolve_device(exp.device)
    info = algorithm_info(exp.algorithm)
    if data is None:
        data = load_dataset(exp.dataset, seed=exp.seed, **exp.dataset_options)
    data.validate()
    identity = {"experiment": asdict(exp), "data": _data_signature(data)}
    resume = _read_checkpoint(checkpoint, identity)
    _check_same_resume(checkpoint, resume is not None)
    data = data.to(device)
    loss_fn = loss_for(data.task)
    classification = data.task == "classification"
    num_outputs = (
        cast(int, data.num_classes) if classification else (data.y_train.shape[1] if data.y_train.dim() > 1 else 1)
    )

    # Seed everything the run touches without disturbing the caller's RNG state.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(exp.seed)
        model = build_model(exp.model, data.input_shape, num_outputs, device, exp.model_options, model_factory)
        trainer = make_trainer(info.name, model, data.X_train, data.y_train, loss_fn, exp.hyperparams)
        if dist.is_distributed() and not trainer.supports_distributed:
            raise ValueError(
                f"algorithm {info.name!r} has no data-parallel mode yet: run it in a single process "
                f"(without torchrun), not on {dist.world_size()} ranks"
            )
        ckpt = _Checkpointer(checkpoint, checkpoint_every, identity, resume, keep_final_state)
        return _train(
            exp,
            info.name,
            effective_hyperparams(info.name, exp.hyperparams),
            trainer,
            data,
            loss_fn,
            classification,
            device,
            progress,
            ckpt,
            on_log,
        )


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_outputs: int,
    device: torch.device | str | None,
    options: dict[str, Any],
    factory: Callable[..., nn.Module] | None = None,
) -> nn.Module:
    """The registered model ``name``, or ``factory(input_shape, num_outputs, **options)`` when given.

    Raises:
        ValueError: unknown name, bad options, or a factory that does not return an ``nn.Module``.
    """
    if factory is None:
        return create_model(name, input_shape, num_outputs, device=device, **options)
    try:
        model = factory(tuple(input_shape), num_outputs, **options)
    except TypeError as err:
        raise ValueError(
            f"model factory {name!r} failed: {err} (it is called as factory(input_shape, num_outputs, **model_options))"
        ) from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"model factory {name!r} returned {type(model).__name__}, expected a torch nn.Module")
    return model.to(device) if device is not None else model


def _data_signature(data: Dataset) -> dict[str, Any]:
    """What identifies the data of a run in its checkpoint (data may be passed in, outside the experiment)."""
    return {
        "name": data.name,
        "n_train": data.n_train,
        "n_test": data.n_test,
        "input_shape": list(data.input_shape),
        "task": data.task,
    }


def _read_checkpoint(path: str | os.PathLike | None, identity: dict[str, Any]) -> dict[str, Any] | None:
    if path is None or not Path(path).exists():
        return None
    state = load_checkpoint(path)
    for what in ("experiment", "data"):
        if state.get(what) != identity[what]:
            raise ValueError(
                f"checkpoint {str(path)!r} belongs to another {what} ({state.get(what)}, this run: "
                f"{identity[what]}); delete it or choose another checkpoint path"
            )
    return state


def _check_same_resume(path: str | os.PathLike | None, found: bool) -> None:
    """All ranks must agree on resuming: a checkpoint seen by only some ranks would desynchronize them."""
    if path is None or not dist.is_distributed():
        return
    seen = int(dist.all_reduce_sum(torch.tensor([float(found)], dtype=torch.float64)).item())
    if 0 < seen < dist.world_size():
        raise ValueError(
            f"checkpoint {str(path)!r} exists on {seen} of {dist.world_size()} ranks: checkpoints need a "
            "filesystem shared by all ranks (rank 0 writes them, every rank reads them)"
        )


def _evaluate(
    module: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, classification: bool
) -> tuple[float, float]:
    """:func:`evaluate`, split over the ranks: each evaluates its block, the sums are all-reduced."""
    if not dist.is_distributed():
        return evaluate(module, X, y, loss_fn, classification)
    start, stop = dist.owned_range(X.shape[0])
    loss, acc = evaluate(module, X[start:stop], y[start:stop], loss_fn, classification)
    m = stop - start
    sums = torch.tensor([loss * m, acc * m if classification else 0.0], dtype=torch.float64, device=X.device)
    sums = dist.all_reduce_sum(sums) / max(X.shape[0], 1)
    return float(sums[0]), float(sums[1]) if classification else math.nan


class _Checkpointer:
    """Saves the run's full state every ``every`` log points; restores it on resume. The final
    checkpoint (``done``) holds the results only when ``keep_final_state`` is false."""

    def __init__(
        self,
        path: str | os.PathLike | None,
        every: int,
        identity: dict[str, Any],
        resume: dict[str, Any] | None,
        keep_final_state: bool = True,
    ):
        self.path, self.every, self.identity, self.resume, self.count = path, every, identity, resume, 0
        self.keep_final_state = keep_final_state

    def save(
        self,
        trainer: Trainer,
        sampler: BatchSampler,
        result: RunResult,
        step: int,
        elapsed: float,
        extra: dict[str, float],
        done: bool,
    ) -> None:
        """Write at every ``every``-th call, and always when ``done``."""
        self.count += 1
        if self.path is None or not (done or self.count % self.every == 0):
            return
        results_only = done and not self.keep_final_state
        # Every rank builds the state: a trainer with rank-local state (AM's z, a) gathers it
        # there, a collective. Rank 0 then writes for everyone: the state is the global one.
        trainer_state = None if results_only else trainer.state_dict()
        if not dist.is_main():
            return
        state = {
            **self.identity,
            "step": step,
            "elapsed": elapsed,
            "extra": extra,
            "history": result.history,
            "status": result.status,
            "diverged_step": result.diverged_step,
            "done": done,
        }
        if not results_only:
            state |= {"trainer": trainer_state, "sampler": sampler.state_dict(), "rng": torch.get_rng_state()}
        save_checkpoint(self.path, state)


def _train(
    exp: Experiment,
    name: str,
    hyperparams: dict[str, Any],
    trainer: Trainer,
    data: Dataset,
    loss_fn: LossFn,
    classification: bool,
    device: torch.device,
    progress: bool | None,
    ckpt: _Checkpointer,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    n = data.n_train
    batch_size = None if exp.batch_size in ("full", None) else int(exp.batch_size)
    steps_per_epoch = 1 if batch_size is None or batch_size >= n else math.ceil(n / batch_size)
    if exp.iterations is not None:
        total_steps, log_interval = exp.iterations, exp.eval_every
    else:
        total_steps, log_interval = exp.epochs * steps_per_epoch, exp.eval_every * steps_per_epoch
    sampler = BatchSampler(n, batch_size, exp.seed, device)
    result = RunResult(exp, hyperparams, [])

    def log(step: int, elapsed: float, extra: dict[str, float]) -> None:
        tr_loss, tr_acc = _evaluate(trainer.module, data.X_train, data.y_train, loss_fn, classification)
        te_loss, te_acc = _evaluate(trainer.module, data.X_test, data.y_test, loss_fn, classification)
        result.history.append(
            {
                "algorithm": name,
                "seed": exp.seed,
                "epoch": step / steps_per_epoch,
                "step": step,
                "train_loss": tr_loss,
                "train_accuracy": tr_acc,
                "test_loss": te_loss,
                "test_accuracy": te_acc,
                "time_s": elapsed,
                "status": "ok",
                **extra,
            }
        )
        if on_log is not None:
            on_log(result.history[-1])

    state = ckpt.resume
    if state is not None:
        result.history, result.status, result.diverged_step = state["history"], state["status"], state["diverged_step"]
        if "trainer" in state:  # (a finished run's results-only checkpoint has no state)
            trainer.load_state_dict(state["trainer"])
            sampler.load_state_dict(state["sampler"])
            torch.set_rng_state(state["rng"])
        step, elapsed, extra = state["step"], state["elapsed"], state["extra"]
        if state["done"]:
            return result
    else:
        log(0, 0.0, {})
        step, elapsed, extra = 0, 0.0, {}
    show = (sys.stderr.isatty() if progress is None else progress) and dist.is_main()
    bar = _progress_bar(total_steps, f"{name} seed {exp.seed}", show)
    bar.update(step)
    pending_losses: list[torch.Tensor] = []
    try:
        while step < total_steps:
            _sync(device)
            start = time.perf_counter()
            chunk = min(log_interval - step % log_interval, total_steps - step)
            for _ in range(chunk):
                pending_losses.append(trainer.train_step(sampler.next()))
                step += 1
                if step % steps_per_epoch == 0:
                    extra = trainer.end_epoch(step // steps_per_epoch)
            _sync(device)
            elapsed += time.perf_counter() - start
            bar.update(chunk)
            # One host sync per log point: find the first non-finite batch loss, if any.
            losses = torch.stack(pending_losses)
            pending_losses = []
            bad = (~torch.isfinite(losses)).nonzero()
            if bad.numel():
                result.status, result.diverged_step = "diverged", step - chunk + int(bad[0]) + 1
                break
            log(step, elapsed, extra)
            last = result.history[-1]
            if not math.isfinite(last["train_loss"]):
                result.status, result.diverged_step = "diverged", step
                break
            bar.set_postfix(loss=f"{last['train_loss']:.3g}", acc=f"{last['test_accuracy']:.3f}")
            if step < total_steps:
                ckpt.save(trainer, sampler, result, step, elapsed, extra, done=False)
    finally:
        bar.close()
    if result.status == "diverged":
        for row in result.history:
            row["status"] = "diverged"
    ckpt.save(trainer, sampler, result, step, elapsed, extra, done=True)
    return result


class _NoBar:
    def update(self, n: int) -> None: ...
    def set_postfix(self, **kw: Any) -> None: ...
    def close(self) -> None: ...


def _progress_bar(total: int, desc: str, show: bool):
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True)
