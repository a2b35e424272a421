"""Fixtures of the data tests: tiny files in the original formats, and a fake download source.

The writers here are independent of the package's parsers (they follow the
published format descriptions), so round trips really test the parsers.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from beyondsgd.data import sources

_IDX_CODES = {
    np.dtype("u1"): 0x08,
    np.dtype("i1"): 0x09,
    np.dtype("i2"): 0x0B,
    np.dtype("i4"): 0x0C,
    np.dtype("f4"): 0x0D,
    np.dtype("f8"): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX: 0x0000, type code, ndim, big-endian uint32 dims, big-endian data."""
    array = np.asarray(array)
    code = _IDX_CODES[array.dtype.newbyteorder("=")]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def cifar_tar_bytes(batches: dict[str, tuple[np.ndarray, list[int]]], extra: dict[str, bytes] | None = None) -> bytes:
    """A cifar-10-python.tar.gz lookalike: each batch a pickled {b"data", b"labels"} dict."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = {
            name: pickle.dumps({b"data": data, b"labels": labels, b"batch_label": name.encode()}, protocol=2)
            for name, (data, labels) in batches.items()
        }
        members.update(extra or {})
        for name, payload in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def idx_encode():
    """Return :func:`idx_bytes` (session scope, so hypothesis tests may use it)."""
    return idx_bytes


@pytest.fixture(scope="session")
def cifar_tar_encode():
    """Return :func:`cifar_tar_bytes`."""
    return cifar_tar_bytes


@pytest.fixture
def write_idx():
    """Return ``write(path, array, gz=True)`` writing an IDX file (gzip if ``gz``)."""

    def write(path: Path, array: np.ndarray, gz: bool = True) -> Path:
        data = idx_bytes(array)
        path.write_bytes(gzip.compress(data) if gz else data)
        return path

    return write


@pytest.fixture
def cifar_batches():
    """Tiny CIFAR batches: 2 images per train batch, 3 in the test batch, distinct values."""
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    out = {}
    for k, name in enumerate(names):
        n = 3 if name == "test_batch" else 2
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        out[name] = (data, [(k + j) % 10 for j in range(n)])
    return out


class FakeSource:
    """Files served from a local folder through file:// URLs, patched into ``sources.DOWNLOADS``."""

    def __init__(self, name: str, server: Path, arrays: dict[str, np.ndarray | bytes], monkeypatch):
        self.name = name
        self.server = server
        self.arrays = arrays
        server.mkdir(parents=True, exist_ok=True)
        table = {}
        for file_name, content in arrays.items():
            path = server / file_name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_bytes(gzip.compress(idx_bytes(content)))
            table[file_name] = sources.RemoteFile((path.as_uri(),), md5(path))
        self.table = table
        monkeypatch.setitem(sources.DOWNLOADS, name, table)

    def set_entry(self, file_name: str, urls=None, md5_value=None) -> None:
        """Change the URL(s) or md5 of one file in the patched table."""
        old = self.table[file_name]
        self.table[file_name] = sources.RemoteFile(tuple(urls) if urls else old.urls, md5_value or old.md5)


def _mnist_like_arrays(seed: int, n_train: int = 12, n_test: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(n_test) % 10).astype(np.uint8),
    }


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch) -> FakeSource:
    """MNIST served from ``tmp_path/server`` (12 train / 6 test random images)."""
    return FakeSource("mnist", tmp_path / "server", _mnist_like_arrays(1), monkeypatch)


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch) -> FakeSource:
    """Fashion-MNIST served from ``tmp_path/fashion-server``."""
    return FakeSource("fashion-mnist", tmp_path / "fashion-server", _mnist_like_arrays(2), monkeypatch)


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch, cifar_batches) -> FakeSource:
    """CIFAR-10 archive (10 train / 3 test images) served from ``tmp_path/cifar-server``."""
    archive = cifar_tar_bytes(cifar_batches, extra={"batches.meta": pickle.dumps({b"label_names": []})})
    return FakeSource("cifar10", tmp_path / "cifar-server", {sources.CIFAR10_FILE: archive}, monkeypatch)


@pytest.fixture
def count_urlopen(monkeypatch):
    """Count calls of ``urllib.request.urlopen`` made by the download module."""
    from beyondsgd.data import download

    calls = []
    real = download.urllib.request.urlopen

    def counting(request, *args, **kwargs):
        calls.append(getattr(request, "full_url", request))
        return real(request, *args, **kwargs)

    monkeypatch.setattr(download.urllib.request, "urlopen", counting)
    return calls
