"""Verification by the md5 of the decompressed content, and the search order of data folders.

The files are written by the tests; the last test loads the real Fashion-MNIST files installed by
Debian's ``dataset-fashion-mnist`` (required in CI, skipped with a reason elsewhere).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from beyondsgd.data import DatasetUnavailableError, load_dataset, sources
from beyondsgd.data.download import search_dirs, verify_file

NAMES = list(sources.MNIST_FILES.values())


@pytest.fixture
def fashion_with_content(fake_fashion, monkeypatch, tmp_path, idx_encode):
    """fake_fashion whose table also has content md5s, and an empty patched system folder."""
    for name, array in fake_fashion.arrays.items():
        old = fake_fashion.table[name]
        content = hashlib.md5(idx_encode(array)).hexdigest()
        fake_fashion.table[name] = sources.RemoteFile(old.urls, old.md5, content)
    system = tmp_path / "usr-share-datasets" / "fashion-mnist"
    system.mkdir(parents=True)
    monkeypatch.setitem(sources.SYSTEM_DIRS, "fashion-mnist", (str(system),))
    return fake_fashion, system


def _idx(array: np.ndarray) -> bytes:
    # Same encoding as tests/data/conftest.py's idx_bytes (kept inline: conftest is not importable).
    import struct

    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _recompressed(array: np.ndarray) -> bytes:
    return gzip.compress(_idx(array), compresslevel=1, mtime=0)


def test_original_copy_in_system_folder_is_used_without_download(tmp_path, fashion_with_content, count_urlopen):
    fake, system = fashion_with_content
    for name in NAMES:
        (system / name).write_bytes((fake.server / name).read_bytes())
    data = load_dataset("fashion-mnist", data_dir=tmp_path / "root", download=False, standardize="none")
    assert count_urlopen == [] and (data.n_train, data.n_test) == (12, 6)
    assert str(system) in data.source and not (tmp_path / "root" / "fashion-mnist").exists()


def test_recompressed_copy_is_accepted_by_content(tmp_path, fashion_with_content, count_urlopen):
    fake, system = fashion_with_content
    for name in NAMES:
        payload = _recompressed(fake.arrays[name])
        assert hashlib.md5(payload).hexdigest() != fake.table[name].md5  # really different bytes
        (system / name).write_bytes(payload)
    data = load_dataset("fashion-mnist", data_dir=tmp_path / "root", download=False, standardize="none")
    assert count_urlopen == []
    np.testing.assert_array_equal(data.y_train.numpy(), fake.arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(
        (data.X_test[:, 0].numpy() * 255).round().astype(np.uint8), fake.arrays["t10k-images-idx3-ubyte.gz"]
    )


def test_corrupt_recompressed_copy_is_never_used(tmp_path, fashion_with_content, count_urlopen):
    fake, system = fashion_with_content
    for name in NAMES:
        (system / name).write_bytes(_recompressed(fake.arrays[name]))
    bad = "train-images-idx3-ubyte.gz"
    content = bytearray(_idx(fake.arrays[bad]))
    content[100] ^= 0xFF  # one pixel changed, valid gzip around it
    (system / bad).write_bytes(gzip.compress(bytes(content), mtime=0))
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("fashion-mnist", data_dir=tmp_path / "root", download=False)
    msg = str(info.value)
    assert bad in msg and "decompressed md5" in msg and str(system) in msg
    # With the network allowed, the bad copy is skipped and a verified one downloaded into the root.
    data = load_dataset("fashion-mnist", data_dir=tmp_path / "root", standardize="none")
    assert len(count_urlopen) == 1 and (tmp_path / "root" / "fashion-mnist" / bad).is_file()
    assert data.n_train == 12


def test_truncated_copy_is_rejected(tmp_path, fashion_with_content):
    fake, system = fashion_with_content
    name = "t10k-labels-idx1-ubyte.gz"
    payload = _recompressed(fake.arrays[name])
    path = system / name
    path.write_bytes(payload[: len(payload) // 2])
    why = verify_file(path, fake.table[name])
    assert why is not None and "does not decompress" in why
    path.write_bytes(payload[:-4])  # only the length trailer missing: the CRC/length check still fails
    assert verify_file(path, fake.table[name]) is not None
    path.write_bytes(payload)
    assert verify_file(path, fake.table[name]) is None


def test_content_md5_is_only_a_second_chance_for_gzip_copies(tmp_path):
    content = b"hello" * 100
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(content, mtime=0))
    good = hashlib.md5(content).hexdigest()
    assert verify_file(path, sources.RemoteFile(("x",), "0" * 32, good)) is None
    assert "expected" in verify_file(path, sources.RemoteFile(("x",), "0" * 32, None))
    assert verify_file(path, sources.RemoteFile(("x",), hashlib.md5(path.read_bytes()).hexdigest())) is None


def test_data_root_copy_wins_over_system_copy(tmp_path, fashion_with_content, count_urlopen):
    fake, system = fashion_with_content
    for name in NAMES:
        (system / name).write_bytes(_recompressed(fake.arrays[name]))
    root = tmp_path / "root"
    (root / "fashion-mnist").mkdir(parents=True)
    for name in NAMES:
        (root / "fashion-mnist" / name).write_bytes((fake.server / name).read_bytes())
    data = load_dataset("fashion-mnist", data_dir=root, download=False)
    assert str(root / "fashion-mnist") in data.source and str(system) not in data.source


def test_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("BEYONDSGD_DATA", str(tmp_path / "env"))
    dirs = search_dirs("fashion-mnist", tmp_path / "explicit")
    assert dirs[0] == tmp_path / "env" / "fashion-mnist"
    assert dirs[1].parts[-3:] == ("beyondsgd", "data", "fashion-mnist")
    assert dirs[-1] == Path("/usr/share/datasets/fashion-mnist")
    # the data root itself is not repeated
    assert search_dirs("mnist", tmp_path / "env") == [dirs[1].parent / "mnist"]


def test_real_table_has_canonical_content_md5s():
    table = sources.DOWNLOADS["fashion-mnist"]
    assert table["train-images-idx3-ubyte.gz"].content_md5 == "f4a8712d7a061bf5bd6d2ca38dc4d50a"
    assert table["t10k-labels-idx1-ubyte.gz"].content_md5 == "15d484375f8d13e6eb1aabb0c3f46965"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def test_real_fashion_mnist_from_system_package(tmp_path):
    """The real files (apt-get install dataset-fashion-mnist): must be there in CI."""
    system = Path(sources.SYSTEM_DIRS["fashion-mnist"][0])
    if not all((system / n).is_file() for n in NAMES):
        message = f"real Fashion-MNIST not installed in {system} (apt-get install dataset-fashion-mnist)"
        if _in_ci():
            pytest.fail(message + " -- CI must install it")
        pytest.skip(message)
    data = load_dataset("fashion-mnist", data_dir=tmp_path / "empty-root", download=False, standardize="none")
    assert (data.n_train, data.n_test) == (60000, 10000) and data.num_classes == 10
    assert np.bincount(data.y_test.numpy()).tolist() == [1000] * 10
    assert np.bincount(data.y_train.numpy()).tolist() == [6000] * 10
