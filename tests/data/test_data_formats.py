"""IDX and CIFAR-10 parsers on tiny files written by the tests."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

from beyondsgd.data.formats import parse_idx, read_cifar10_archive, read_idx


@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([7, 0, 255], dtype=np.uint8),
        np.array([-5, 1 << 20, 3], dtype=np.int32),
        np.linspace(-1, 1, 6).reshape(2, 3),
        np.array([[1.5, -2.25]], dtype=np.float32),
    ],
)
@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, write_idx, array, gz):
    path = write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), array, gz=gz)
    out = read_idx(path)
    assert out.shape == array.shape
    assert out.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(out, array)
    out[...] = 0  # the result must be a writable, independent array


def test_idx_hand_written_bytes():
    # 0x0000, type 0x08 (ubyte), 1 dimension of size 3, then the bytes 1 2 3.
    np.testing.assert_array_equal(parse_idx(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3])), [1, 2, 3])
    # Type 0x0B (int16), dims 2 x 1 (big-endian), values 0x0102 = 258 and 0xFFFE = -2.
    data = bytes([0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 1, 1, 2, 0xFF, 0xFE])
    np.testing.assert_array_equal(parse_idx(data), [[258], [-2]])


@settings(max_examples=30, deadline=None, database=None)
@given(array=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)))
def test_idx_round_trip_property(idx_encode, array):
    out = parse_idx(idx_encode(array))
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)


def test_idx_truncated_raises_with_file_name(tmp_path, idx_encode):
    data = idx_encode(np.zeros((4, 28, 28), dtype=np.uint8))
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*truncated"):
        read_idx(bad)


def test_idx_trailing_bytes_raise(idx_encode):
    with pytest.raises(ValueError, match="x.idx.*trailing"):
        parse_idx(idx_encode(np.zeros(3, dtype=np.uint8)) + b"\0", "x.idx")


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x08\x03", "too short"),
        (b"\x00\x01\x08\x01\x00\x00\x00\x01\x05", "magic"),  # second byte must be 0
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "magic"),  # unknown type code
        (b"\x00\x00\x08\x00", "magic"),  # zero dimensions
        (b"\x00\x00\x08\x03\x00\x00\x00\x01", "header"),  # dims cut short
    ],
)
def test_idx_garbled_raises(tmp_path, data, match):
    path = tmp_path / "bad.idx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=rf"bad\.idx.*{match}"):
        read_idx(path)


def test_idx_damaged_gzip_raises(tmp_path, idx_encode):
    blob = gzip.compress(idx_encode(np.arange(5000, dtype=np.uint8) % 7))
    bad = tmp_path / "cut.gz"
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz"):
        read_idx(bad)
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"cut\.gz"):
        read_idx(bad)


def test_cifar_archive(tmp_path, cifar_batches, cifar_tar_encode):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(cifar_tar_encode(cifar_batches, extra={"readme.html": b"<html/>"}))
    X_train, y_train, X_test, y_test = read_cifar10_archive(path)
    assert X_train.shape == (10, 3, 32, 32) and X_train.dtype == np.uint8
    assert X_test.shape == (3, 3, 32, 32)
    assert y_train.dtype == np.int64 and y_train.shape == (10,)
    # Train batches are concatenated in order 1..5.
    expected = np.concatenate([cifar_batches[f"data_batch_{i}"][1] for i in range(1, 6)])
    np.testing.assert_array_equal(y_train, expected)
    np.testing.assert_array_equal(y_test, cifar_batches["test_batch"][1])
    # Each row holds 1024 red, then 1024 green, then 1024 blue values, row-major.
    row = cifar_batches["data_batch_2"][0][1]
    image = X_train[3]
    assert image[0, 0, 0] == row[0] and image[0, 0, 1] == row[1] and image[0, 1, 0] == row[32]
    assert image[1, 0, 0] == row[1024] and image[2, 31, 31] == row[3071]


def test_cifar_missing_batch(tmp_path, cifar_batches, cifar_tar_encode):
    del cifar_batches["data_batch_3"]
    path = tmp_path / "c.tar.gz"
    path.write_bytes(cifar_tar_encode(cifar_batches))
    with pytest.raises(ValueError, match="data_batch_3"):
        read_cifar10_archive(path)


def test_cifar_bad_batch_content(tmp_path, cifar_batches, cifar_tar_encode):
    cifar_batches["test_batch"] = (np.zeros((2, 100), dtype=np.uint8), [0, 1])
    path = tmp_path / "c.tar.gz"
    path.write_bytes(cifar_tar_encode(cifar_batches))
    with pytest.raises(ValueError, match="test_batch.*shape"):
        read_cifar10_archive(path)


def test_cifar_garbled_pickle_and_archive(tmp_path, cifar_batches, cifar_tar_encode):
    path = tmp_path / "c.tar.gz"
    path.write_bytes(cifar_tar_encode({}, extra={"data_batch_1": pickle.dumps([1, 2])[:-3]}))
    with pytest.raises(ValueError, match="data_batch_1"):
        read_cifar10_archive(path)
    path.write_bytes(cifar_tar_encode(cifar_batches)[:2000])
    with pytest.raises(ValueError, match=r"c\.tar\.gz"):
        read_cifar10_archive(path)
    path.write_bytes(b"plain text, not an archive")
    with pytest.raises(ValueError, match=r"c\.tar\.gz"):
        read_cifar10_archive(path)
