"""Results of the reference implementations for the site, computed at build time and cached.

A node page shows what its method found on a zoo model. The numbers come from
`reference_impls.registry.run(name, model)`, the very function behind `mi-atlas run NAME
--model MODEL --json`, and the cached document is that command's JSON (`_clean`ed the same way).
Each run is cached in `<cache_dir>/<key>.json`, where the key is a SHA-256 over everything the
run depends on: the source of every `reference_impls` module the run can execute (the
registering module and its imports, transitively, with the zoo task module of the model:
`closure.py`), every file of the zoo model's checkpoint (weights, config, tokenizer, card), the
method name and model name (the only inputs a run takes: its data comes from the zoo's task
code, already hashed), and the installed versions of torch, transformers, transformer-lens and
numpy. An unchanged rebuild reads the cache; a change to the method, to anything it imports,
to the zoo model or to a library reruns it, so a page never shows a stale figure, and a change
to one method does not rerun the others.

The list of runnables (names, kinds, default models, modules) is cached the same way, keyed by
the package source, `benchmarks/*.py` and the zoo's cards, so a rebuild whose results are all
cached does not import torch at all. Modes (plugin option `results`): `compute` runs what is
missing, `cache` only reads the cache (`mkdocs serve` under `auto`, so live reload stays quick),
`off` shows no results. Without the `impls` extra the build still succeeds and says where the
results would come from. torch is imported only inside `_run`, never when this module loads.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .closure import ImportClosure

log = logging.getLogger(f"mkdocs.plugins.{__name__}")

MODES = ("auto", "compute", "cache", "off")
IMPLS_MODULES = ("torch", "transformers", "transformer_lens")
LIBRARIES = ("torch", "transformers", "transformer-lens", "numpy")
INSTALL_HINT = "pip install -c constraints.txt '.[impls]'"
KEY_VERSION = 1  # bump when the cached document's shape changes
RUNNABLE_KINDS = ("method", "recipe")
IMPORTS_MEMO = "imports-memo"  # what each module text imports (closure.py), in the cache dir


def impls_missing() -> list[str]:
    """The modules of the `impls` extra that cannot be imported here (none: results can run)."""
    return [name for name in IMPLS_MODULES if importlib.util.find_spec(name) is None]


def run_command(name: str, model: str | None) -> str:
    """The command a reader types to get the same JSON document."""
    return f"mi-atlas run {name}" + (f" --model {model}" if model else "") + " --json"


# -- what is runnable ----------------------------------------------------------------------


@dataclass(frozen=True)
class Runnable:
    """One registered method or recipe, as `mi-atlas list --json` describes it."""

    name: str
    kind: str
    default_model: str | None
    summary: str
    module: str
    path: str | None  # the module's file, relative to the repository root (None if outside)
    models: tuple[str, ...] = ()  # zoo models it runs on: its default model

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "models": list(self.models)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Runnable:
        return cls(**{**data, "models": tuple(data.get("models") or ())})


@dataclass(frozen=True)
class Listing:
    """Every registered runnable, the zoo's models and their cards, and modules that failed."""

    runnables: dict[str, Runnable]
    models: tuple[str, ...]
    cards: dict[str, dict[str, Any]]
    errors: dict[str, str] = field(default_factory=dict)  # module -> import error

    def of_kind(self, kind: str) -> list[Runnable]:
        return [r for r in self.runnables.values() if r.kind == kind]


