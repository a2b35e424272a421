"""What every reproduction shares: its context, its registry entry and its report file.

Each paper's module (``momentum``, ``multiplicative``, ``dsgd``, ``tiam``) builds its
report body; :func:`write_report` adds the same header to all of them (how to
rerun it, the machine, the wall time) and writes it atomically, so every report
says in one place how its numbers were made. :func:`validation_split` carves the validation
split that the reproductions tune on out of the training set (``multiplicative``, ``tiam``).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
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
            at once from their final checkpoint, which holds their results, not
            their trained state).
        dataset: run on this dataset only (e.g. ``"fashion-mnist"``, the real files; no
            offline stand-in is substituted), ``None``: the reproduction's default list.
        preset: ``"default"`` (sized for the 2-core machine; ``quick`` shrinks it further) or
            ``"paper"`` (full datasets and the papers' widths, for a GPU; documented per
            reproduction, not run on the development machine).
        seeds: number of seeds for the headline comparisons (``None``: the reproduction's
            default, >= 5 in the full version, >= 2 in ``quick``).
        activation: run with this activation only (``None``: the reproduction's list); only
            for reproductions that declare it (:attr:`Reproduction.activations`).
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
    activation: str | None = None

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
        if self.activation is not None and (not isinstance(self.activation, str) or not self.activation):
            raise ValueError(f"invalid activation={self.activation!r}: expected an activation name such as 'relu'")
        if self.quick and self.preset == "paper":
            raise ValueError("invalid preset='paper' with quick=True: the paper-scale preset has no quick version")

    def command(self, name: str) -> str:
        """The ``beyondsgd reproduce`` command line that reruns reproduction ``name`` with this context."""
        parts = [f"beyondsgd reproduce {name}"]
        if self.quick:
            parts.append("--quick")
        if self.preset != "default":
            parts.append(f"--preset {self.preset}")
        if self.dataset:
            parts.append(f"--dataset {self.dataset}")
        if self.seeds is not None:
            parts.append(f"--seeds {self.seeds}")
        if self.activation is not None:
            parts.append(f"--activation {self.activation}")
        return " ".join(parts)

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
            keep_final_state=False,  # a finished run's checkpoint only has to give its results back
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
        activations: the activations ``--activation`` may choose (empty: the option is refused).
    """

    name: str
    run: Callable[[ReproduceContext], Path]
    description: str
    checkpoints: bool = False
    activations: tuple[str, ...] = ()


_REGISTRY: dict[str, Reproduction] = {}


def register_reproduction(repro: Reproduction) -> Reproduction:
    """Make ``repro`` available to ``beyondsgd reproduce`` and ``beyondsgd list``."""
    _REGISTRY[repro.name] = repro
    return repro


def write_report(
    out: Path, lines: list[str], *, command: str, device: torch.device | str, started: float | None = None
) -> Path:
    """Write ``out/report.md``: ``lines`` followed by the common "How this was made" section.

    Every reproduction ends its report the same way, so a reader finds in one
    place the command that reruns it and the machine that produced the numbers.

    Args:
        out: the reproduction's output folder.
        lines: the report's Markdown lines (title first).
        command: the command that reruns it (``beyondsgd reproduce NAME [--quick]``).
        device: where it trained.
        started: ``time.perf_counter()`` at the start, for the wall time.

    Returns:
        The report's path.
    """
    from beyondsgd.bench.io import write_atomic

    made = [
        "",
        "## How this was made",
        "",
        f"- command: `{command}`",
        f"- device: {device}; torch {torch.__version__}; Python {sys.version.split()[0]}; "
        f"{platform.platform()}; {torch.get_num_threads()} threads",
    ]
    if started is not None:
        made.append(f"- wall time: {time.perf_counter() - started:.0f} s")
    return write_atomic(Path(out) / "report.md", "\n".join([*lines, *made]) + "\n")


def validation_split(data: Any, n_val: int, seed: int = 0, n_train: int | None = None) -> tuple[Any, Any]:
    """Split the *training* set into (tuning data, fitting data) without touching the test split.

    Args:
        data: a :class:`beyondsgd.data.Dataset`; only ``X_train``/``y_train`` (and its metadata) are read.
        n_val: training samples held out (seeded permutation) as the validation split.
        seed: seeds the permutation.
        n_train: use only this many training samples (the first of the permutation; ``None``: all).

    Returns:
        ``(tune, fit_train)``: two :class:`beyondsgd.data.Dataset` with the same training samples; ``tune``
        has the held-out samples as its "test" split (what every grid run evaluates on), ``fit_train`` is
        ``(X_fit, y_fit)`` to be paired with the real test split by the headline runs only.

    Raises:
        ValueError: ``n_val`` not in [1, n_train - 1].
    """
    from beyondsgd.data import Dataset

    X, y = data.X_train, data.y_train
    n = int(X.shape[0])
    if not (isinstance(n_val, int) and 1 <= n_val < n):
        raise ValueError(f"invalid n_val={n_val!r}: expected an integer in [1, {n - 1}] (the training set has {n})")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if n_train is not None:
        if not (isinstance(n_train, int) and n_val < n_train):
            raise ValueError(f"invalid n_train={n_train!r}: expected an integer > n_val={n_val}")
        perm = perm[:n_train]
    val, fit = perm[:n_val], perm[n_val:]
    meta = {
        "name": data.name,
        "input_shape": data.input_shape,
        "num_classes": data.num_classes,
        "task": data.task,
        "source": data.source,
    }
    tune = Dataset(X_train=X[fit], y_train=y[fit], X_test=X[val], y_test=y[val], **meta)
    return tune, (X[fit], y[fit], meta)
