"""The synthetic datasets: blobs (classification) and teacher (regression)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beyondsgd.data import load_dataset


def test_blobs_defaults():
    data = load_dataset("blobs")
    assert (data.n_train, data.n_test, data.input_shape, data.num_classes) == (1600, 400, (20,), 5)
    assert data.task == "classification" and data.y_train.dtype == torch.int64
    assert (torch.bincount(data.y_train) == 320).all() and (torch.bincount(data.y_test) == 80).all()
    assert torch.isfinite(data.X_train).all()


def test_blobs_options_and_seed():
    kwargs = dict(n_samples=100, n_features=3, n_classes=2, cluster_std=0.1, standardize="none")
    a = load_dataset("blobs", seed=1, **kwargs)
    assert (a.n_train, a.n_test, a.input_shape, a.num_classes) == (80, 20, (3,), 2)
    torch.testing.assert_close(load_dataset("blobs", seed=1, **kwargs).X_train, a.X_train)
    assert not torch.allclose(load_dataset("blobs", seed=2, **kwargs).X_train, a.X_train)
    # With tiny noise, each class sits tightly around its center.
    for c in range(2):
        assert a.X_train[a.y_train == c].std(0).max() < 0.2


def test_blobs_needs_enough_samples():
    with pytest.raises(ValueError, match="n_samples"):
        load_dataset("blobs", n_samples=5, n_classes=3)


def test_teacher_defaults():
    data = load_dataset("teacher")
    assert data.task == "regression" and data.num_classes is None
    assert data.y_train.shape == (1600, 1) and data.y_test.shape == (400, 1)
    assert data.y_train.dtype == torch.float32 and data.input_shape == (20,)
    assert 0.05 < float(data.y_train.std()) < 5


def test_teacher_targets_untouched_by_standardization_and_noise():
    kwargs = dict(n_samples=200, n_features=5, hidden=4, n_outputs=3, seed=4)
    clean = load_dataset("teacher", **kwargs)
    raw = load_dataset("teacher", standardize="none", **kwargs)
    assert clean.y_train.shape == (160, 3)
    torch.testing.assert_close(clean.y_train, raw.y_train)
    noisy = load_dataset("teacher", noise=0.5, **kwargs)
    torch.testing.assert_close(noisy.X_train, clean.X_train)  # same inputs and teacher
    assert 0.4 < float((noisy.y_train - clean.y_train).std()) < 0.6


def test_synthetic_generation_leaves_global_rngs_alone():
    np.random.seed(0)
    torch.manual_seed(0)
    before = np.random.get_state()[1].copy(), torch.get_rng_state()
    load_dataset("blobs", n_train=50, seed=7)
    load_dataset("teacher", n_train=50, seed=7)
    np.testing.assert_array_equal(np.random.get_state()[1], before[0])
    assert torch.equal(torch.get_rng_state(), before[1])
