"""The import graph of `mi_atlas` and `reference_impls`: no cycles, no reaching into privates.

Read from the source with the standard library's `ast` (nothing is imported). An edge is an
import that runs when the module is imported: a statement at module level, also inside a
module-level `try` or `if`, but not under `if TYPE_CHECKING:` and not inside a function. A
function-level import runs later, on a call, when both modules are loaded, so it cannot deadlock
an import; it is how a command imports torch only when it runs, and it is not counted.
`from a.b import c` is an edge to the module `a.b.c` when that is a module, else to `a.b`.

A private name (one leading underscore) belongs to its package: `reference_impls.locate` may
use its own `_zoo_runs`, but no module reads `_name` from a module of another package, neither
by `from m import _name` nor as `m._name`.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("mi_atlas", "reference_impls")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def package_of(module: str) -> str:
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def absolute(node: ast.ImportFrom, module: str) -> str:
    if node.level == 0:
        return node.module or ""
    base = package_of(module).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run on import: the body, into try/if blocks, not TYPE_CHECKING ones."""
    for node in body:
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            yield from module_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from module_level(
                node.body
                + node.orelse
                + node.finalbody
                + [s for h in node.handlers for s in h.body]
            )
        else:
            yield node


def ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def edges(module: str, tree: ast.Module) -> set[str]:
    out = set()
    for node in module_level(tree.body):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if ours(a.name)}
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, module)
            if not ours(base):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m in MODULES and m != module}


def test_no_import_cycle():
    graph = {m: edges(m, ast.parse(p.read_text(encoding="utf-8"))) for m, p in MODULES.items()}
    assert len(graph) > 50  # both packages were read
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def private_reads(module: str, tree: ast.Module) -> Iterator[str]:
    """`_names` this module reads from modules of other packages."""
    mine = package_of(module)
    aliases: dict[str, str] = {}  # local name -> our module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if ours(a.name):
                    aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, module)
            if not ours(base):
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in MODULES:
                    aliases[a.asname or a.name] = sub
                if _private(a.name) and package_of_name(sub, base) != mine:
                    yield f"{module}: from {base} import {a.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            target = aliases[node.value.id]
            if package_of(target) != mine:
                yield f"{module}: {node.value.id}.{node.attr} ({target})"


def package_of_name(sub: str, base: str) -> str:
    """The package a private name belongs to: its module's package (or the module's own)."""
    return package_of(sub) if sub in MODULES else package_of(base)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_reads_another_packages_private_names():
    found = [
        read
        for module, path in MODULES.items()
        for read in private_reads(module, ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == []
