"""Fetching files into the data cache, with checksum verification.

Guarantees: a file is only ever used after its md5 matched (or, for a ``.gz`` file
whose table entry gives ``content_md5``, after the md5 of its complete decompressed
content matched: a re-compressed copy passes, a corrupt or truncated one never does);
a download goes to
a temporary file in the target directory and is moved into place atomically
(``os.replace``) only once verified, so an interrupted or wrong download never
leaves a file that looks valid.  Failures raise :class:`DatasetUnavailableError`
with instructions to place the files by hand.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from beyondsgd.data import sources
from beyondsgd.data.errors import DatasetUnavailableError
from beyondsgd.data.sources import RemoteFile

log = logging.getLogger(__name__)

ENV_VAR = "BEYONDSGD_DATA"
DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
_USER_AGENT = "beyondsgd-data/0.1 (python urllib)"


def _user_cache_dir() -> Path:
    """The user's cache folder for beyondsgd, from ``platformdirs``.

    Imported here, not at module level, so that the package runs from a source tree on a
    machine without platformdirs (the prepared GPU check, benchmarks/gpu_check.sh); there
    the XDG default ``$XDG_CACHE_HOME/beyondsgd`` (else ``~/.cache/beyondsgd``) is used.
    """
    try:
        import platformdirs
    except ImportError:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "beyondsgd"
    return Path(platformdirs.user_cache_dir("beyondsgd"))


def default_data_dir() -> Path:
    """Root folder of downloaded data when no ``data_dir`` is passed.

    Returns:
        ``$BEYONDSGD_DATA`` if that environment variable is set and non-empty,
        else ``<user cache dir>/beyondsgd/data`` (from ``platformdirs``).
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return _user_cache_dir() / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` if given, else :func:`default_data_dir`."""
    return default_data_dir() if data_dir is None else Path(data_dir).expanduser()


def search_dirs(dataset: str, data_root: Path) -> list[Path]:
    """Folders searched for ``dataset``'s files, in order, after ``<data_root>/<dataset>``.

    Order: ``<data_root>/<dataset>`` (the ``data_dir`` argument, else ``$BEYONDSGD_DATA``, else
    the user cache -- downloads go there), then ``$BEYONDSGD_DATA/<dataset>`` if set, then
    ``<user cache>/beyondsgd/data/<dataset>``, then the system folders of
    :data:`beyondsgd.data.sources.SYSTEM_DIRS` (e.g. ``/usr/share/datasets/fashion-mnist``,
    installed by Debian's ``dataset-fashion-mnist``).  Duplicates are dropped.

    Returns:
        The folders after the first one (the fallbacks), without duplicates.
    """
    primary = data_root / dataset
    out: list[Path] = []
    env = os.environ.get(ENV_VAR, "").strip()
    candidates = [Path(env).expanduser() / dataset] if env else []
    candidates.append(_user_cache_dir() / "data" / dataset)
    candidates.extend(Path(d) for d in sources.SYSTEM_DIRS.get(dataset, ()))
    for c in candidates:
        if c != primary and c not in out:
            out.append(c)
    return out


def file_md5(path: Path) -> str:
    """md5 hex digest of a file, read in chunks (CIFAR-10 is 170 MB)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def gzip_content_md5(path: Path) -> str:
    """md5 hex digest of the decompressed content of a gzip file, read in chunks.

    Raises:
        OSError, EOFError, zlib.error: the file is not gzip, is truncated or its CRC fails
            (``gzip`` checks the CRC-32 and length trailer of every member).
    """
    digest = hashlib.md5(usedforsecurity=False)
    with gzip.open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, remote: RemoteFile) -> str | None:
    """Why ``path`` may not be used as ``remote`` (None when it verifies).

    Accepted: the file's md5 equals ``remote.md5``; or ``remote.content_md5`` is set and the
    md5 of the complete decompressed content equals it (a re-compressed copy).  A truncated,
    non-gzip or otherwise corrupt file is rejected with the reason.
    """
    actual = file_md5(path)
    if actual == remote.md5:
        return None
    if remote.content_md5 is None:
        return f"{path} has md5 {actual}, expected {remote.md5}"
    try:
        content = gzip_content_md5(path)
    except (OSError, EOFError, zlib.error) as exc:
        return f"{path} has md5 {actual} (expected {remote.md5}) and does not decompress ({exc or type(exc).__name__})"
    if content == remote.content_md5:
        return None
    return (
        f"{path} has md5 {actual} (expected {remote.md5}), decompressed md5 {content} (expected {remote.content_md5})"
    )


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
    fallback_dirs: Sequence[Path] = (),
) -> dict[str, Path]:
    """Make sure every file of a dataset is present and verified, in ``directory`` or a fallback.

    Each file is looked up in ``directory`` first, then in each of ``fallback_dirs`` in order;
    the first copy that verifies (:func:`verify_file`) is used where it lies (fallbacks are
    only read).  Present files are re-verified on every call.  When no copy verifies, the
    file is downloaded into ``directory`` if ``download`` is true (a corrupt file there is
    replaced only once the new one is verified); a corrupt copy is never used.

    Args:
        dataset: dataset name, for messages.
        files: file name -> where to get it and its md5 (and content md5).
        directory: the dataset's folder in the data root (created only when downloading).
        download: whether the network may be used.
        data_root: the data root ``directory`` lives in, for the message.
        fallback_dirs: further folders to search, in order (``$BEYONDSGD_DATA``, the user
            cache, system folders such as ``/usr/share/datasets/fashion-mnist``).

    Returns:
        File name -> path of the verified file.

    Raises:
        DatasetUnavailableError: listing every file still missing or corrupt,
            its URL(s), the exact directory to put it in, the folders searched, and why.
    """
    paths = {}
    problems: dict[str, str] = {}
    fallbacks = [Path(d) for d in fallback_dirs if Path(d) != directory]
    for name, remote in files.items():
        path = directory / name
        paths[name] = path
        rejected = []
        problem = "missing"
        if path.is_file():
            why = verify_file(path, remote)
            if why is None:
                continue
            problem = f"corrupt: {why}; delete it or replace it with a good copy"
        found = None
        for folder in fallbacks:
            candidate = folder / name
            if candidate.is_file():
                why = verify_file(candidate, remote)
                if why is None:
                    found = candidate
                    break
                rejected.append(f"rejected {why}")
        if found is not None:
            log.info("using verified %s", found)
            paths[name] = found
            continue
        if rejected:
            problem += " (" + "; ".join(rejected) + ")"
        if not download:
            problems[name] = problem + " (download=False)"
            continue
        try:
            _fetch(remote, path)  # replaces a corrupt file only once the new one is verified
        except _FetchError as exc:
            problems[name] = f"{problem}; download failed: {exc}"
    if problems:
        raise DatasetUnavailableError(_unavailable_message(dataset, files, directory, problems, data_root, fallbacks))
    return paths


def _unavailable_message(
    dataset: str,
    files: Mapping[str, RemoteFile],
    directory: Path,
    problems: Mapping[str, str],
    data_root: Path | None,
    fallbacks: Sequence[Path] = (),
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
        f"environment variable, else {_user_cache_dir() / 'data'}; "
        f"each dataset uses a subfolder named after it."
    )
    if fallbacks:
        lines.append("Also searched (read only): " + ", ".join(str(f) for f in fallbacks))
    if dataset in sources.SYSTEM_PACKAGES:
        lines.append(f"Or install the system package: {sources.SYSTEM_PACKAGES[dataset]}")
    return "\n".join(lines)
