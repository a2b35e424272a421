"""Reproductions of the papers' experiments: ``beyondsgd reproduce NAME``.

Each paper has one module in this package that registers a :class:`Reproduction`
when imported; the modules are found with ``pkgutil`` and imported on first use,
so adding a paper means adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil

from beyondsgd.reproduce.common import (
    _REGISTRY,
    ReproduceContext,
    Reproduction,
    register_reproduction,
    write_report,
)

_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in pkgutil.iter_modules(__path__):
            if module.name != "common":
                importlib.import_module(f"{__name__}.{module.name}")


def available_reproductions() -> list[str]:
    """Names of the registered reproductions, sorted."""
    _load()
    return sorted(_REGISTRY)


def get_reproduction(name: str) -> Reproduction:
    """Raises ``ValueError`` for an unknown name, listing the known ones."""
    _load()
    if name not in _REGISTRY:
        known = ", ".join(available_reproductions()) or "(none yet)"
        raise ValueError(f"unknown reproduction {name!r}; available: {known}")
    return _REGISTRY[name]


__all__ = [
    "ReproduceContext",
    "Reproduction",
    "available_reproductions",
    "get_reproduction",
    "register_reproduction",
    "write_report",
]
