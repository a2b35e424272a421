"""Deprecated alias of :mod:`beyondsgd.reproduce` (the 0.1.0 location of the reproductions).

``import beyondsgd.reproduce.momentum`` and the like keep working and
warn; new code imports :mod:`beyondsgd.reproduce`. This package is the one
place where ``bench`` refers to a layer above it, on purpose, for old imports.
"""

import importlib
import sys
import warnings

warnings.warn(
    "beyondsgd.reproduce moved to beyondsgd.reproduce; the old path will be removed in 0.3",
    DeprecationWarning,
    stacklevel=2,
)

_new = importlib.import_module("beyondsgd.reproduce")
_new._load()
# The old submodule names point at the new modules themselves (one module object each, one registry).
for _name in ("common", "dsgd", "momentum", "multiplicative", "tiam"):
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"beyondsgd.reproduce.{_name}")
from beyondsgd.reproduce import *  # noqa: E402,F403
from beyondsgd.reproduce import __all__  # noqa: E402,F401
