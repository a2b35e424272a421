"""Download, checksum and cache logic, served from local files through file:// URLs."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from beyondsgd.data import DatasetUnavailableError, default_data_dir, load_dataset, sources
from beyondsgd.data.download import ENV_VAR

MNIST_NAMES = list(sources.MNIST_FILES.values())


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_then_reuse_cache(tmp_path, fake_mnist, count_urlopen):
    cache = tmp_path / "cache"
    data = load_dataset("mnist", data_dir=cache, standardize="none")
    assert len(count_urlopen) == 4
    assert _leftovers(cache / "mnist") == sorted(MNIST_NAMES)  # no temporary files left
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert (data.n_train, data.n_test) == (12, 6)
    images = fake_mnist.arrays["train-images-idx3-ubyte.gz"]
    torch.testing.assert_close(data.X_train[:, 0], torch.tensor(images, dtype=torch.float32) / 255)
    np.testing.assert_array_equal(data.y_train.numpy(), fake_mnist.arrays["train-labels-idx1-ubyte.gz"])
    assert data.y_test.dtype == torch.int64

    # Second load: everything verified from the cache, nothing fetched.
    again = load_dataset("mnist", data_dir=cache, standardize="none", download=False)
    assert len(count_urlopen) == 4
    torch.testing.assert_close(again.X_test, data.X_test)


def test_standardized_download(tmp_path, fake_mnist):
    data = load_dataset("MNIST", data_dir=tmp_path / "cache", n_train=10, seed=3)
    assert data.n_train == 10
    assert data.X_train.flatten(1).mean(0).abs().max() < 1e-5


def test_fashion_alias_and_own_folder(tmp_path, fake_fashion):
    data = load_dataset("fashion_mnist", data_dir=tmp_path / "cache")
    assert data.name == "fashion-mnist"
    assert _leftovers(tmp_path / "cache" / "fashion-mnist") == sorted(MNIST_NAMES)


def test_cifar10_from_archive(tmp_path, fake_cifar, cifar_batches):
    data = load_dataset("cifar10", data_dir=tmp_path / "cache", standardize="none")
    assert data.input_shape == (3, 32, 32) and (data.n_train, data.n_test) == (10, 3)
    raw = cifar_batches["test_batch"][0]
    torch.testing.assert_close(data.X_test.flatten(1), torch.tensor(raw, dtype=torch.float32) / 255)
    assert data.y_train.dtype == torch.int64


def test_mirror_fallback(tmp_path, fake_mnist):
    name = "train-labels-idx1-ubyte.gz"
    good = fake_mnist.table[name].urls[0]
    fake_mnist.set_entry(name, urls=[(tmp_path / "nowhere" / name).as_uri(), good])
    assert load_dataset("mnist", data_dir=tmp_path / "cache").n_train == 12


def test_wrong_checksum_is_rejected_and_not_kept(tmp_path, fake_mnist):
    name = "t10k-images-idx3-ubyte.gz"
    fake_mnist.set_entry(name, md5_value="0" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("mnist", data_dir=cache)
    message = str(info.value)
    assert name in message and "checksum mismatch" in message
    assert name not in _leftovers(cache / "mnist")
    assert not any(n.endswith(".part") for n in _leftovers(cache / "mnist"))
    # The other files were fine and stay cached.
    assert "train-images-idx3-ubyte.gz" in _leftovers(cache / "mnist")


def test_corrupt_cached_file(tmp_path, fake_mnist):
    cache = tmp_path / "cache"
    load_dataset("mnist", data_dir=cache)
    corrupt = cache / "mnist" / "train-images-idx3-ubyte.gz"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("mnist", data_dir=cache, download=False)
    message = str(info.value)
    assert "corrupt" in message and str(corrupt) in message and "delete" in message
    # With download allowed the file is replaced by a verified copy.
    assert load_dataset("mnist", data_dir=cache).n_train == 12
    assert corrupt.read_bytes() == (fake_mnist.server / corrupt.name).read_bytes()


def test_corrupt_cached_file_kept_when_redownload_fails(tmp_path, fake_mnist):
    cache = tmp_path / "cache"
    load_dataset("mnist", data_dir=cache)
    corrupt = cache / "mnist" / "train-labels-idx1-ubyte.gz"
    corrupt.write_bytes(b"garbage")
    for file in fake_mnist.server.iterdir():
        file.unlink()
    with pytest.raises(DatasetUnavailableError, match="corrupt.*download failed"):
        load_dataset("mnist", data_dir=cache)


def test_download_disabled_lists_every_file(tmp_path, fake_mnist):
    cache = tmp_path / "empty"
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("mnist", data_dir=cache, download=False)
    message = str(info.value)
    for name in MNIST_NAMES:
        assert name in message
        assert fake_mnist.table[name].urls[0] in message
    assert str(cache / "mnist") in message
    assert ENV_VAR in message and "data_dir" in message
    assert not cache.exists()  # nothing is created when not downloading


def test_network_error_lists_missing_files(tmp_path, fake_mnist):
    for file in fake_mnist.server.iterdir():
        file.unlink()
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("mnist", data_dir=tmp_path / "cache")
    message = str(info.value)
    assert all(name in message for name in MNIST_NAMES)
    assert "download failed" in message
    assert _leftovers(tmp_path / "cache" / "mnist") == []


def test_garbled_file_with_matching_checksum_is_a_value_error(tmp_path, fake_mnist):
    # The md5 only proves the file is the published one; the parser still checks it.
    name = "t10k-labels-idx1-ubyte.gz"
    (fake_mnist.server / name).write_bytes(b"\x1f\x8b not really gzip")
    fake_mnist.set_entry(name, md5_value=hashlib.md5((fake_mnist.server / name).read_bytes()).hexdigest())
    with pytest.raises(ValueError, match=name):
        load_dataset("mnist", data_dir=tmp_path / "cache")


def test_env_var_sets_data_root(tmp_path, monkeypatch, fake_mnist):
    root = tmp_path / "from-env"
    monkeypatch.setenv(ENV_VAR, str(root))
    assert default_data_dir() == root
    load_dataset("mnist")
    assert _leftovers(root / "mnist") == sorted(MNIST_NAMES)
    # An explicit data_dir is searched first; verified copies under $BEYONDSGD_DATA are the fallback
    # (used where they lie, nothing downloaded) ...
    other = tmp_path / "explicit"
    data = load_dataset("mnist", data_dir=str(other))
    assert _leftovers(other / "mnist") == [] and str(root / "mnist") in data.source
    # ... and without them, the download goes into the explicit data_dir.
    monkeypatch.delenv(ENV_VAR)
    data = load_dataset("mnist", data_dir=str(other))
    assert _leftovers(other / "mnist") == sorted(MNIST_NAMES) and str(other / "mnist") in data.source


def test_default_data_dir_without_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    path = default_data_dir()
    assert path.name == "data" and "beyondsgd" in str(path)
    monkeypatch.setenv(ENV_VAR, "")  # empty counts as unset
    assert default_data_dir() == path


def test_real_source_table_is_well_formed():
    assert set(sources.DOWNLOADS) == {"mnist", "fashion-mnist", "cifar10"}
    for files in sources.DOWNLOADS.values():
        for name, remote in files.items():
            assert re.fullmatch(r"[0-9a-f]{32}", remote.md5)
            assert remote.urls and all(url.endswith("/" + name) for url in remote.urls)
    assert set(sources.DOWNLOADS["mnist"]) == set(MNIST_NAMES) == set(sources.DOWNLOADS["fashion-mnist"])
