"""`mi-atlas run --all`: every registered method and recipe, run into a folder, cached.

Each runnable's document goes to `DIR/<name>.json` (a `runs.Run`), and `DIR/index.json` (a
`runs.RunIndex`) lists every runnable with its command, source, model, and either its file or
the one-line error of its failed run, plus the zoo models with their planted truth. The site
reads only this folder.

A run is recomputed only when what it depends on changed. Its key is a SHA-256 over the source
of every `reference_impls` module it can execute (the registering module and its imports,
transitively, with the zoo task module of its model: `closure.py`), `mi_atlas/runs.py` (the
document's shape), every file of its zoo model's checkpoint, its name and model, and the
installed versions of torch, transformers, transformer-lens and numpy. The list of runnables is
keyed by the whole package source, the cards and `runs.py`; when it and every run key match
`index.json`, nothing is imported: no torch, no method. Importing this module imports neither.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mi_atlas import runs
from reference_impls.closure import ImportClosure

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
MODELS_DIR = PACKAGE_DIR / "zoo" / "models"
RUNS_MODULE = Path(runs.__file__).resolve()
DEFAULT_OUT = Path(".mi-atlas-cache/runs")
KINDS = ("method", "recipe")  # what `--all` runs; checks are run one model at a time
LIBRARIES = ("torch", "transformers", "transformer-lens", "numpy")
KEY_VERSION = 1  # bump when what a key covers changes


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a run's numbers depend on ("absent" if missing)."""
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            versions[lib] = "absent"
    return versions


def _digest(paths: Iterable[Path], base: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps({"v": KEY_VERSION, **parts}, sort_keys=True).encode()
    ).hexdigest()


class Keys:
    """The cache keys of one `--all`: digests computed once, from files alone."""

    def __init__(self) -> None:
        self.closure = ImportClosure(PACKAGE_DIR)
        self.libraries = library_versions()
        self.contract = _digest([RUNS_MODULE], RUNS_MODULE.parent)
        self._models: dict[str, str] = {}

    def listing(self) -> str:
        """What the list of runnables and the zoo's descriptions depend on."""
        sources = [p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts]
        cards = sorted(MODELS_DIR.glob("*/card.json"))
        return _key(
            {
                "what": "listing",
                "code": _digest(sources, REPO_ROOT),
                "cards": _digest(cards, REPO_ROOT),
                "contract": self.contract,
                "libraries": self.libraries,
            }
        )

    def run(self, name: str, model: str, source: str) -> str:
        """What the document of `name` on `model` (implemented in `source`) depends on."""
        task = _task_module(model)
        extra = (f"reference_impls.zoo.tasks.{task}",) if task else ()
        files = self.closure.files(REPO_ROOT / source, extra)
        return _key(
            {
                "what": "run",
                "name": name,
                "model": model,
                "code": _digest(files, REPO_ROOT),
                "model_files": self.model(model),
                "contract": self.contract,
                "libraries": self.libraries,
            }
        )

    def model(self, name: str) -> str:
        if name not in self._models:
            folder = MODELS_DIR / name
            files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
            self._models[name] = _digest(files, MODELS_DIR) if files else "absent"
        return self._models[name]


