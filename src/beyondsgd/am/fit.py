"""A training loop for the alternating-minimization trainers on the user's own model and data.

:func:`fit` runs TIAM, plain AM or dlADMM from tensors, a ``Dataset`` or a
``DataLoader``, with a progress bar, a log of the objective terms per epoch and
early stopping on a validation split.  The model is trained in place.

AM keeps auxiliary variables for every training sample, so the whole training
set is held in memory (it is ``a_0``) and a mini-batch step needs the *indices*
of its samples: wrap the dataset in :class:`IndexedDataset` before making a
``DataLoader`` (``DataLoader(IndexedDataset(ds), batch_size=256, shuffle=True)``).

Example::

    result = fit(net, (X, y), algorithm="tiam", epochs=30, val_fraction=0.1, patience=5)
    net(X_test)            # the trained (best-validation) weights
    result.history[-1]     # objective terms, validation loss/accuracy, time
"""

from __future__ import annotations

import copy
import inspect
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from beyondsgd.training import Trainer

DataLike = Any  # (X, y) tensors, a Dataset of (x, y) items, or a DataLoader over an IndexedDataset


class IndexedDataset(Dataset):
    """A dataset whose items are ``(x, y, index)``: what mini-batch AM needs from a ``DataLoader``.

    Args:
        dataset: any map-style dataset whose items are ``(x, y)``.
    """

    def __init__(self, dataset: Dataset) -> None:
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise ValueError(
                f"IndexedDataset needs a map-style dataset (with __len__ and __getitem__); got {dataset!r}"
            )
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        x, y = self.dataset[index]
        return x, y, index


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        trainer: the trainer (its state is the last epoch's, even when the model was restored).
        history: one dict per epoch: ``epoch``, ``time_s``, the trainer's logged terms
            (objective, loss, penalty, ...), ``val_loss`` and ``val_accuracy`` when validating.
        best_epoch: the epoch whose weights the model holds (the last one without validation).
        stopped_early: whether early stopping ended the run.
    """

    trainer: Trainer
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def _materialize(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``(x, y)`` items of a map-style dataset as two stacked tensors."""
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError("fit needs a map-style dataset with a length (AM keeps variables for every sample)") from None
    if n == 0:
        raise ValueError("the dataset is empty")
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        return dataset.tensors[0], dataset.tensors[1]
    xs, ys = [], []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(f"dataset items must be (x, y) pairs; item 0 is {type(item).__name__}")
        xs.append(torch.as_tensor(item[0]))
        ys.append(torch.as_tensor(item[1]))
    return torch.stack(xs), torch.stack(ys)


def _as_tensors(data: DataLike, name: str) -> tuple[tuple[torch.Tensor, torch.Tensor], DataLoader | None]:
    if isinstance(data, DataLoader) and name == "val":  # validation is read whole: any loader will do
        dataset = data.dataset
        return _materialize(dataset.dataset if isinstance(dataset, IndexedDataset) else dataset), None
    if isinstance(data, DataLoader):
        if not isinstance(data.dataset, IndexedDataset):
            raise ValueError(
                f"{name}: a DataLoader for alternating minimization must yield sample indices (AM keeps per-sample "
                "auxiliary variables): build it as DataLoader(IndexedDataset(dataset), batch_size=..., shuffle=True)"
            )
        if data.batch_size is None and data.batch_sampler is None:
            raise ValueError(
                f"{name}: the DataLoader has batch_size=None (single samples, no batch dimension); give it a batch_size"
            )
        try:
            empty = len(data) == 0
        except TypeError:  # a sampler without a length: checked when the epoch runs
            empty = False
        if empty:
            raise ValueError(
                f"{name}: the DataLoader yields no batches (drop_last=True with batch_size {data.batch_size} above "
                f"the {len(data.dataset)} samples?)"
            )
        return _materialize(data.dataset.dataset), data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        X, y = data
        if X.dim() == 0 or y.dim() == 0:
            raise ValueError(f"{name}: X and y need a samples dimension; got shapes {tuple(X.shape)}, {tuple(y.shape)}")
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"{name}: X has {X.shape[0]} samples but y has {y.shape[0]}")
        if X.shape[0] == 0:
            raise ValueError(f"{name}: no samples (X has shape {tuple(X.shape)})")
        return (X, y), None
    if isinstance(data, IndexedDataset):
        return _materialize(data.dataset), None
    if isinstance(data, Dataset):
        return _materialize(data), None
    raise ValueError(
        f"{name} must be (X, y) tensors, a Dataset of (x, y) items or a DataLoader; got {type(data).__name__}"
    )


