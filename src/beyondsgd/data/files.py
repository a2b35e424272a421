"""Your own data from a file: ``.csv``, ``.npz`` or ``.pt``; and from arrays in memory.

Every check runs while loading, before any training, and every error is a
:class:`DatasetFileError` (a ``ValueError``) that names the file and the problem:
missing or empty file, a non-numeric feature column (named), NaN/inf values
(how many, and the first row), a single class, mismatched lengths, a target
column that does not exist.

Formats:

* ``.csv``: a header row, then one sample per row. The label is the column
  ``target`` (default: the last column); every other column must be numeric.
  Class labels may be of any type (strings, integers...); they are mapped to
  ``0 .. C-1`` in sorted order and their names are kept (``Dataset.class_names``).
* ``.npz`` (numpy): arrays ``X_train, y_train, X_test, y_test``, or ``X, y``
  split by ``test_fraction`` and ``seed`` (stratified for classification).
* ``.pt`` (torch): a dict of tensors with the same keys, read with
  ``torch.load(weights_only=True)`` (no code runs while loading).

The task is classification unless ``task="regression"`` is given; a target that
looks continuous under classification is refused with a hint to say so.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beyondsgd.data.dataset import TASKS
from beyondsgd.data.raw import RawData
from beyondsgd.validation import Constraint

#: File name endings :func:`load_file` reads.
FILE_FORMATS = (".csv", ".npz", ".pt")

#: Default share of samples held out for testing when a file has no split.
DEFAULT_TEST_FRACTION = 0.2

# A classification target with more distinct values than this that are not all
# integers is taken for a continuous one (the user probably meant regression).
_MAX_NONINTEGER_CLASSES = 20


class DatasetFileError(ValueError):
    """A data file that cannot be used; the message names the file and the problem."""


class OptionalStr(Constraint):
    """``None`` or a non-empty string."""

    def allows(self, value: Any) -> bool:
        return value is None or (isinstance(value, str) and value.strip() != "")

    def describe(self) -> str:
        return "a column name (str) or None"


def looks_like_path(name: Any) -> bool:
    """Whether a ``dataset`` argument names a file rather than a registered dataset.

    True for a :class:`os.PathLike`, a string ending in one of :data:`FILE_FORMATS`,
    or a string holding a path separator.
    """
    if isinstance(name, os.PathLike):
        return True
    if not isinstance(name, str):
        return False
    return name.lower().endswith(FILE_FORMATS) or "/" in name or os.sep in name


def _fail(path: Path, problem: str) -> DatasetFileError:
    return DatasetFileError(f"data file {str(path)!r}: {problem}")


def load_file(
    path: str | os.PathLike,
    *,
    target: str | None = None,
    task: str | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
) -> RawData:
    """Read a ``.csv``, ``.npz`` or ``.pt`` data file into train/test arrays.

    Args:
        path: the file.
        target: CSV only: the label column (default: the last column).
        task: ``"classification"`` (default) or ``"regression"``.
        test_fraction: share of samples in the test split when the file holds
            one unsplit set; the split is deterministic given ``seed`` and
            stratified for classification.
        seed: seed of that split.

    Returns:
        The :class:`~beyondsgd.data.raw.RawData` (features as float64, labels as
        class ids ``0..C-1`` with their names in ``class_names``).

    Raises:
        DatasetFileError: the file is missing, empty, of an unknown format, or
            its content is unusable; the message names the file and the problem.
    """
    path = Path(path)
    if task is not None and task not in TASKS:
        raise ValueError(f"invalid task={task!r}: expected one of {', '.join(map(repr, TASKS))}")
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"invalid test_fraction={test_fraction!r}: expected a number in (0, 1)")
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise _fail(path, f"unknown file format {suffix or '(no suffix)'!r}; readable: {', '.join(FILE_FORMATS)}")
    if not path.exists():
        raise _fail(path, "file not found")
    if not path.is_file():
        raise _fail(path, "not a regular file")
    if path.stat().st_size == 0:
        raise _fail(path, "the file is empty")
    if target is not None and suffix != ".csv":
        raise _fail(path, f"target={target!r} only applies to .csv files (a {suffix} file holds X and y arrays)")
    task = task or "classification"
    if suffix == ".csv":
        X, y, columns = _read_csv(path, target)
        return from_arrays((X, y), task=task, test_fraction=test_fraction, seed=seed, where=path, columns=columns)
    arrays = _read_npz(path) if suffix == ".npz" else _read_pt(path)
    return from_arrays(arrays, task=task, test_fraction=test_fraction, seed=seed, where=path)


def _read_csv(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except UnicodeDecodeError as exc:
        raise _fail(path, f"not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise _fail(path, f"not valid CSV ({exc})") from None
    if not rows:
        raise _fail(path, "the file has no rows")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise _fail(path, "the file has a header row but no data rows")
    if len(header) < 2:
        raise _fail(path, f"need at least two columns (features and a label), the header has {len(header)}")
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise _fail(path, f"line {line} has {len(row)} fields, the header has {len(header)}")
    if target is None:
        t = len(header) - 1
    elif target in header:
        t = header.index(target)
    else:
        raise _fail(path, f"target column {target!r} does not exist; columns: {', '.join(header)}")
    columns = [h for i, h in enumerate(header) if i != t]
    feature_idx = [i for i in range(len(header)) if i != t]
    X = np.empty((len(body), len(feature_idx)), dtype=np.float64)
    for j, i in enumerate(feature_idx):
        for r, row in enumerate(body):
            cell = row[i].strip()
            try:
                X[r, j] = float(cell) if cell else math.nan
            except ValueError:
                raise _fail(
                    path,
                    f"feature column {header[i]!r} is not numeric (line {r + 2}: {cell!r}); features must be "
                    f"numbers: encode it, drop it, or make it the label with --target {header[i]}",
                ) from None
    y = np.array([row[t].strip() for row in body], dtype=object)
    return X, y, columns


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    import zipfile

    if not zipfile.is_zipfile(path):
        raise _fail(path, "not a readable .npz file (not a zip archive; write it with numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays need pickle, which can run code
        raise _fail(path, f"cannot read the arrays ({exc}); store numbers or fixed-width strings") from None
    except Exception as exc:  # a damaged zip raises several exception types
        raise _fail(path, f"not a readable .npz file ({type(exc).__name__}: {exc})") from None


def _read_pt(path: Path) -> dict[str, np.ndarray]:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for garbled or unsafe files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise _fail(path, f"not a readable .pt file of tensors ({type(exc).__name__}: {first})") from None
    if not isinstance(obj, dict):
        raise _fail(path, f"expected a dict of tensors with keys X, y (or X_train, ...), got {type(obj).__name__}")
    out = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise _fail(path, f"entry {key!r} is a {type(value).__name__}, expected a tensor")
        out[str(key)] = value.detach().cpu().numpy()
    return out


_SPLIT_KEYS = ("X_train", "y_train", "X_test", "y_test")


def _arrays_from_mapping(arrays: dict[str, np.ndarray], where: Path | str) -> tuple:
    keys = set(arrays)
    if set(_SPLIT_KEYS) <= keys:
        return tuple(arrays[k] for k in _SPLIT_KEYS)
    if {"X", "y"} <= keys:
        return arrays["X"], arrays["y"]
    raise DatasetFileError(
        f"data file {str(where)!r}: expected arrays X_train, y_train, X_test, y_test or X, y; "
        f"found {', '.join(sorted(keys)) or 'none'}"
    )


def _as_array(value: Any, name: str, where: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as exc:
        raise DatasetFileError(f"{where}: {name} cannot be made an array ({exc})") from None


def _check_features(X: np.ndarray, name: str, where: str, csv_lines: bool = False) -> np.ndarray:
    if X.ndim < 2:
        raise DatasetFileError(f"{where}: {name} has shape {X.shape}, expected (n_samples, n_features, ...)")
    if X.shape[0] == 0:
        raise DatasetFileError(f"{where}: {name} has no samples")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(X):
        raise DatasetFileError(f"{where}: {name} must hold real numbers, got dtype {X.dtype}")
    X = X.astype(np.float64, copy=False)
    finite = np.isfinite(X).reshape(X.shape[0], -1)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        count = int(finite.size - np.count_nonzero(finite))
        raise DatasetFileError(
            f"{where}: {name} has {count} NaN, infinite or missing value(s); the first is in row {int(bad_rows[0])} "
            f"(0-based sample index{', line ' + str(int(bad_rows[0]) + 2) + ' of the CSV' if csv_lines else ''})"
        )
    return X


def _label_ids(ys: Sequence[np.ndarray], where: str, names: Sequence[str]) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Map labels of any type to ``0..C-1`` (sorted numerically if all numeric, else as strings)."""
    flat = np.concatenate([np.asarray(y, dtype=object).reshape(-1) for y in ys])
    as_numbers = []
    numeric = True
    for v in flat:
        try:
            as_numbers.append(float(v))
        except (TypeError, ValueError):
            numeric = False
            break
    if numeric:
        nums = np.asarray(as_numbers)
        if not np.isfinite(nums).all():
            i = int(np.flatnonzero(~np.isfinite(nums))[0])
            raise DatasetFileError(f"{where}: the labels hold NaN/inf or missing values (first at sample {i})")
        values = np.unique(nums)
        integral = bool(np.all(values == np.round(values)))
        if not integral and len(values) > _MAX_NONINTEGER_CLASSES:
            raise DatasetFileError(
                f"{where}: the target looks continuous ({len(values)} distinct non-integer values) but the task is "
                "classification; for regression pass --task regression (Python: task='regression')"
            )
        class_names = tuple(f"{v:g}" if integral else repr(float(v)) for v in values)
        ids = [np.searchsorted(values, np.asarray(y, dtype=np.float64).reshape(-1)).astype(np.int64) for y in ys]
    else:
        strs = [np.asarray([str(v).strip() for v in np.asarray(y, dtype=object).reshape(-1)], dtype=object) for y in ys]
        empty = [i for i, v in enumerate(np.concatenate(strs)) if v == ""]
        if empty:
            raise DatasetFileError(f"{where}: {len(empty)} sample(s) have no label (first at sample {empty[0]})")
        values = np.asarray(sorted(set(np.concatenate(strs))), dtype=object)
        lookup = {v: i for i, v in enumerate(values)}
        ids = [np.asarray([lookup[v] for v in s], dtype=np.int64) for s in strs]
        class_names = tuple(str(v) for v in values)
    if len(class_names) < 2:
        only = class_names[0] if class_names else "none"
        raise DatasetFileError(
            f"{where}: the labels hold one class only ({only!r}); classification needs at least two "
            "(for a continuous target pass --task regression)"
        )
    for y, name in zip(ids, names):
        if y.size == 0:
            raise DatasetFileError(f"{where}: {name} is empty")
    return ids, class_names


