"""The source files a run of a reference implementation can execute, found without importing it.

Used by `runcache` to key each cached run document (torch-free: it parses, never imports).

A cached result must change when any code it ran changes, and only then (a change to one locate
method should not rerun every recipe). Starting from the module that registered the runnable,
this follows every `import` and `from ... import` of a `reference_impls` module, at any depth
(imports inside functions included), plus the `__init__.py` of every package on the way, since
importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py`.

Two modules import by name at run time, and are handled by what they import:
- `reference_impls.registry` imports every module to *discover* what registers itself; what a
  run executes is the registered function and its imports, which the closure follows (modules
  do nothing at import time but define and register; see docs/results.md);
- `reference_impls.zoo` imports the task module named by the model's card (`task(name)`): the
  caller adds that module (`ImportClosure.files(..., extra=...)`).
Any other module that imports by name (`importlib.import_module`, `__import__`, loading a file
by path) makes the closure take its whole package, so the key stays honest.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

RESOLVED_DYNAMIC = ("reference_impls.registry", "reference_impls.zoo")
_DYNAMIC_CALLS = ("import_module", "__import__", "spec_from_file_location", "run_path")


class ImportClosure:
    """Static imports of the modules of one top-level package (`package_dir`)."""

    def __init__(self, package_dir: Path, memo: dict[str, list] | None = None) -> None:
        # One instance per build: the files are read once, however many runs share them.
        self.root = package_dir.parent
        self.package = package_dir.name
        self._files: dict[str, Path | None] = {}
        self._deps: dict[Path, set[Path]] = {}
        # sha256 of a file's text + its package -> [imports, dynamic]: parsing is most of the
        # cost of a rebuild's keys, and the same text always has the same imports
        self.memo: dict[str, list] = memo if memo is not None else {}
        self.memo_grew = False

    def file_of(self, module: str) -> Path | None:
        """The file of `module` (a module file or a package's `__init__.py`), if it exists."""
        if module not in self._files:
            base = self.root.joinpath(*module.split("."))
            candidates = (base.with_suffix(".py"), base / "__init__.py")
            self._files[module] = next((p for p in candidates if p.is_file()), None)
        return self._files[module]

    def module_of(self, path: Path) -> str:
        parts = list(path.relative_to(self.root).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    def files(self, start: Path, extra: tuple[str, ...] = ()) -> list[Path]:
        """Every file the module at `start` (and the modules `extra`) can run, sorted."""
        seen: set[Path] = set()
        todo = [start] + [f for m in extra if (f := self.file_of(m))]
        while todo:
            path = todo.pop()
            if path not in seen:
                seen.add(path)
                todo.extend(self._deps_of(path) - seen)
        return sorted(seen)

    def _deps_of(self, path: Path) -> set[Path]:
        """The files `path` imports directly, with the packages above each."""
        if path in self._deps:
            return self._deps[path]
        imports, dynamic = self._scan(path.read_text(encoding="utf-8"), self._package_of(path))
        names = set(imports)
        if dynamic and self._inside(path) and self.module_of(path) not in RESOLVED_DYNAMIC:
            names |= {self.module_of(p) for p in path.parent.rglob("*.py")}
        deps: set[Path] = set()
        for name in names:
            if name != self.package and not name.startswith(self.package + "."):
                continue
            parts = name.split(".")
            for k in range(1, len(parts) + 1):  # the module and every package above it
                found = self.file_of(".".join(parts[:k]))
                if found:
                    deps.add(found)
        self._deps[path] = deps
        return deps

    def _scan(self, source: str, package: str) -> tuple[tuple[str, ...], bool]:
        key = hashlib.sha256(f"{package}\0{source}".encode()).hexdigest()
        known = self.memo.get(key)
        if known is None:
            imports, dynamic = _scan(source, package)
            self.memo[key] = known = [list(imports), dynamic]
            self.memo_grew = True
        return tuple(known[0]), bool(known[1])

    def _inside(self, path: Path) -> bool:
        return (self.root / self.package) in path.parents

    def _package_of(self, path: Path) -> str:
        if not self._inside(path):
            return ""
        module = self.module_of(path)
        return module if path.name == "__init__.py" else module.rpartition(".")[0]


@cache
def _scan(source: str, package: str) -> tuple[tuple[str, ...], bool]:
    """(absolute module names `source` imports, whether it also imports by name at run time).

    Cached by the text itself, so an edit under `mkdocs serve` is seen on the next build."""
    tree = ast.parse(source)
    names: set[str] = set()
    dynamic = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            if base:
                names.add(base)
                # `from pkg import name` may import the module pkg.name
                names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            dynamic = dynamic or called in _DYNAMIC_CALLS
    return tuple(sorted(names)), dynamic


def _absolute(module: str | None, level: int, package: str) -> str | None:
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else [])) or None