def _trainer_class(algorithm: str | type) -> type:
    from beyondsgd import am

    if isinstance(algorithm, type):
        if not issubclass(algorithm, Trainer):
            raise ValueError(
                f"invalid algorithm={algorithm.__name__}: expected 'tiam', 'am', 'dladmm' or a "
                "beyondsgd.training.Trainer subclass (TIAM, PlainAM, DLADMM)"
            )
        return algorithm
    classes = {"tiam": am.TIAM, "am": am.PlainAM, "dladmm": am.DLADMM}
    key = str(algorithm).lower()
    if key not in classes:
        raise ValueError(f"invalid algorithm={algorithm!r}: expected one of {', '.join(classes)} (or a trainer class)")
    return classes[key]


def _keyword_options(trainer_class: type) -> set[str] | None:
    """The options of a trainer's constructor after ``(model, X, y, loss_fn)`` (``None``: any).

    What ``hyperparams`` may set: its keyword-only parameters and any named parameter after
    the first four; a constructor taking ``**options`` checks them itself.
    """
    params = list(inspect.signature(trainer_class).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in params[4:] if p.kind in named} | {
        p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


@torch.no_grad()
def _evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: Callable, chunk: int = 8192):
    """Mean loss and accuracy (NaN for regression targets) of ``model`` in eval mode.

    ``X`` is in the model's dtype and ``y`` in the form the trainer uses (``check_targets``).
    """
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    classification = not y.is_floating_point()
    for s in range(0, X.shape[0], chunk):
        out = model(X[s : s + chunk])
        total += float(loss_fn(out, y[s : s + chunk])) * out.shape[0]
        if classification:
            correct += int((out.argmax(1) == y[s : s + chunk]).sum())
    model.train(was_training)
    n = max(X.shape[0], 1)
    return total / n, (correct / n if classification else math.nan)


