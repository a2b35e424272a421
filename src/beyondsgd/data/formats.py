"""Parsers for the original file formats: IDX (MNIST family) and CIFAR-10 batches.

Both raise ``ValueError`` naming the file when the content is truncated or
garbled, so a bad file is reported as such rather than as a numpy reshape
error deep inside a loader.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

# IDX type codes -> big-endian numpy dtypes (MNIST itself only uses 0x08).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
_CIFAR_ROW = 3 * 32 * 32

# Everything a damaged gzip/tar/pickle stream can raise while being read.
_READ_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError)


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode an uncompressed IDX byte string.

    Layout: two zero bytes, a type code byte, the number of dimensions, then
    one big-endian uint32 per dimension, then the values (big-endian, C order).

    Args:
        data: the whole file content.
        name: file name used in error messages.

    Returns:
        A writable array with native byte order and the stored shape.

    Raises:
        ValueError: bad magic number, unknown type code, or a size that does
            not match the header (truncated or trailing data).
    """
    if len(data) < 4:
        raise ValueError(f"{name}: only {len(data)} bytes, too short for an IDX header")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES or data[3] == 0:
        raise ValueError(
            f"{name}: not an IDX file (magic number 0x{data[:4].hex()}; expected 0x0000 "
            f"then a type code in {{{', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}}} and ndim >= 1)"
        )
    dtype, ndim = IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(data)} bytes, need {header} for {ndim} dims)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    count = math.prod(shape)
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(f"{name}: IDX data {what}: {len(data)} bytes, expected {expected} for shape {shape}")
    values = np.frombuffer(data, dtype=dtype, count=count, offset=header)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed if its name ends in ``.gz``.

    Args:
        path: the file.

    Returns:
        The stored array (see :func:`parse_idx`).

    Raises:
        ValueError: the file is not valid gzip or not valid IDX.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path}: damaged gzip data ({exc})") from exc
    return parse_idx(data, str(path))


def read_cifar10_archive(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read CIFAR-10 straight from ``cifar-10-python.tar.gz``, without extracting it.

    The batches are Python pickles, and unpickling can run code: only call this
    on an archive whose checksum was verified (the loaders do).

    Args:
        path: the ``.tar.gz`` archive holding ``data_batch_1`` .. ``data_batch_5``
            and ``test_batch`` (in any folder inside the archive).

    Returns:
        ``(X_train, y_train, X_test, y_test)``: uint8 images of shape
        ``(n, 3, 32, 32)`` and int64 labels, train batches in order 1..5.

    Raises:
        ValueError: the archive is damaged, a batch is missing, or a batch does
            not have the expected content.
    """
    path = Path(path)
    wanted = set(CIFAR10_TRAIN_BATCHES) | {CIFAR10_TEST_BATCH}
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        # Iterating the archive as a stream reads the 170 MB once; random access
        # (getmembers + extractfile) would decompress it twice.
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                base = PurePosixPath(member.name).name
                if member.isfile() and base in wanted:
                    name = f"{path}:{member.name}"
                    batches[base] = _cifar_batch(_unpickle(tar.extractfile(member), name), name)
    except FileNotFoundError:
        raise
    except _READ_ERRORS as exc:
        raise ValueError(f"{path}: damaged CIFAR-10 archive ({type(exc).__name__}: {exc})") from exc
    missing = sorted(wanted - set(batches))
    if missing:
        raise ValueError(f"{path}: CIFAR-10 archive lacks {', '.join(missing)}")
    X_train = np.concatenate([batches[b][0] for b in CIFAR10_TRAIN_BATCHES])
    y_train = np.concatenate([batches[b][1] for b in CIFAR10_TRAIN_BATCHES])
    X_test, y_test = batches[CIFAR10_TEST_BATCH]
    return X_train, y_train, X_test, y_test


def _unpickle(f, name: str) -> object:
    try:
        return pickle.load(f, encoding="bytes")
    except Exception as exc:  # garbled pickles fail with many exception types
        raise ValueError(f"{name}: cannot unpickle batch ({type(exc).__name__}: {exc})") from exc


def _cifar_batch(batch: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one unpickled batch; return images ``(n, 3, 32, 32)`` and labels."""
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{name}: not a CIFAR-10 batch (expected a dict with b'data' and b'labels')")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_ROW:
        raise ValueError(
            f"{name}: b'data' has dtype {data.dtype} and shape {data.shape}, expected uint8 (n, {_CIFAR_ROW})"
        )
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name}: b'labels' has shape {labels.shape}, expected {data.shape[0]} integers")
    # Rows are stored channel-major (1024 red, 1024 green, 1024 blue values).
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)
