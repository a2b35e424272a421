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
