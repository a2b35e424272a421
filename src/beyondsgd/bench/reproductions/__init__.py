"""Reproductions of the papers' experiments: ``beyondsgd reproduce NAME``.

Each paper has one module in this package that registers a :class:`Reproduction`
when imported; the modules are found with ``pkgutil`` and imported on first use,
so adding a paper means adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch


@dataclass(frozen=True)
class ReproduceContext:
    """Arguments every reproduction receives.

    Attributes:
        out: folder for its files (created).
        quick: the CI-sized version (well under a minute on 2 CPU cores).
        device: where to train.
        progress: show progress bars.
        data_dir: where downloadable datasets are cached (``None``: the default).
    """

    out: Path
    quick: bool
    device: torch.device
    progress: bool
    data_dir: Path | None = None


@dataclass(frozen=True)
class Reproduction:
    """One paper's experiment.

    Attributes:
        name: CLI name (``beyondsgd reproduce NAME``).
        run: ``run(ctx) -> Path`` of the report it wrote.
        description: one line for ``beyondsgd list``.
    """

    name: str
    run: Callable[[ReproduceContext], Path]
    description: str


_REGISTRY: dict[str, Reproduction] = {}
_loaded = False


def register_reproduction(repro: Reproduction) -> Reproduction:
    _REGISTRY[repro.name] = repro
    return repro


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")


def available_reproductions() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def get_reproduction(name: str) -> Reproduction:
    """Raises ``ValueError`` for an unknown name, listing the known ones."""
    _load()
    if name not in _REGISTRY:
        known = ", ".join(available_reproductions()) or "(none yet)"
        raise ValueError(f"unknown reproduction {name!r}; available: {known}")
    return _REGISTRY[name]
