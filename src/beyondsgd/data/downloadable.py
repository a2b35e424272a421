"""Loaders of the datasets fetched from the network: mnist, fashion-mnist, cifar10.

Each dataset keeps its files, exactly as published, in ``<data root>/<name>/``; verified copies
elsewhere (``$BEYONDSGD_DATA``, the user cache, system folders such as Debian's
``/usr/share/datasets/fashion-mnist``) are used where they lie, see
:func:`beyondsgd.data.download.search_dirs`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beyondsgd.data import sources
from beyondsgd.data.download import ensure_files, search_dirs
from beyondsgd.data.formats import read_cifar10_archive, read_idx
from beyondsgd.data.raw import LoadRequest, RawData


def _files(name: str, request: LoadRequest) -> dict[str, Path]:
    # Look the table up now (not at import) so that tests can patch it.
    directory = request.data_dir / name
    fallbacks = search_dirs(name, request.data_dir)
    return ensure_files(name, sources.DOWNLOADS[name], directory, request.download, request.data_dir, fallbacks)


def _folders(paths: dict[str, Path]) -> str:
    return ", ".join(sorted({str(p.parent) for p in paths.values()}))


def _check_labels(name: str, labels: np.ndarray, n_images: int) -> np.ndarray:
    # The label range is checked for every dataset by load_dataset.
    if labels.shape != (n_images,):
        raise ValueError(f"{name}: {labels.shape} labels for {n_images} images")
    return labels.astype(np.int64)


def _read_idx_split(paths: dict[str, Path], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 1, 28, 28)`` and int64 labels of one split (prefix ``train`` or ``t10k``)."""
    image_file, label_file = paths[f"{prefix}-images-idx3-ubyte.gz"], paths[f"{prefix}-labels-idx1-ubyte.gz"]
    images = read_idx(image_file)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{image_file}: expected uint8 images (n, 28, 28), got {images.dtype} {images.shape}")
    labels = _check_labels(str(label_file), read_idx(label_file), len(images))
    return images[:, None], labels


def _load_idx_dataset(name: str, request: LoadRequest, title: str) -> RawData:
    paths = _files(name, request)
    X_train, y_train = _read_idx_split(paths, "train")
    X_test, y_test = _read_idx_split(paths, "t10k")
    return RawData(
        X_train,
        y_train,
        X_test,
        y_test,
        input_shape=(1, 28, 28),
        num_classes=10,
        source=f"{title} IDX files (md5-verified) in {_folders(paths)}, canonical split",
        pixel_max=255.0,
    )


def load_mnist(request: LoadRequest) -> RawData:
    """MNIST, 60000/10000 images ``(1, 28, 28)`` with values 0..255 (downloaded once)."""
    return _load_idx_dataset("mnist", request, "MNIST")


def load_fashion_mnist(request: LoadRequest) -> RawData:
    """Fashion-MNIST, 60000/10000 images ``(1, 28, 28)`` with values 0..255 (downloaded once)."""
    return _load_idx_dataset("fashion-mnist", request, "Fashion-MNIST")


def load_cifar10(request: LoadRequest) -> RawData:
    """CIFAR-10, 50000/10000 images ``(3, 32, 32)`` with values 0..255 (downloaded once)."""
    paths = _files("cifar10", request)
    archive = paths[sources.CIFAR10_FILE]
    X_train, y_train, X_test, y_test = read_cifar10_archive(archive)
    return RawData(
        X_train,
        y_train,
        X_test,
        y_test,
        input_shape=(3, 32, 32),
        num_classes=10,
        source=f"CIFAR-10 python batches from {archive} (md5-verified), canonical split",
        pixel_max=255.0,
    )
