"""The results store of a sweep: one JSON file per finished run, written atomically.

Layout of a sweep folder::

    DIR/sweep.json          the validated config and its fingerprint (written first)
    DIR/runs/<key>.json     one record per finished run (ok, diverged or failed)

A run's key is a hash of everything that defines it (problem, algorithm,
hyperparameters, seed, budget, phase), so the same run always lands in the same
file: re-running it can only replace the file, never add a second copy, and a
resumed sweep skips every key already present.  Files are written to a
temporary name and moved into place with ``os.replace`` (atomic), so a kill -9
at any moment leaves either no file or a complete one; stray temporary files are
removed on the next open.  Only the driver process writes, so there are no
concurrent writers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from beyondsgd.bench.io import write_json

log = logging.getLogger(__name__)


class RunStore:
    """A folder of run records keyed by run key.

    Args:
        root: the sweep folder (created if missing).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.runs_dir.glob(".*.tmp"):  # left by a writer killed mid-write
            tmp.unlink(missing_ok=True)

    def path(self, key: str) -> Path:
        return self.runs_dir / f"{key}.json"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def keys(self) -> set[str]:
        """Keys of every stored run."""
        return {p.stem for p in self.runs_dir.glob("*.json")}

    def put(self, record: dict[str, Any]) -> Path:
        """Store one run record atomically (``record["key"]`` names it)."""
        return write_json(self.path(record["key"]), record)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record, or ``None`` if absent or unreadable."""
        try:
            return json.loads(self.path(key).read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as err:  # cannot happen with atomic writes; be safe
            log.warning("ignoring unreadable run file %s: %s", self.path(key), err)
            return None

    def records(self) -> Iterator[dict[str, Any]]:
        """Every readable stored record, in key order."""
        for key in sorted(self.keys()):
            rec = self.get(key)
            if rec is not None:
                yield rec

    def write_meta(self, meta: dict[str, Any]) -> Path:
        return write_json(self.root / "sweep.json", meta)

    def read_meta(self) -> dict[str, Any] | None:
        p = self.root / "sweep.json"
        return json.loads(p.read_text()) if p.is_file() else None
