"""Synthetic datasets generated from the user's seed: blobs and teacher.

Generation uses a local ``numpy.random.Generator``, never the global RNGs.
The train/test split is a fixed 80/20 split (independent of the seed), as
for the other datasets without a canonical split.
"""

from __future__ import annotations

import numpy as np

from beyondsgd.data.raw import LoadRequest, RawData, fixed_split


def make_blobs(request: LoadRequest) -> RawData:
    """Gaussian blobs: balanced classes around random centers.

    Centers are uniform in ``[-1, 1]^n_features``; each sample is its class
    center plus isotropic Gaussian noise of std ``cluster_std``.  With the
    defaults the classes overlap a little, so accuracy does not saturate.

    Args:
        request: ``seed`` and options ``n_samples``, ``n_features``,
            ``n_classes``, ``cluster_std``.

    Returns:
        Features ``(n, n_features)`` and labels, stratified 80/20 split.
    """
    opts = request.options
    n, d, k = opts["n_samples"], opts["n_features"], opts["n_classes"]
    if n < 2 * k:
        raise ValueError(f"invalid n_samples={n} for dataset 'blobs': need at least 2 * n_classes = {2 * k}")
    rng = np.random.default_rng(request.seed)
    centers = rng.uniform(-1.0, 1.0, size=(k, d))
    y = rng.permutation(np.arange(n) % k)
    X = centers[y] + opts["cluster_std"] * rng.standard_normal((n, d))
    train, test = fixed_split(n, 0.2, labels=y)
    return RawData(
        X[train],
        y[train],
        X[test],
        y[test],
        input_shape=(d,),
        num_classes=k,
        source=(
            f"synthetic Gaussian blobs (seed {request.seed}: {n} samples, {d} features, "
            f"{k} classes, cluster_std {opts['cluster_std']:g}), fixed stratified 80/20 split"
        ),
    )


def make_teacher(request: LoadRequest) -> RawData:
    """Teacher-student regression: targets of a random two-layer tanh network.

    ``x ~ N(0, I)``; ``y = tanh(x W1) W2 + noise * eps`` with ``W1 ~ N(0, 1/n_features)``,
    ``W2 ~ N(0, 1/hidden)`` (no biases) and ``eps ~ N(0, I)`` on both splits.
    The teacher is drawn from ``seed`` along with the inputs.

    Args:
        request: ``seed`` and options ``n_samples``, ``n_features``, ``hidden``,
            ``n_outputs``, ``noise``.

    Returns:
        Inputs ``(n, n_features)`` and float targets ``(n, n_outputs)``, fixed 80/20 split.
    """
    opts = request.options
    n, d, h, k = opts["n_samples"], opts["n_features"], opts["hidden"], opts["n_outputs"]
    rng = np.random.default_rng(request.seed)
    W1 = rng.standard_normal((d, h)) / np.sqrt(d)
    W2 = rng.standard_normal((h, k)) / np.sqrt(h)
    X = rng.standard_normal((n, d))
    y = np.tanh(X @ W1) @ W2 + opts["noise"] * rng.standard_normal((n, k))
    train, test = fixed_split(n, 0.2)
    return RawData(
        X[train],
        y[train],
        X[test],
        y[test],
        input_shape=(d,),
        num_classes=None,
        source=(
            f"synthetic teacher-student regression (seed {request.seed}: {n} samples, {d} features, "
            f"tanh teacher with {h} hidden units and {k} output(s), noise {opts['noise']:g}), fixed 80/20 split"
        ),
    )
