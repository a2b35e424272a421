"""Where the downloadable datasets come from, and their checksums.

One table, ``DOWNLOADS``: dataset name -> file name -> :class:`RemoteFile`.
Loaders look the table up at call time, so tests can patch entries (e.g. with
``file://`` URLs and the md5 of files they wrote).

The URLs and md5 values are those torchvision uses (``torchvision/datasets/
mnist.py`` and ``cifar.py``); mirrors are tried in order.
"""

from __future__ import annotations

from typing import NamedTuple


class RemoteFile(NamedTuple):
    """One file to fetch: candidate URLs (tried in order), its md5 hex digest, and optionally
    the md5 of its decompressed content.

    ``content_md5`` (for ``.gz`` files) lets a re-compressed copy of the same content pass
    verification, e.g. Debian's ``dataset-fashion-mnist`` package, whose ``.gz`` files were
    re-compressed (different bytes, identical decompressed files).
    """

    urls: tuple[str, ...]
    md5: str
    content_md5: str | None = None


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# The S3 *website* endpoint of Fashion-MNIST serves plain http only; the md5
# check is what guarantees the content.
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)


def _from_mirrors(
    mirrors: tuple[str, ...], md5s: dict[str, str], content_md5s: dict[str, str] | None = None
) -> dict[str, RemoteFile]:
    """Table entries for files that every mirror serves under the same name."""
    content = content_md5s or {}
    return {name: RemoteFile(tuple(m + name for m in mirrors), md5, content.get(name)) for name, md5 in md5s.items()}


# File names of the four IDX files shared by MNIST and Fashion-MNIST.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CIFAR10_FILE = "cifar-10-python.tar.gz"

DOWNLOADS: dict[str, dict[str, RemoteFile]] = {
    "mnist": _from_mirrors(
        _MNIST_MIRRORS,
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": _from_mirrors(
        _FASHION_MIRRORS,
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        # md5 of the decompressed IDX files (the canonical ones of zalandoresearch/fashion-mnist).
        {
            "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
        },
    ),
    "cifar10": _from_mirrors(
        ("https://www.cs.toronto.edu/~kriz/",),
        {
            CIFAR10_FILE: "c58f30108f718f92721af3b95e74349a",
        },
    ),
}

#: Read-only folders searched after the data root, the ``$BEYONDSGD_DATA`` root and the user cache:
#: dataset name -> folders holding its files directly.  ``/usr/share/datasets/fashion-mnist`` is
#: where Debian/Ubuntu's ``dataset-fashion-mnist`` package (``apt-get install dataset-fashion-mnist``)
#: puts the original files, re-compressed (accepted through ``content_md5``).
SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("/usr/share/datasets/fashion-mnist",),
}

#: How to get a dataset from a system package, quoted in the "not available" message.
SYSTEM_PACKAGES: dict[str, str] = {
    "fashion-mnist": "on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist",
}
