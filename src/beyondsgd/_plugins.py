"""Discovery of plug-ins that installed packages declare as Python entry points.

Datasets (group ``beyondsgd.datasets``) and models (``beyondsgd.models``) use the
same rule: each entry point's name is the registry name, its object a callable; a
broken entry point is skipped with a warning, since another package's bug must
not break ``beyondsgd``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any


def load_entry_points(
    group: str, kind: str, register: Callable[[str, Callable[[], Any], str], None], log: logging.Logger
) -> None:
    """Call ``register(name, load, origin)`` for every entry point of ``group``.

    Args:
        group: the entry-point group.
        kind: what the group holds ("dataset", "model"), for the warning.
        register: checks the name, calls ``load()`` for the object and registers it; raises on a bad one.
        log: where a skipped entry point is reported.
    """
    for ep in entry_points(group=group):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        origin = f"entry point {ep.value} (package {dist})"

        def load(ep: Any = ep) -> Any:
            obj = ep.load()
            if not callable(obj):
                raise ValueError(f"{ep.value} is not callable")
            return obj

        try:
            register(ep.name, load, origin)
        except Exception as exc:  # a broken plug-in is reported, not fatal
            log.warning("skipping %s entry point %r from %s: %s", kind, ep.name, origin, exc)
