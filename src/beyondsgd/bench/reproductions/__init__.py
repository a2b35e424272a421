"""Reproductions of the papers' experiments: ``beyondsgd reproduce NAME``.

Each paper has one module in this package that registers a :class:`Reproduction`
when imported; the modules are found with ``pkgutil`` and imported on first use,
so adding a paper means adding a file.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from beyondsgd.bench.checkpoint import LoopCheckpoint
    from beyondsgd.bench.runner import Experiment, RunResult
    from beyondsgd.data import Dataset


#: Sizes a reproduction can be run at (besides ``quick``).
PRESETS = ("default", "paper")


@dataclass(frozen=True)
class ReproduceContext:
    """Arguments every reproduction receives.

    Attributes:
        out: folder for its files (created).
        quick: the CI-sized version (well under a minute on 2 CPU cores).
        device: where to train.
        progress: show progress bars.
        data_dir: where downloadable datasets are cached (``None``: the default).
        checkpoint_every: if set, runs made through :meth:`run_experiment`
            checkpoint to ``out/checkpoints/`` every this many log points, and a
            second call with the same ``out`` resumes them (finished ones return
            at once from their final checkpoint).
        dataset: run on this dataset only (e.g. ``"fashion-mnist"``, the real files; no
            offline stand-in is substituted), ``None``: the reproduction's default list.
        preset: ``"default"`` (sized for the 2-core machine; ``quick`` shrinks it further) or
            ``"paper"`` (full datasets and the papers' widths, for a GPU; documented per
            reproduction, not run on the development machine).
        seeds: number of seeds for the headline comparisons (``None``: the reproduction's
            default, >= 5 in the full version, >= 2 in ``quick``).
    """

    out: Path
    quick: bool
    device: torch.device
    progress: bool
    data_dir: Path | None = None
    checkpoint_every: int | None = None
    dataset: str | None = None
    preset: str = "default"
    seeds: int | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"invalid preset={self.preset!r}: expected one of {', '.join(PRESETS)}")
        if self.seeds is not None and (
            isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1
        ):
            raise ValueError(f"invalid seeds={self.seeds!r}: expected a positive integer")
        if self.dataset is not None:
            from beyondsgd.data.registry import _spec

            try:
                object.__setattr__(self, "dataset", _spec(self.dataset).name)  # canonical name (aliases)
            except ValueError as err:
                raise ValueError(f"invalid dataset={self.dataset!r}: {err}") from None
        if self.quick and self.preset == "paper":
            raise ValueError("invalid preset='paper' with quick=True: the paper-scale preset has no quick version")

    def seed_list(self, default_full: int = 5, default_quick: int = 2) -> list[int]:
        """Seeds 0..k-1: ``seeds`` if given, else ``default_quick`` (quick) or ``default_full``."""
        k = self.seeds if self.seeds is not None else (default_quick if self.quick else default_full)
        return list(range(k))

    def run_experiment(
        self, exp: Experiment, data: Dataset | None, key: str, progress: bool | None = None
    ) -> RunResult:
        """:func:`beyondsgd.bench.run_experiment`, checkpointed under ``key`` when asked.

        Args:
            exp, data: as for ``run_experiment``.
            key: readable name of this run (the checkpoint's file name, followed by a hash of ``exp``).
            progress: progress bar (default: the context's).
        """
        from beyondsgd.bench.runner import run_experiment

        # Distinct experiments (and quick vs full versions) never share a checkpoint file.
        digest = hashlib.sha1(json.dumps(asdict(exp), sort_keys=True, default=str).encode()).hexdigest()[:10]
        name = f"{'quick-' if self.quick else ''}{key}-{digest}.pt"
        path = None if self.checkpoint_every is None else self.out / "checkpoints" / name
        return run_experiment(
            exp,
            data=data,
            progress=self.progress if progress is None else progress,
            checkpoint=path,
            checkpoint_every=self.checkpoint_every or 1,
        )

    def loop_checkpoint(self, key: str, identity: dict[str, Any]) -> LoopCheckpoint | None:
        """A :class:`~beyondsgd.bench.checkpoint.LoopCheckpoint` for a hand-written loop
        (``None`` unless checkpoints were asked for)."""
        from beyondsgd.bench.checkpoint import LoopCheckpoint

        if self.checkpoint_every is None:
            return None
        digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
        name = f"{'quick-' if self.quick else ''}{key}-{digest}.pt"
        return LoopCheckpoint(self.out / "checkpoints" / name, identity, self.checkpoint_every)


@dataclass(frozen=True)
class Reproduction:
    """One paper's experiment.

    Attributes:
        name: CLI name (``beyondsgd reproduce NAME``).
        run: ``run(ctx) -> Path`` of the report it wrote.
        description: one line for ``beyondsgd list``.
        checkpoints: its training runs go through :meth:`ReproduceContext.run_experiment`,
            so ``--checkpoint-every`` makes an interrupted reproduction resumable.
    """

    name: str
    run: Callable[[ReproduceContext], Path]
    description: str
    checkpoints: bool = False


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
