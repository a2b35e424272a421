"""Public API: names, descriptions, argument validation, and the Dataset container."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import beyondsgd.data as data_pkg
from beyondsgd.data import Dataset, available_datasets, dataset_description, load_dataset

ALL = ["blobs", "cifar10", "digits", "fashion-mnist", "mnist", "mnist1d", "mnist5k", "teacher"]


def test_exports():
    assert set(data_pkg.__all__) == {
        "Dataset",
        "load_dataset",
        "available_datasets",
        "dataset_description",
        "DatasetUnavailableError",
        "default_data_dir",
        "DatasetFileError",
        "load_file",
        "register_dataset",
        "unregister_dataset",
        "FILE_FORMATS",
        "dataset_origin",
    }
    assert issubclass(data_pkg.DatasetUnavailableError, RuntimeError)


def test_available_and_descriptions():
    assert available_datasets() == ALL
    for name in ALL:
        text = dataset_description(name)
        assert text and "\n" not in text
    assert dataset_description("FASHION_MNIST") == dataset_description("fashion-mnist")


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="unknown dataset.*'imagenet'.*digits.*mnist1d"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="name"):
        dataset_description(3)


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        (dict(n_train=0), "n_train"),
        (dict(n_train=-3), "n_train"),
        (dict(n_train=10.0), "n_train"),
        (dict(n_train=True), "n_train"),
        (dict(n_test="5"), "n_test"),
        (dict(standardize="zscore"), "standardize"),
        (dict(standardize=None), "standardize"),
        (dict(unit_norm="yes"), "unit_norm"),
        (dict(download=1), "download"),
        (dict(seed=-1), "seed"),
        (dict(seed=1.5), "seed"),
        (dict(dtype=torch.int64), "dtype"),
        (dict(dtype="float32"), "dtype"),
        (dict(device="no-such-device"), "device"),
        (dict(data_dir=42), "data_dir"),
        (dict(bogus=1), "bogus"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        load_dataset("digits", **kwargs)


def test_subset_larger_than_data_says_how_many_exist():
    with pytest.raises(ValueError, match="n_train=5000.*1437"):
        load_dataset("digits", n_train=5000)
    with pytest.raises(ValueError, match="n_test=361.*360"):
        load_dataset("digits", n_test=361)


def test_options():
    with pytest.raises(ValueError, match="'n_samples'.*digits.*no options"):
        load_dataset("digits", n_samples=10)
    with pytest.raises(ValueError, match="'hiden'.*allowed options: hidden, n_features"):
        load_dataset("teacher", hiden=3)
    with pytest.raises(ValueError, match="n_classes=1"):
        load_dataset("blobs", n_classes=1)
    with pytest.raises(ValueError, match="cluster_std"):
        load_dataset("blobs", cluster_std=0.0)
    with pytest.raises(ValueError, match="noise"):
        load_dataset("teacher", noise=-0.1)


def test_dataset_container():
    data = load_dataset("digits", n_train=20, n_test=10)
    assert (data.n_features, data.n_train, data.n_test) == (64, 20, 10)
    X_train, X_test = data.flat()
    assert X_train.shape == (20, 64) and X_test.shape == (10, 64)
    assert X_train.data_ptr() == data.X_train.data_ptr()  # a view, not a copy
    assert X_train._base is data.X_train
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"
    text = repr(data)
    assert "digits" in text and "n_train=20" in text and len(text) < 300


def test_to_device_returns_copy():
    data = load_dataset("digits", n_train=5, n_test=5)
    moved = data.to("meta")  # a device that exists everywhere, GPU or not
    assert moved is not data and moved.X_train.device.type == "meta" and moved.y_test.device.type == "meta"
    assert data.X_train.device.type == "cpu"
    assert load_dataset("digits", n_train=5, n_test=5, device="cpu").X_train.device.type == "cpu"


def test_dtype_argument():
    data = load_dataset("teacher", n_samples=20, dtype=torch.float64)
    assert data.X_train.dtype == torch.float64 and data.y_train.dtype == torch.float64
    assert load_dataset("digits", n_train=5, dtype=torch.float16).y_train.dtype == torch.int64


def test_dataset_checks_consistency():
    X, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64)
    Dataset("x", X, y, X, y, (3,), 2, "classification", "test")
    with pytest.raises(ValueError, match="X_train"):
        Dataset("x", X, y, X, y, (4,), 2, "classification", "test")
    with pytest.raises(ValueError, match="y_test"):
        Dataset("x", X, y, X, y[:2], (3,), 2, "classification", "test")
    with pytest.raises(ValueError, match="int64"):
        Dataset("x", X, y.float(), X, y, (3,), 2, "classification", "test")
    with pytest.raises(ValueError, match="num_classes"):
        Dataset("x", X, y.float(), X, y.float(), (3,), 2, "regression", "test")
    with pytest.raises(ValueError, match="task"):
        Dataset("x", X, y, X, y, (3,), 2, "clustering", "test")