def _regression_targets(y: np.ndarray, name: str, where: str) -> np.ndarray:
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetFileError(f"{where}: {name} must be numbers for regression") from None
    if y.ndim > 2:
        raise DatasetFileError(f"{where}: {name} has shape {y.shape}, expected (n,) or (n, k) for regression")
    if not np.isfinite(y).all():
        bad = np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))
        raise DatasetFileError(
            f"{where}: {name} has {int(y.size - np.count_nonzero(np.isfinite(y)))} NaN/inf or missing value(s), "
            f"first in row {int(bad[0])}"
        )
    # One column per output, as the models produce: an (n,) target against (n, 1)
    # predictions would broadcast to an (n, n) loss.
    return y.reshape(len(y), -1)


def split_indices(
    n: int, test_fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic train/test split of ``n`` samples, stratified on ``labels`` if given.

    Args:
        n: number of samples.
        test_fraction: share of samples in the test split, in ``(0, 1)``.
        seed: seed of the split (numpy ``default_rng``; the global RNG is untouched).
        labels: class ids to stratify on: each class with at least two samples
            puts ``round(test_fraction * n_c)`` (at least one, at most ``n_c - 1``)
            of them in the test split; a class with one sample stays in train.

    Returns:
        ``(train_idx, test_idx)``, sorted.
    """
    rng = np.random.default_rng(seed)
    if labels is None:
        perm = rng.permutation(n)
        n_test = min(max(1, round(test_fraction * n)), n - 1)
        test = perm[:n_test]
    else:
        test_parts = []
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            if len(idx) < 2:
                continue
            k = min(max(1, round(test_fraction * len(idx))), len(idx) - 1)
            test_parts.append(rng.permutation(idx)[:k])
        test = np.concatenate(test_parts) if test_parts else np.array([], dtype=np.int64)
    mask = np.zeros(n, dtype=bool)
    mask[test] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def from_arrays(
    arrays: Any,
    *,
    task: str = "classification",
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    where: Path | str = "data",
    columns: Sequence[str] | None = None,
) -> RawData:
    """Check arrays and make a :class:`~beyondsgd.data.raw.RawData` of them.

    Args:
        arrays: ``(X, y)``, ``(X_train, y_train, X_test, y_test)`` or a mapping
            with those keys; numpy arrays, tensors or nested lists.
        task: ``"classification"`` or ``"regression"``.
        test_fraction: test share when only ``(X, y)`` is given.
        seed: seed of that split.
        where: what the arrays are, for messages (a file path, ``"data"``).
        columns: feature names, for the description.

    Returns:
        The raw data, labels mapped to ``0..C-1`` for classification.

    Raises:
        DatasetFileError: (a ``ValueError``) naming ``where`` and the problem.
    """
    label = f"data file {str(where)!r}" if isinstance(where, Path) else str(where)
    if task not in TASKS:
        raise ValueError(f"invalid task={task!r}: expected one of {', '.join(map(repr, TASKS))}")
    if isinstance(arrays, dict):
        arrays = _arrays_from_mapping(arrays, where)
    if not isinstance(arrays, (tuple, list)) or len(arrays) not in (2, 4):
        raise DatasetFileError(
            f"{label}: expected (X, y) or (X_train, y_train, X_test, y_test), got "
            f"{type(arrays).__name__}{' of length ' + str(len(arrays)) if hasattr(arrays, '__len__') else ''}"
        )
    names = ("X", "y") if len(arrays) == 2 else _SPLIT_KEYS
    arrs = [_as_array(a, n, label) for a, n in zip(arrays, names)]
    csv_lines = isinstance(where, Path) and where.suffix.lower() == ".csv"
    Xs = [_check_features(arrs[i], names[i], label, csv_lines) for i in range(0, len(arrs), 2)]
    ys = [arrs[i] for i in range(1, len(arrs), 2)]
    for X, y, xn, yn in zip(Xs, ys, names[0::2], names[1::2]):
        if y.ndim == 0 or len(y) != len(X):
            got = "a scalar" if y.ndim == 0 else f"{len(y)} rows"
            raise DatasetFileError(f"{label}: mismatched lengths: {xn} has {len(X)} rows but {yn} has {got}")
    if len(Xs) == 2 and Xs[0].shape[1:] != Xs[1].shape[1:]:
        raise DatasetFileError(
            f"{label}: X_train has samples of shape {Xs[0].shape[1:]} but X_test of shape {Xs[1].shape[1:]}"
        )
    class_names: tuple[str, ...] | None = None
    if task == "classification":
        for y, yn in zip(ys, names[1::2]):
            if y.ndim > 1 and not (y.ndim == 2 and y.shape[1] == 1):
                raise DatasetFileError(f"{label}: {yn} has shape {y.shape}, expected one class label per sample")
        ys, class_names = _label_ids(ys, label, names[1::2])
    else:
        ys = [_regression_targets(y, yn, label) for y, yn in zip(ys, names[1::2])]
    if len(Xs) == 1:
        X, y = Xs[0], ys[0]
        if len(X) < 2:
            raise DatasetFileError(f"{label}: only {len(X)} sample; need at least 2 to split into train and test")
        train, test = split_indices(len(X), test_fraction, seed, y if class_names else None)
        if len(test) == 0:
            raise DatasetFileError(
                f"{label}: no class has two samples, so there is nothing to put in a stratified test split"
            )
        split = f"split {len(train)}/{len(test)} by test_fraction={test_fraction:g}, seed {seed}" + (
            ", stratified" if class_names else ""
        )
        Xtr, ytr, Xte, yte = X[train], y[train], X[test], y[test]
    else:
        (Xtr, Xte), (ytr, yte) = Xs, ys
        split = f"the file's split {len(Xtr)}/{len(Xte)}"
    source = f"{where}" + (f" ({len(columns)} feature columns)" if columns else "") + f"; {split}"
    if class_names is not None:
        source += f"; classes {_fmt_classes(class_names)}"
    return RawData(
        Xtr,
        ytr,
        Xte,
        yte,
        input_shape=tuple(Xtr.shape[1:]),
        num_classes=None if class_names is None else len(class_names),
        source=source,
        class_names=class_names,
    )


def _fmt_classes(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(f"{i}={n}" for i, n in enumerate(names[:limit]))
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
