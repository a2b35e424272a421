"""Standardization, unit norm, subsampling and the fixed split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from beyondsgd.data import load_dataset, registry
from beyondsgd.data.raw import RawData, fixed_split
from beyondsgd.data.registry import DatasetSpec
from beyondsgd.data.transforms import standardize, unit_normalize


def test_feature_standardization_on_digits():
    data = load_dataset("digits")
    X, X_test = data.flat()
    std = X.std(0, unbiased=False)
    constant = std == 0
    assert constant.any()  # digits has pixels that are always blank
    assert X.mean(0).abs().max() < 1e-5
    assert (std[~constant] - 1).abs().max() < 1e-5
    # Constant train features become exactly 0 in both splits, never NaN.
    assert (X[:, constant] == 0).all() and (X_test[:, constant] == 0).all()
    assert torch.isfinite(X_test).all()


def test_standardize_uses_train_statistics_only():
    X_train = torch.tensor([[1.0, 5.0, 0.0], [3.0, 5.0, 2.0]])
    X_test = torch.tensor([[2.0, 7.0, 4.0]])
    standardize(X_train, X_test, "feature")
    torch.testing.assert_close(X_train, torch.tensor([[-1.0, 0.0, -1.0], [1.0, 0.0, 1.0]]))
    torch.testing.assert_close(X_test, torch.tensor([[0.0, 0.0, 3.0]]))


def test_global_standardization():
    data = load_dataset("digits", standardize="global", dtype=torch.float64)
    assert abs(float(data.X_train.mean())) < 1e-10
    assert abs(float(data.X_train.std(unbiased=False)) - 1) < 1e-10
    raw = load_dataset("digits", standardize="none", dtype=torch.float64)
    mean, std = raw.X_train.mean(), raw.X_train.std(unbiased=False)
    torch.testing.assert_close(data.X_train, (raw.X_train - mean) / std)
    torch.testing.assert_close(data.X_test, (raw.X_test - mean) / std)  # train statistics on test


def test_standardize_none_leaves_non_images_untouched():
    a = load_dataset("teacher", standardize="none", dtype=torch.float64, n_samples=50)
    assert abs(float(a.X_train.mean())) > 1e-4  # N(0, 1) samples, not re-centred
    b = load_dataset("teacher", standardize="feature", dtype=torch.float64, n_samples=50)
    assert not torch.allclose(a.X_train, b.X_train)


@pytest.mark.parametrize("mode", ["feature", "global", "none"])
def test_unit_norm_rows(mode):
    data = load_dataset("digits", standardize=mode, unit_norm=True, n_train=200, n_test=100)
    for X in data.flat():
        torch.testing.assert_close(X.norm(dim=1), torch.ones(len(X)))


def test_unit_norm_zero_row():
    X = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="unit_norm.*zero norm.*row 1"):
        unit_normalize(X, "X_train")


def _fake_spec(monkeypatch, X_train, X_test=None):
    X_test = X_train if X_test is None else X_test
    raw = RawData(
        X_train,
        np.zeros(len(X_train), dtype=np.int64),
        X_test,
        np.zeros(len(X_test), dtype=np.int64),
        input_shape=X_train.shape[1:],
        num_classes=2,
        source="test data",
    )
    monkeypatch.setitem(registry._SPECS, "fake", DatasetSpec("fake", "test data", lambda request: raw))


def test_load_dataset_rejects_zero_rows_with_unit_norm(monkeypatch):
    _fake_spec(monkeypatch, np.array([[1.0, 2.0], [0.0, 0.0]]))
    assert load_dataset("fake", standardize="none").n_train == 2  # fine without unit_norm
    with pytest.raises(ValueError, match="unit_norm"):
        load_dataset("fake", standardize="none", unit_norm=True)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data_is_rejected(monkeypatch, bad):
    _fake_spec(monkeypatch, np.array([[1.0, bad], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_dataset("fake")


def test_subsampling_is_deterministic_and_seed_dependent():
    a = load_dataset("digits", n_train=100, n_test=50, seed=1)
    b = load_dataset("digits", n_train=100, n_test=50, seed=1)
    c = load_dataset("digits", n_train=100, n_test=50, seed=2)
    torch.testing.assert_close(a.X_train, b.X_train)
    assert torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.X_train, c.X_train)
    assert (a.n_train, a.n_test) == (100, 50)
    assert "random 100/1437 train subset" in a.source


def test_subsets_are_nested_and_test_subset_ignores_n_train():
    full = load_dataset("digits", standardize="none")
    rows = {tuple(r) for r in full.flat()[0].tolist()}
    small = load_dataset("digits", n_train=50, n_test=30, seed=5, standardize="none")
    large = load_dataset("digits", n_train=300, n_test=30, seed=5, standardize="none")
    assert {tuple(r) for r in small.flat()[0].tolist()} <= {tuple(r) for r in large.flat()[0].tolist()} <= rows
    torch.testing.assert_close(small.X_test, large.X_test)
    only_test = load_dataset("digits", n_test=30, seed=5, standardize="none")
    torch.testing.assert_close(only_test.X_test, small.X_test)


def test_subsampling_leaves_global_torch_rng_alone():
    torch.manual_seed(3)
    state = torch.get_rng_state()
    load_dataset("digits", n_train=10, n_test=10, seed=11)
    assert torch.equal(torch.get_rng_state(), state)


def test_fixed_split():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    train, test = fixed_split(100, 0.2, labels)
    assert len(test) == 20 and len(train) == 80
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    assert np.bincount(labels[test]).tolist() == [10, 6, 4]
    again = fixed_split(100, 0.2, labels)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    plain_train, plain_test = fixed_split(7, 0.2)
    assert len(plain_test) == 2 and len(set(plain_train) | set(plain_test)) == 7


@settings(max_examples=40, deadline=None, database=None)
@given(
    X=hnp.arrays(
        np.float64, st.tuples(st.integers(2, 12), st.integers(1, 5)), elements=st.floats(-1e3, 1e3, allow_nan=False)
    ),
    mode=st.sampled_from(["feature", "global"]),
)
def test_standardize_property(X, mode):
    X_train = torch.tensor(X)
    X_test = X_train.flip(0).clone()
    standardize(X_train, X_test, mode)
    assert torch.isfinite(X_train).all() and torch.isfinite(X_test).all()
    means = X_train.mean(0) if mode == "feature" else X_train.mean().reshape(1)
    stds = X_train.std(0, unbiased=False) if mode == "feature" else X_train.std(unbiased=False).reshape(1)
    assert means.abs().max() < 1e-6
    assert (((stds - 1).abs() < 1e-6) | (stds == 0)).all()


def test_labels_out_of_range_are_rejected(monkeypatch):
    X = np.ones((3, 2))
    raw = RawData(X, np.array([0, 1, 2]), X, np.array([0, 1, 1]), input_shape=(2,), num_classes=2, source="t")
    monkeypatch.setitem(registry._SPECS, "fake", DatasetSpec("fake", "test data", lambda request: raw))
    with pytest.raises(ValueError, match="fake y_train has labels outside 0..1"):
        load_dataset("fake")