def fit(
    model: nn.Module,
    data: DataLike,
    *,
    algorithm: str | type = "tiam",
    loss_fn: Callable = F.cross_entropy,
    epochs: int = 20,
    batch_size: int | None = None,
    val: DataLike | None = None,
    val_fraction: float = 0.0,
    patience: int | None = None,
    restore_best: bool = True,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[dict[str, float]], None] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
) -> FitResult:
    """Train ``model`` in place with an alternating-minimization trainer.

    Args:
        model: a chain ``[Flatten,] Linear, act, ..., Linear`` (any ``nn.Module``, see
            :func:`beyondsgd.am.network.parse_mlp`); trained in place, on its device.
        data: ``(X, y)`` tensors, a ``Dataset`` of ``(x, y)`` items (materialized: AM holds
            every sample), or a ``DataLoader`` over an :class:`IndexedDataset` (its batches
            are the mini-batches; one epoch = one pass over the loader).
        algorithm: ``"tiam"``, ``"am"``, ``"dladmm"`` or a trainer class.
        loss_fn: ``F.cross_entropy``, ``F.mse_loss`` or their modules.
        epochs: passes over the training set (full batch: outer iterations).
        batch_size: mini-batch size with tensors or a Dataset (``None``: full batch,
            the paper's setting); with a DataLoader its own batch size is used.
        val: validation data (same forms as ``data``, a loader is read whole).
        val_fraction: instead of ``val``, hold out this fraction of ``data`` (seeded);
            not with a DataLoader (its indices refer to the whole dataset).
        patience: stop when the validation loss has not improved for this many
            epochs (``None``: never stop early). Needs validation data.
        restore_best: with validation, end with the best epoch's weights in ``model``.
        seed: seed of the split and of the mini-batch order.
        progress: show a tqdm progress bar.
        log: called with each epoch's record.
        hyperparams: the trainer's hyperparameters (overrides of its class defaults).

    Each call builds a new trainer from the model's current weights: the auxiliary
    variables, the ``eps`` schedule and the inertia start again, so two calls of 5
    epochs are not one of 10 (to continue a run, keep calling
    ``result.trainer.train_step``). On Ctrl-C (``KeyboardInterrupt``) the model is left
    with the best validation epoch's weights (with ``restore_best``) and the
    interrupt propagates.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: bad data, options or hyperparameters (before any training).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    first_param = next(model.parameters(), None)
    if first_param is None:
        raise ValueError(f"model {type(model).__name__} has no parameters to train")
    trainer_class = _trainer_class(algorithm)
    hyperparams = dict(hyperparams or {})
    allowed = _keyword_options(trainer_class)
    unknown = sorted(set(hyperparams) - allowed) if allowed is not None else []
    if unknown:
        raise ValueError(
            f"hyperparams: {trainer_class.__name__} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(sorted(allowed or ()))}"
        )
    (X, y), loader = _as_tensors(data, "data")
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"invalid epochs={epochs!r}: expected an integer >= 1")
    if batch_size is not None and not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"invalid batch_size={batch_size!r}: expected None (full batch) or an integer >= 1")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"invalid val_fraction={val_fraction!r}: expected a number in [0, 1)")
    if val is not None and val_fraction > 0:
        raise ValueError("give either val or val_fraction, not both")
    if loader is not None and val_fraction > 0:
        raise ValueError("val_fraction cannot split a DataLoader's dataset (its indices refer to all of it); pass val")
    if patience is not None and not (isinstance(patience, int) and patience >= 1):
        raise ValueError(f"invalid patience={patience!r}: expected None or an integer >= 1")
    gen = torch.Generator().manual_seed(seed)
    if val_fraction > 0:
        perm = torch.randperm(X.shape[0], generator=gen)
        n_val = max(1, int(round(val_fraction * X.shape[0])))
        if n_val >= X.shape[0]:
            raise ValueError(
                f"val_fraction={val_fraction} of {X.shape[0]} samples leaves no training samples ({n_val} held out)"
            )
        (Xv, yv), (X, y) = (X[perm[:n_val]], y[perm[:n_val]]), (X[perm[n_val:]], y[perm[n_val:]])
    elif val is not None:
        (Xv, yv), _ = _as_tensors(val, "val")
    else:
        Xv = yv = None  # type: ignore[assignment]
    if patience is not None and Xv is None:
        raise ValueError("early stopping (patience) needs validation data: pass val or val_fraction")
    device = first_param.device
    X, y = X.to(device), y.to(device)
    trainer = trainer_class(model, X, y, loss_fn, **hyperparams)
    if Xv is not None:
        # The validation data in the forms the trainer uses: inputs in the model's dtype, targets
        # checked and shaped by the output loss (e.g. (N,) MSE targets as (N, 1)).
        Xv, yv = Xv.to(device=device, dtype=first_param.dtype), yv.to(device)  # type: ignore[union-attr]
        out_loss, structure = getattr(trainer, "out_loss", None), getattr(trainer, "structure", None)
        if out_loss is not None and structure is not None:
            yv = out_loss.check_targets(yv, structure.linears[-1].out_features)
    n = X.shape[0]

    def batches():
        if loader is not None:
            for item in loader:
                yield torch.as_tensor(item[2]).to(device)
        elif batch_size is None or batch_size >= n:
            yield None
        else:
            perm = torch.randperm(n, generator=gen).to(device)
            yield from perm.split(batch_size)

    result = FitResult(trainer)
    best, best_state, since = math.inf, None, 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=type(trainer).__name__, unit="epoch")
    t0 = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            for idx in batches():
                trainer.train_step(idx)
            record: dict[str, float] = {"epoch": float(epoch), **trainer.end_epoch(epoch)}
            record["time_s"] = time.perf_counter() - t0
            if Xv is not None:
                record["val_loss"], record["val_accuracy"] = _evaluate(model, Xv, yv, loss_fn)
            result.history.append(record)
            if log is not None:
                log(record)
            if bar is not None:
                shown = {
                    k: record[k]
                    for k in ("am_objective", "dladmm_objective", "val_loss", "val_accuracy")
                    if k in record
                }
                bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})
                bar.update(1)
            if Xv is None:
                result.best_epoch = epoch
                continue
            if record["val_loss"] < best:
                best, since, result.best_epoch = record["val_loss"], 0, epoch
                best_state = copy.deepcopy(model.state_dict()) if restore_best else None
            else:
                since += 1
                if patience is not None and since >= patience:
                    result.stopped_early = True
                    break
    except KeyboardInterrupt:
        # Ctrl-C: leave the model as a finished run would (the best epoch's weights), then stop.
        if restore_best and best_state is not None:
            model.load_state_dict(best_state)
        raise
    finally:
        if bar is not None:
            bar.close()
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    elif not restore_best:
        result.best_epoch = len(result.history)
    return result
