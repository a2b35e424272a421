"""Fetching files into the data cache, with checksum verification.

Guarantees: a file is only ever used after its md5 matched; a download goes to
a temporary file in the target directory and is moved into place atomically
(``os.replace``) only once verified, so an interrupted or wrong download never
leaves a file that looks valid.  Failures raise :class:`DatasetUnavailableError`
with instructions to place the files by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from beyondsgd.data.errors import DatasetUnavailableError
from beyondsgd.data.sources import RemoteFile

log = logging.getLogger(__name__)

ENV_VAR = "BEYONDSGD_DATA"
DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
_USER_AGENT = "beyondsgd-data/0.1 (python urllib)"


def default_data_dir() -> Path:
    """Root folder of downloaded data when no ``data_dir`` is passed.

    Returns:
        ``$BEYONDSGD_DATA`` if that environment variable is set and non-empty,
        else ``<user cache dir>/beyondsgd/data`` (from ``platformdirs``).
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("beyondsgd")) / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` if given, else :func:`default_data_dir`."""
    return default_data_dir() if data_dir is None else Path(data_dir).expanduser()


def file_md5(path: Path) -> str:
    """md5 hex digest of a file, read in chunks (CIFAR-10 is 170 MB)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class _FetchError(Exception):
    """A download attempt failed; the message says why."""


def _fetch_one(url: str, dest: Path, md5: str) -> None:
    """Download ``url`` to ``dest`` if its md5 matches; otherwise leave nothing behind."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            for block in iter(lambda: response.read(_CHUNK), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != md5:
            raise _FetchError(f"{url}: checksum mismatch (md5 {digest.hexdigest()}, expected {md5})")
        os.replace(tmp, dest)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # OSError covers URLError/HTTPError/timeouts; ValueError an unknown URL type.
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise _FetchError(f"{url}: {reason}") from exc
    finally:
        tmp.unlink(missing_ok=True)  # no-op after a successful os.replace


def _fetch(remote: RemoteFile, dest: Path) -> None:
    """Try every mirror of ``remote`` in turn; raise ``_FetchError`` if all fail."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in remote.urls:
        log.info("downloading %s -> %s", url, dest)
        try:
            _fetch_one(url, dest, remote.md5)
            return
        except _FetchError as exc:
            log.info("download failed: %s", exc)  # the final error lists every failure
            errors.append(str(exc))
    raise _FetchError("; ".join(errors) or "no URL known")


def ensure_files(
    dataset: str,
    files: Mapping[str, RemoteFile],
    directory: Path,
    download: bool,
    data_root: Path | None = None,
) -> dict[str, Path]:
    """Make sure every file of a dataset is present in ``directory`` and verified.

    Present files are re-verified (md5) on every call.  A missing file is
    downloaded when ``download`` is true; a corrupt one (wrong md5) is replaced
    by a fresh verified download when allowed, and never used.

    Args:
        dataset: dataset name, for messages.
        files: file name -> where to get it and its md5.
        directory: folder holding the files (created only when downloading).
        download: whether the network may be used.
        data_root: the data root ``directory`` lives in, for the message.

    Returns:
        File name -> path of the verified file.

    Raises:
        DatasetUnavailableError: listing every file still missing or corrupt,
            its URL(s), the exact directory to put it in, and why.
    """
    paths = {}
    problems: dict[str, str] = {}
    for name, remote in files.items():
        path = directory / name
        paths[name] = path
        if path.is_file():
            actual = file_md5(path)
            if actual == remote.md5:
                continue
            problem = (
                f"corrupt: {path} has md5 {actual}, expected {remote.md5}; delete it or replace it with a good copy"
            )
        else:
            problem = "missing"
        if not download:
            problems[name] = problem + " (download=False)"
            continue
        try:
            _fetch(remote, path)  # replaces a corrupt file only once the new one is verified
        except _FetchError as exc:
            problems[name] = f"{problem}; download failed: {exc}"
    if problems:
        raise DatasetUnavailableError(_unavailable_message(dataset, files, directory, problems, data_root))
    return paths


def _unavailable_message(
    dataset: str,
    files: Mapping[str, RemoteFile],
    directory: Path,
    problems: Mapping[str, str],
    data_root: Path | None,
) -> str:
    lines = [f"dataset {dataset!r} is not available: {len(problems)} file(s) missing or corrupt in {directory}"]
    for name, problem in problems.items():
        lines.append(f"  - {name}: {problem}")
        lines.append(f"      URL: {' or '.join(files[name].urls)}")
        lines.append(f"      md5: {files[name].md5}")
    lines.append(f"To fix: download each file above (unchanged, not extracted) and put it in:\n  {directory}")
    lines.append("or call load_dataset(..., download=True) on a machine with network access.")
    root = f" (here: {data_root})" if data_root is not None else ""
    lines.append(
        f"The data root{root} is the data_dir argument if given, else the {ENV_VAR} "
        f"environment variable, else {Path(platformdirs.user_cache_dir('beyondsgd')) / 'data'}; "
        f"each dataset uses a subfolder named after it."
    )
    return "\n".join(lines)
