"""Steps applied to every dataset after loading: checks, subsampling, scaling.

All statistics come from the *training* split only and are then applied to
both splits, so nothing about the test set leaks into preprocessing.
Reductions accumulate in float64 whatever the output dtype, so float32 (or
half precision) results are as accurate as their dtype allows.
"""

from __future__ import annotations

import numpy as np
import torch

STANDARDIZE_MODES = ("feature", "global", "none")

# A feature whose train standard deviation is below this (relative to its
# mean) is treated as constant: it is set to 0 instead of being divided by ~0.
_ZERO_STD_RTOL = 1e-12


def check_finite(name: str, array: np.ndarray) -> None:
    """Raise ``ValueError`` if a float array holds NaN or infinity.

    Args:
        name: what the array is, for the message (e.g. ``"mnist X_train"``).
        array: the array; integer arrays always pass.
    """
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} contains {bad} NaN or infinite values")


def check_labels(name: str, labels: np.ndarray, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``labels`` are integer class ids in ``0 .. num_classes - 1``.

    Args:
        name: what the labels are, for the message.
        labels: the label array.
        num_classes: number of classes.
    """
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name} has labels outside 0..{num_classes - 1} (min {labels.min()}, max {labels.max()})")


def subsample_indices(n_available: int, n: int, generator: torch.Generator) -> np.ndarray:
    """A random subset of ``range(n_available)`` of size ``n``.

    Args:
        n_available: size of the full split.
        n: size of the subset, ``1 <= n <= n_available``.
        generator: source of randomness; the global torch RNG is never used.

    Returns:
        Sorted int64 indices (the subset keeps the original order).  For a
        given generator state, the subsets of different sizes are nested.
    """
    perm = torch.randperm(n_available, generator=generator)
    return np.sort(perm[:n].numpy())


def standardize(X_train: torch.Tensor, X_test: torch.Tensor, mode: str) -> None:
    """Standardize both splits in place with statistics of ``X_train``.

    Args:
        X_train: contiguous float tensor ``(n, ...)``; modified in place.
        X_test: contiguous float tensor ``(m, ...)`` of the same feature shape; modified in place.
        mode: ``"feature"``: z-score every feature (population std, ddof=0);
            features constant on the training split become 0 in both splits
            (they carry no information, and dividing by 0 would give NaN).
            ``"global"``: subtract one mean and divide by one std computed over
            all training entries.  ``"none"``: leave the values unchanged.
    """
    if mode not in STANDARDIZE_MODES:
        raise ValueError(f"invalid standardize={mode!r}: expected one of {', '.join(map(repr, STANDARDIZE_MODES))}")
    if mode == "none":
        return
    n = X_train.shape[0]
    # view() (not reshape) so a non-contiguous input fails loudly instead of
    # silently standardizing a copy.
    train = X_train.view(n, -1) if mode == "feature" else X_train.view(1, -1)
    test = X_test.view(X_test.shape[0], -1) if mode == "feature" else X_test.view(1, -1)
    count = train.shape[0] if mode == "feature" else train.shape[1]
    dim = 0 if mode == "feature" else 1
    mean = train.sum(dim=dim, dtype=torch.float64) / count
    shift = mean.to(X_train.dtype).unsqueeze(dim)
    train.sub_(shift)
    test.sub_(shift)
    # The std is taken from the centered data actually stored, so the train
    # split ends with mean ~0 and std ~1 to the precision of its dtype.
    std = torch.linalg.vector_norm(train, dim=dim, dtype=torch.float64) / count**0.5
    constant = std <= _ZERO_STD_RTOL * (1.0 + mean.abs())
    scale = torch.where(constant, torch.ones_like(std), std).to(X_train.dtype).unsqueeze(dim)
    train.div_(scale)
    test.div_(scale)
    if bool(constant.any()):
        keep = (~constant).to(X_train.dtype).unsqueeze(dim)
        train.mul_(keep)
        test.mul_(keep)


def unit_normalize(X: torch.Tensor, name: str) -> None:
    """Scale every flattened row of ``X`` to Euclidean norm 1, in place.

    Args:
        X: contiguous float tensor ``(n, ...)``; modified in place.
        name: what ``X`` is, for the error message (e.g. ``"X_train"``).

    Raises:
        ValueError: if a row is all zeros (it has no direction to keep).
    """
    rows = X.view(X.shape[0], -1)  # a view, so the division below updates X
    norms = torch.linalg.vector_norm(rows, dim=1, dtype=torch.float64)
    zero = norms == 0
    if bool(zero.any()):
        first = int(torch.nonzero(zero)[0, 0])
        raise ValueError(
            f"unit_norm=True: {int(zero.sum())} row(s) of {name} have zero norm after "
            f"standardization (first: row {first}); they cannot be scaled to norm 1"
        )
    rows.div_(norms.to(X.dtype).unsqueeze(1))
