"""Datasets for beyondsgd: small offline ones, synthetic ones, and downloadable ones.

Everything goes through :func:`load_dataset`, which returns a :class:`Dataset`
of tensors with a fixed train/test split and train-statistics preprocessing::

    from beyondsgd.data import load_dataset
    data = load_dataset("digits", n_train=500, seed=1)
    X_train, X_test = data.flat()

Modules: ``dataset`` (the container), ``registry`` (names, options,
``load_dataset``), ``transforms`` (subsampling and standardization),
``embedded`` / ``synthetic`` / ``downloadable`` (loaders), ``sources`` (URLs
and checksums), ``download`` (fetching and the cache folder), ``formats``
(IDX and CIFAR parsers), ``raw`` (the loaders' return type and the fixed split),
``files`` (your own ``.csv`` / ``.npz`` / ``.pt`` files and arrays). Your own
datasets: ``register_dataset(name, loader)`` or the ``beyondsgd.datasets``
entry-point group.
"""

from beyondsgd.data.dataset import Dataset
from beyondsgd.data.download import default_data_dir
from beyondsgd.data.errors import DatasetUnavailableError
from beyondsgd.data.files import FILE_FORMATS, DatasetFileError, load_file
from beyondsgd.data.registry import (
    available_datasets,
    dataset_description,
    dataset_origin,
    load_dataset,
    register_dataset,
    unregister_dataset,
)

__all__ = [
    "FILE_FORMATS",
    "Dataset",
    "DatasetFileError",
    "DatasetUnavailableError",
    "available_datasets",
    "dataset_description",
    "dataset_origin",
    "default_data_dir",
    "load_dataset",
    "load_file",
    "register_dataset",
    "unregister_dataset",
]
