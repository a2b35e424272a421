"""The API reference covers the public API: every package's ``__all__`` is rendered and documented.

The site itself is built by ``mkdocs build --strict`` in ``.ci/run``; these checks
are the fast part: a page per package, and a docstring for every public name.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PACKAGES = [
    "optim", "am", "ntk", "data", "models", "training", "algorithms",
    "bench", "sweep", "reproduce", "advise", "distributed", "validation",
]  # fmt: skip


def _rendered_modules() -> set[str]:
    return {m for page in (DOCS / "api").glob("*.md") for m in re.findall(r"^::: (\S+)", page.read_text(), re.M)}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_has_a_reference_page(package):
    assert f"beyondsgd.{package}" in _rendered_modules()


def test_every_package_of_the_library_is_listed():
    import beyondsgd

    root = Path(beyondsgd.__file__).parent
    found = {p.parent.name for p in root.glob("*/__init__.py")} | {
        p.stem for p in root.glob("*.py") if not p.stem.startswith("_") and p.stem not in ("cli", "device")
    }
    assert found <= set(PACKAGES), f"add {sorted(found - set(PACKAGES))} to docs/api and PACKAGES"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_has_a_docstring(package):
    module = importlib.import_module(f"beyondsgd.{package}")
    names = getattr(module, "__all__", None)
    assert names, f"beyondsgd.{package} defines no __all__ (the reference renders what __all__ lists)"
    missing = []
    for name in names:
        obj = getattr(module, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not inspect.getdoc(obj):
            missing.append(name)
    assert not missing, f"beyondsgd.{package}: no docstring for {missing}"