def _task_module(model: str) -> str | None:
    try:
        card = json.loads((MODELS_DIR / model / "card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    task = card.get("task_module")
    return task if isinstance(task, str) else None


@dataclass
class RunFolder:
    """The folder `--all` writes: what is cached, what must run, and the index at the end."""

    out: Path
    keys: Keys = field(default_factory=Keys)
    entries: dict[str, runs.IndexEntry] = field(default_factory=dict)
    todo: list[runs.IndexEntry] = field(default_factory=list)
    index: runs.RunIndex | None = None

    def plan(self) -> list[runs.IndexEntry]:
        """Reuse every cached document whose key matches; return the entries left to compute."""
        old = _read_index(self.out)
        listing_key = self.keys.listing()
        if old is not None and old.key == listing_key:
            listed, models, errors = old.runs, old.models, old.import_errors
        else:
            listed, models, errors = _discover()
        self.index = runs.RunIndex(
            runs=[], import_errors=errors, models=models, key=listing_key,
            environment=self.keys.libraries,
        )  # fmt: skip
        for entry in listed:
            key = self.keys.run(entry.name, entry.model or "", entry.source)
            cached = old.entry(entry.name) if old is not None else None
            if (
                cached is not None
                and cached.key == key
                and cached.file is not None
                and (self.out / cached.file).is_file()
            ):
                self.entries[entry.name] = cached
            else:
                # the last run's duration, kept to start the longest first (compute_all)
                seconds = cached.seconds if cached is not None else None
                pending = entry.model_copy(
                    update={"key": key, "file": None, "error": None, "seconds": seconds}
                )
                self.todo.append(pending)
                self.entries[entry.name] = pending
        return list(self.todo)

    def compute_all(
        self, entries: Sequence[runs.IndexEntry], jobs: int = 1
    ) -> Iterator[runs.IndexEntry]:
        """Run `entries` in `jobs` worker processes, yielding each as it ends.

        Every run is on one torch thread (`threads.py`), so a second process uses the second
        core where a second thread would not. The longest runs (by the `seconds` of their last
        document) start first, so that the last to end is a short one. Workers are spawned, not
        forked: a forked copy of a process that already holds torch's thread pools can hang.
        """
        ordered = sorted(entries, key=lambda e: -(e.seconds or 0.0))
        if jobs <= 1 or len(ordered) <= 1:
            yield from self._recorded(compute(self.out, entry) for entry in ordered)
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(jobs, len(ordered)), mp_context=context) as pool:
            pending = [pool.submit(compute, self.out, entry) for entry in ordered]
            yield from self._recorded(future.result() for future in as_completed(pending))

    def _recorded(self, ended: Iterator[runs.IndexEntry]) -> Iterator[runs.IndexEntry]:
        for done in ended:
            self.entries[done.name] = done
            yield done

    def finish(self) -> runs.RunIndex:
        """Write `index.json` (every runnable, sorted by kind and name) and return it."""
        assert self.index is not None, "plan() first"
        ordered = sorted(self.entries.values(), key=lambda e: (e.kind, e.name))
        self.index = self.index.model_copy(update={"runs": ordered})
        _write(self.out / runs.INDEX_FILE, self.index.model_dump_json())
        return self.index

    @property
    def failed(self) -> list[runs.IndexEntry]:
        return [e for e in self.entries.values() if e.error is not None]


def compute(out: Path, entry: runs.IndexEntry) -> runs.IndexEntry:
    """Run one runnable; write its document atomically to `out`, or record its error.

    Module-level, so that a worker process can run it (`RunFolder.compute_all`).
    """
    from transformers.utils import logging as hf_logging

    from reference_impls import registry

    hf_logging.disable_progress_bar()  # the caller's bar is the progress; one per run is noise
    start = time.perf_counter()
    target = out / f"{entry.name}.json"
    try:
        doc = registry.run(entry.name, entry.model).model_dump_json()
    except Exception as exc:  # noqa: BLE001 - one failing run must not stop the others
        target.unlink(missing_ok=True)  # an older document would be stale
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        done = entry.model_copy(update={"error": error, "file": None})
    else:
        _write(target, doc)
        done = entry.model_copy(update={"file": target.name, "error": None})
    return done.model_copy(update={"seconds": round(time.perf_counter() - start, 2)})


def _discover() -> tuple[list[runs.IndexEntry], list[runs.ZooModel], dict[str, str]]:
    """Every registered method and recipe (imports every method module, hence torch)."""
    from reference_impls import registry, zoo

    errors = registry.discover()
    listed = [
        runs.IndexEntry(
            name=e.name,
            kind=e.kind,
            method=e.method,
            model=e.default_model,
            summary=e.summary,
            source=e.source,
            command=e.command(),
            error="not run yet",
        )
        for kind in KINDS
        for e in registry.entries(kind)
    ]
    return listed, [zoo.described(name) for name in zoo.names()], errors


def _read_index(out: Path) -> runs.RunIndex | None:
    try:
        return runs.RunIndex.model_validate_json((out / runs.INDEX_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None  # absent, half-written or from an older shape: recompute


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a file