# -- one run's outcome ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the site knows about one (runnable, model) pair.

    `status`: "ok" (doc is the JSON of `mi-atlas run`), "failed" (error says why), "missing"
    (cache-only build and nothing cached), "off" (results switched off), "no-impls".
    """

    name: str
    model: str | None
    status: str
    doc: dict[str, Any] | None = None
    error: str | None = None
    seconds: float | None = None  # how long the run took when it was computed
    cached: bool = False  # read from the cache in this build
    key: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.doc is not None

    @property
    def command(self) -> str:
        return run_command(self.name, self.model)


# -- hashing -------------------------------------------------------------------------------


def _digest_files(paths: Iterable[Path], base: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.relative_to(base).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _source_files(package_dir: Path) -> list[Path]:
    return [p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts]


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class Hashes:
    """Digests of the package source, the benchmarks, each zoo model; computed once per build."""

    def __init__(self, package_dir: Path, memo: dict[str, list] | None = None) -> None:
        self.package_dir = package_dir
        self.models_dir = package_dir / "zoo" / "models"
        self.benchmarks_dir = package_dir.parent / "benchmarks"
        self._models: dict[str, str] = {}
        self.code = _digest_files(_source_files(package_dir), package_dir)
        self.closure = ImportClosure(package_dir, memo)
        self.libraries = library_versions()

    def model(self, name: str) -> str:
        if name not in self._models:
            folder = self.models_dir / name
            files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
            self._models[name] = _digest_files(files, self.models_dir) if files else "absent"
        return self._models[name]

    def listing_key(self) -> str:
        cards = sorted(self.models_dir.glob("*/card.json")) if self.models_dir.is_dir() else []
        benchmarks = (
            sorted(self.benchmarks_dir.glob("*.py")) if self.benchmarks_dir.is_dir() else []
        )
        return _key(
            {
                "what": "listing",
                "code": self.code,
                "cards": _digest_files(cards, self.package_dir.parent),
                "benchmarks": _digest_files(benchmarks, self.package_dir.parent),
                "libraries": self.libraries,
            }
        )

    def code_files(self, model: str, module_file: Path | None) -> list[Path]:
        """The source a run of `module_file`'s runnable on `model` can execute (closure.py);
        the whole package when the module's file is unknown."""
        if module_file is None or not module_file.is_file():
            return _source_files(self.package_dir)
        task = self._task_module(model)
        extra = (f"{self.package_dir.name}.zoo.tasks.{task}",) if task else ()
        return self.closure.files(module_file, extra)

    def run_key(self, name: str, model: str, module_file: Path | None) -> str:
        return _key(
            {
                "what": "run",
                "name": name,
                "model": model,
                "code": _digest_files(self.code_files(model, module_file), self.package_dir.parent),
                "model_files": self.model(model),
                "libraries": self.libraries,
            }
        )

    def _task_module(self, model: str) -> str | None:
        try:
            card = json.loads((self.models_dir / model / "card.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        task = card.get("task_module")
        return task if isinstance(task, str) else None


def _key(parts: dict[str, Any]) -> str:
    blob = json.dumps({"version": KEY_VERSION, **parts}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


# -- the store -----------------------------------------------------------------------------


class ResultStore:
    """The results one site build shows: read from the cache, computed when allowed."""

    def __init__(
        self,
        repo_root: Path,
        cache_dir: Path,
        mode: str = "compute",
        package_dir: Path | None = None,
    ) -> None:
        if mode not in MODES or mode == "auto":
            raise ValueError(f"results mode {mode!r} is not one of compute, cache, off")
        self.repo_root = repo_root
        self.cache_dir = cache_dir
        self.mode = mode
        self.missing_modules = impls_missing() if mode != "off" else []
        self.package_dir = package_dir
        if self.package_dir is None and mode != "off":
            spec = importlib.util.find_spec("reference_impls")
            locations = list(spec.submodule_search_locations or []) if spec else []
            self.package_dir = Path(locations[0]) if locations else None
        self._hashes: Hashes | None = None
        self._listing: Listing | None = None
        self._listing_done = False
        self._outcomes: dict[tuple[str, str | None], Outcome] = {}
        self.computed: list[Outcome] = []  # runs made in this build, for the build log

    @classmethod
    def for_build(
        cls, repo_root: Path, option: str, cache_dir: str, *, serving: bool
    ) -> ResultStore:
        """The store a build uses: `auto` computes on `mkdocs build`, reads only on serve."""
        mode = ("cache" if serving else "compute") if option == "auto" else option
        folder = Path(cache_dir).expanduser()
        return cls(repo_root, folder if folder.is_absolute() else repo_root / folder, mode)

    # -- state ----------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """ "off", "no-impls", "unavailable" (no reference_impls package), or the mode."""
        if self.mode == "off":
            return "off"
        if self.missing_modules:
            return "no-impls"
        if self.package_dir is None:
            return "unavailable"
        return self.mode

    @property
    def hashes(self) -> Hashes:
        if self._hashes is None:
            assert self.package_dir is not None
            self._hashes = Hashes(self.package_dir, self._read(IMPORTS_MEMO) or {})
        return self._hashes

    def _save_memo(self) -> None:
        closure = self.hashes.closure
        if closure.memo_grew:
            self._write(IMPORTS_MEMO, closure.memo)
            closure.memo_grew = False

    def listing(self) -> Listing | None:
        """The registered runnables; None when results are off, impls are missing, or a
        cache-only build has never listed them."""
        if self._listing_done:
            return self._listing
        self._listing_done = True
        if self.state not in ("compute", "cache"):
            return None
        key = self.hashes.listing_key()
        cached = self._read(f"listing-{key}")
        if cached is None and self.mode == "cache":
            # A cache-only build (mkdocs serve) after an edit: the newest list of runnables
            # still names them; every result shown is checked against its own key, so an
            # edited method shows "not computed yet", never an old figure.
            cached = self._latest_listing()
        if cached is not None:
            self._listing = _listing_from(cached)
        elif self.mode == "compute":
            data = self._discover()
            self._write(f"listing-{key}", data)
            self._listing = _listing_from(data)
        return self._listing

    def _latest_listing(self) -> dict[str, Any] | None:
        try:
            files = sorted(self.cache_dir.glob("listing-*.json"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return None
        return self._read(files[-1].stem) if files else None

    def runnable(self, name: str) -> Runnable | None:
        listing = self.listing()
        return listing.runnables.get(name) if listing else None

    # -- outcomes ---------------------------------------------------------------------------

    def outcome(self, name: str, model: str | None = None) -> Outcome:
        """The result of `name` on `model` (default: its default model)."""
        runnable = self.runnable(name)
        model = model or (runnable.default_model if runnable else None)
        memo = self._outcomes.get((name, model))
        if memo is not None:
            return memo
        out = self._outcome(name, model, runnable)
        self._outcomes[(name, model)] = out
        return out

    def _outcome(self, name: str, model: str | None, runnable: Runnable | None) -> Outcome:
        state = self.state
        if state in ("off", "no-impls", "unavailable"):
            return Outcome(name, model, state)
        if runnable is None or model is None:
            return Outcome(name, model, "missing")
        module_file = self.repo_root / runnable.path if runnable.path else None
        key = self.hashes.run_key(name, model, module_file)
        self._save_memo()
        cached = self._read(key)
        if cached is not None:
            return Outcome(
                name,
                model,
                cached["status"],
                doc=cached.get("doc"),
                error=cached.get("error"),
                seconds=cached.get("seconds"),
                cached=True,
                key=key,
            )
        if self.mode != "compute":
            return Outcome(name, model, "missing", key=key)
        status, doc, error, seconds = _run(name, model)
        # Failures are cached too: the same code on the same weights fails the same way, and a
        # change to either makes a new key, so the run is retried exactly when it could differ.
        self._write(key, {"status": status, "doc": doc, "error": error, "seconds": seconds})
        out = Outcome(name, model, status, doc=doc, error=error, seconds=seconds, key=key)
        self.computed.append(out)
        what = error or f"recovered: {(doc or {}).get('recovered')}"
        log.info("mi-atlas: ran %s on %s in %.1f s (%s)", name, model, seconds, what)
        return out

    def outcomes(self) -> list[Outcome]:
        """Every runnable on every model it runs on (computing what is allowed and missing)."""
        listing = self.listing()
        if listing is None:
            return []
        return [
            self.outcome(r.name, model)
            for r in sorted(listing.runnables.values(), key=lambda r: (r.kind, r.name))
            for model in r.models
        ]

    # -- cache files ------------------------------------------------------------------------

    def _read(self, key: str) -> dict[str, Any] | None:
        path = self.cache_dir / f"{key}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent or half-written by a killed build: recompute

    def _write(self, key: str, data: dict[str, Any]) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        path = self.cache_dir / f"{key}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a concurrent build never reads half a file

    # -- the registry (torch from here on) --------------------------------------------------

    def _discover(self) -> dict[str, Any]:
        from reference_impls import registry, zoo

        errors = registry.discover()
        runnables = []
        for kind in RUNNABLE_KINDS:
            for entry in registry.entries(kind):
                runnables.append(self._runnable(entry).to_dict())
        models = zoo.names()
        return {
            "runnables": runnables,
            "models": models,
            "cards": {name: zoo.card(name) for name in models},
            "errors": errors,
        }

    def _runnable(self, entry: Any) -> Runnable:
        spec = importlib.util.find_spec(entry.module)
        origin = Path(spec.origin).resolve() if spec and spec.origin else None
        try:
            path = origin.relative_to(self.repo_root.resolve()).as_posix() if origin else None
        except ValueError:
            path = None
        # A registry entry may one day list every model it runs on; today it names its default.
        models = tuple(getattr(entry, "models", None) or ()) or (
            (entry.default_model,) if entry.default_model else ()
        )
        return Runnable(
            entry.name, entry.kind, entry.default_model, entry.summary, entry.module, path, models
        )


def _listing_from(data: dict[str, Any]) -> Listing:
    runnables = {r["name"]: Runnable.from_dict(r) for r in data["runnables"]}
    return Listing(runnables, tuple(data["models"]), data["cards"], dict(data.get("errors") or {}))


def _run(name: str, model: str) -> tuple[str, dict[str, Any] | None, str | None, float]:
    """Run through the registry exactly as `mi-atlas run NAME --model MODEL --json` does."""
    from reference_impls import registry

    from ..commands.impls import _clean

    start = time.perf_counter()
    try:
        out = registry.run(name, model)
        doc = json.loads(json.dumps(_clean(out), default=str))  # what --json prints
    except Exception as exc:  # noqa: BLE001 - a failing method is shown on its page, not fatal
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "failed", None, f"{type(exc).__name__}: {first}", time.perf_counter() - start
    return "ok", doc, None, time.perf_counter() - start
