"""The package's layers point one way, and no modules import each other in a cycle.

Every ``import`` in every module of ``src/beyondsgd`` is read from its syntax tree
(including imports inside functions and ``TYPE_CHECKING`` blocks, and string
arguments of ``importlib.import_module``), mapped to the layer of the module it
names, and checked against :data:`LAYERS`: a module may import its own component
and any lower layer, never a higher one nor a sibling of its own layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import beyondsgd

ROOT = Path(beyondsgd.__file__).parent

#: Components by layer, bottom first. A module may import lower layers and its own component.
LAYERS: list[set[str]] = [
    {"_version", "_plugins", "validation", "device"},
    {"distributed"},
    {"data", "models", "training"},
    {"optim", "am", "ntk"},
    {"algorithms"},
    {"bench"},
    {"sweep", "reproduce"},
    {"advise"},
    {"cli"},
    {"__main__"},
]
RANK = {component: i for i, layer in enumerate(LAYERS) for component in layer}

#: Deprecated aliases kept for old import paths; each warns when imported (tested below).
COMPAT_ALIASES = {"beyondsgd.bench.reproductions": "beyondsgd.reproduce"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at module level)`` for every import in ``tree``."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_top = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            # `if TYPE_CHECKING:` blocks never run, so they cannot close a cycle.
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                child_top = False
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                # `from pkg import sub` names the submodule pkg.sub when there is one, else pkg itself;
                # read_package keeps whichever exists.
                found.extend((f"{target}\0{alias.name}", child.lineno, top) for alias in child.names)
            elif (
                isinstance(child, ast.Call)
                and ast.unparse(child.func).endswith("import_module")
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and isinstance(child.args[0].value, str)
            ):
                found.append((child.args[0].value, child.lineno, top))
            visit(child, child_top)

    visit(tree, True)
    return found


def read_package(root: Path = ROOT) -> dict[str, tuple[Path, list[tuple[str, int, bool]]]]:
    """Every module of the package with its imports of the package's own modules."""
    sources = {}
    for path in sorted(root.rglob("*.py")):
        name = _module_name(path, root)
        tree = ast.parse(path.read_text(), filename=str(path))
        sources[name] = (path, _imports(tree, name, path.name == "__init__.py"))
    known = set(sources)

    def resolve(target: str) -> str:
        base, _, name = target.partition("\0")
        return f"{base}.{name}" if name and f"{base}.{name}" in known else base

    top = root.name
    package = {}
    for name, (path, imports) in sources.items():
        resolved = {(resolve(t), line, mod_level) for t, line, mod_level in imports}
        package[name] = (path, sorted(i for i in resolved if i[0] in known and i[0] != top))
    return package


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward_imports(package: dict[str, tuple[Path, list[tuple[str, int, bool]]]]) -> list[str]:
    """Every import that goes up the layers or sideways into a sibling component."""
    bad: dict[tuple[str, int], str] = {}  # one entry per import statement (the most specific name it imports)
    for module, (path, imports) in package.items():
        source = _component(module)
        if source == "__init__" or any(module.startswith(alias) for alias in COMPAT_ALIASES):
            continue
        for target, line, _ in imports:
            dest = _component(target)
            if dest == source or dest == "__init__":
                continue
            if source not in RANK or dest not in RANK:
                bad[module, line] = f"{path}:{line}: {module} -> {target}: component not in LAYERS"
            elif RANK[dest] >= RANK[source]:
                bad[module, line] = (
                    f"{path}:{line}: {module} (layer {RANK[source]}) imports {target} (layer {RANK[dest]})"
                )
    return list(bad.values())


def import_cycles(package: dict[str, tuple[Path, list[tuple[str, int, bool]]]]) -> list[list[str]]:
    """Groups of modules whose module-level imports form a cycle (Tarjan's strongly connected components)."""
    graph = {m: sorted({t for t, _, top in imports if top and t != m}) for m, (_, imports) in package.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in graph:
        if v not in index:
            strongconnect(v)
    return cycles


def test_every_component_has_a_layer():
    components = {_component(m) for m in read_package()} - {"__init__"}
    assert components <= set(RANK), f"add {sorted(components - set(RANK))} to LAYERS"


def test_imports_point_down_the_layers():
    bad = upward_imports(read_package())
    assert not bad, "imports that point up the layers:\n" + "\n".join(bad)


def test_no_import_cycles():
    assert import_cycles(read_package()) == []


def _write_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "beyondsgd"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_catches_an_upward_import_even_inside_a_function(tmp_path):
    root = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "optim/__init__.py": "def f():\n    from beyondsgd.bench import runner\n",
            "bench/__init__.py": "",
            "bench/runner.py": "from beyondsgd import optim\n",
        },
    )
    bad = upward_imports(read_package(root))
    assert len(bad) == 1 and "beyondsgd.optim (layer 3) imports beyondsgd.bench.runner (layer 5)" in bad[0]


def test_the_checker_catches_relative_imports_sideways_and_import_module(tmp_path):
    root = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "am/__init__.py": "from ..optim import x\n",
            "optim/__init__.py": "import importlib\nimportlib.import_module('beyondsgd.sweep')\nx = 1\n",
            "sweep/__init__.py": "",
        },
    )
    bad = upward_imports(read_package(root))
    assert any("beyondsgd.am (layer 3) imports beyondsgd.optim" in b for b in bad)
    assert any("beyondsgd.optim (layer 3) imports beyondsgd.sweep" in b for b in bad)


def test_the_checker_finds_a_cycle(tmp_path):
    root = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "bench/__init__.py": "",
            "bench/a.py": "from beyondsgd.bench import b\n",
            "bench/b.py": "import beyondsgd.bench.a\n",
            "bench/c.py": "def f():\n    import beyondsgd.bench.a\n",  # lazy: not a cycle
        },
    )
    assert import_cycles(read_package(root)) == [["beyondsgd.bench.a", "beyondsgd.bench.b"]]


@pytest.mark.parametrize("old,new", sorted(COMPAT_ALIASES.items()))
def test_old_import_paths_warn_and_point_at_the_new_modules(old, new):
    import importlib
    import sys

    for name in [m for m in sys.modules if m.startswith(old)]:
        del sys.modules[name]
    with pytest.warns(DeprecationWarning, match=new):
        importlib.import_module(old)
    old_momentum = importlib.import_module(f"{old}.momentum")
    assert old_momentum is importlib.import_module(f"{new}.momentum")
