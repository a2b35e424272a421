"""The one exception type of the data package that is not a plain ``ValueError``."""

from __future__ import annotations


class DatasetUnavailableError(RuntimeError):
    """The data of a dataset cannot be obtained on this machine.

    Raised when an optional package is missing, a download is disabled or fails,
    or a cached file is corrupt.  The message always says what to do: which
    package to install, or which files to place in which directory (with their
    URLs).  Bad *arguments* raise ``ValueError`` instead, so callers can tell a
    typo from a missing file.
    """
