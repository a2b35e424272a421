"""Atomic checkpoints of a training run.

A checkpoint is written to a temporary file and renamed into place (see
:func:`beyondsgd.bench.io.write_atomic`), so a kill at any moment leaves either
the previous complete checkpoint or the new one, never a torn file.  Loading
uses ``torch.load(weights_only=True)``: a checkpoint holds only tensors,
numbers, strings and containers of them, never pickled code.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from beyondsgd.bench.io import write_atomic

FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (plus a format version) to ``path``."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT_VERSION, **state}, buf)
    return write_atomic(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        ValueError: the file is not a readable checkpoint of this format.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a bad file
        raise ValueError(f"cannot read checkpoint {str(path)!r}: {err}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} is not a beyondsgd checkpoint (format {FORMAT_VERSION})")
    return state


class LoopCheckpoint:
    """Checkpointing for a hand-written training loop (the reproductions that do not go through the runner).

    The loop says what identifies it (``identity``: its settings, as plain data) and,
    every ``every`` iterations, hands over its state; on a second run the state
    comes back from :meth:`resume` and the loop continues from there.

    Args:
        path: the checkpoint file.
        identity: plain data describing the run; a checkpoint with another identity is refused.
        every: save every this many iterations (and always when done).
    """

    def __init__(self, path: str | os.PathLike, identity: dict[str, Any], every: int = 1) -> None:
        self.path, self.identity, self.every = Path(path), identity, every

    def resume(self) -> dict[str, Any] | None:
        """The saved state (with ``"done"``), or ``None`` when there is no checkpoint yet.

        Raises:
            ValueError: the checkpoint belongs to another run.
        """
        if not self.path.exists():
            return None
        state = load_checkpoint(self.path)
        if state.get("identity") != self.identity:
            raise ValueError(
                f"checkpoint {str(self.path)!r} belongs to another run ({state.get('identity')}, "
                f"this run: {self.identity}); delete it or use another output folder"
            )
        return state["state"] | {"done": state["done"]}

    def due(self, iteration: int) -> bool:
        """Whether the state after ``iteration`` completed iterations should be saved."""
        return iteration % self.every == 0

    def save(self, state: dict[str, Any], done: bool = False) -> None:
        save_checkpoint(self.path, {"identity": self.identity, "state": state, "done": done})
