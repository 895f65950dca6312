"""The registry of runnable things: methods, recipes, checks and benchmarks, and the zoo.

Modules register themselves with a decorator; the command line never lists them by hand.
`discover()` imports every module of the packages `reference_impls.locate`, `.steer`,
`.recipes` and `.zoo.check` (those that exist), plus `benchmarks/*.py` of a source checkout,
so whatever those modules decorate becomes runnable by name:

    @register_method("causal-attribution", default_model="induction")
    def demo(model_name: str) -> Outcome:
        ...
        return Outcome(scores.locate_result(...), recovered=True)

A method, recipe or check is `fn(model_name) -> Outcome`: a typed result of `mi_atlas.runs`
(`LocateResult`, `SteerResult`, `RecipeResult` or `CheckResult`) and whether it recovered the
zoo model's planted truth. `run(name, model)` runs it on one torch thread and wraps it into the
`runs.Run` document that `mi-atlas run NAME --json` prints: the model and task, the planted
truth (`zoo.truth`), the command that reproduces it, the implementing module's path, the seeds
and the library versions. A benchmark is `fn() -> dict` with at least `baseline`, `ours`
(seconds), `ratio` (baseline / ours) and `max_abs_diff`; `bench(name)` returns it with `name`.

Method ids are the taxonomy's locate/steer ids (`causal-attribution`, `probing`, ...), recipe
ids its sub-goal ids (`safety-reliability`, ...). A variant adds a suffix and names the method it
varies, which is the taxonomy id its run document carries (the site shows it on that page):
`@register_method("amplitude-manipulation-sae", variant_of="amplitude-manipulation")`.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import pkgutil
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mi_atlas import runs

KINDS = ("method", "recipe", "check", "benchmark")
PACKAGES = ("reference_impls.locate", "reference_impls.steer", "reference_impls.recipes")
REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_DIR = REPO_ROOT / "benchmarks"


class RegistryError(Exception):
    """Base class; the message is one sentence for the user."""


class UnknownNameError(RegistryError):
    """A name that nothing registered; carries the valid names and the closest one."""

    def __init__(self, name: str, valid: list[str], what: str = "method, recipe or check"):
        self.name, self.valid = name, valid
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.4)
        self.closest = close[0] if close else None
        hint = f" (did you mean {self.closest!r}?)" if self.closest else ""
        super().__init__(f"{name!r} is not a registered {what}{hint}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class Outcome:
    """What a method, recipe or check returns: its typed result, and whether it recovered the
    planted truth by its own criterion (None: it has no such criterion)."""

    result: runs.LocateResult | runs.SteerResult | runs.RecipeResult | runs.CheckResult
    recovered: bool | None = None
    seeds: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class Entry:
    """One registered runnable."""

    name: str
    kind: str  # one of KINDS
    fn: Callable[..., Any]
    default_model: str | None
    summary: str  # first line of the function's docstring
    module: str
    method: str = ""  # the taxonomy id whose page shows it: its name, or the id it is a variant of

    @property
    def source(self) -> str:
        """The implementing module's file, relative to the repository root."""
        path = Path(inspect.getsourcefile(self.fn) or self.module).resolve()
        try:
            return path.relative_to(REPO_ROOT).as_posix()
        except ValueError:
            return str(path)

    def command(self, model: str | None = None) -> str:
        """The command that runs this entry (on `model`, default: its default model)."""
        model = model or self.default_model
        return f"mi-atlas run {self.name}" + (f" --model {model}" if model else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "default_model": self.default_model,
            "summary": self.summary,
            "module": self.module,
            "source": self.source,
        }


_ENTRIES: dict[str, Entry] = {}
_DISCOVERY_ERRORS: dict[str, str] = {}
_discovered = False


def _register(
    kind: str, name: str, default_model: str | None, method: str | None = None
) -> Callable:
    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        existing = _ENTRIES.get(name)
        if existing is not None and (existing.module, existing.fn.__qualname__) != (
            fn.__module__,
            fn.__qualname__,
        ):
            raise RegistryError(
                f"{name!r} is registered twice: by {existing.module} and {fn.__module__}"
            )
        doc = inspect.getdoc(fn) or ""
        _ENTRIES[name] = Entry(
            name, kind, fn, default_model, doc.split("\n")[0], fn.__module__, method or name
        )
        return fn

    return decorator


def register_method(
    name: str, default_model: str | None = None, *, variant_of: str | None = None
) -> Callable:
    """Register `fn(model_name) -> Outcome` as locate/steer method `name` (a taxonomy id), or as
    a variant of the method `variant_of` (shown on that method's page)."""
    return _register("method", name, default_model, variant_of)


def register_recipe(
    name: str, default_model: str | None = None, *, variant_of: str | None = None
) -> Callable:
    """Register `fn(model_name) -> Outcome` as improve recipe `name` (a sub-goal id), or as a
    variant of the recipe `variant_of` (shown on that sub-goal's page)."""
    return _register("recipe", name, default_model, variant_of)


def register_check(name: str, default_model: str | None = None) -> Callable:
    """Register `fn(model_name) -> Outcome` as a check (e.g. `zoo-check`)."""
    return _register("check", name, default_model)


def register_benchmark(name: str) -> Callable:
    """Register `fn() -> dict` (baseline, ours, ratio, max_abs_diff) as benchmark `name`."""
    return _register("benchmark", name, None)


def discover() -> dict[str, str]:
    """Import every module that may register something (once); return {module: error} for failures.

    A module that fails to import is reported, not hidden: `mi-atlas list` shows the errors.
    """
    global _discovered
    if _discovered:
        return dict(_DISCOVERY_ERRORS)
    _discovered = True
    modules = ["reference_impls.zoo.check"]
    for package in PACKAGES:
        try:
            pkg = importlib.import_module(package)
        except ModuleNotFoundError as exc:
            if exc.name == package:
                continue  # that part of the project does not exist (yet)
            _DISCOVERY_ERRORS[package] = f"{type(exc).__name__}: {exc}"
            continue
        except Exception as exc:  # noqa: BLE001 - report any import failure, keep the rest usable
            _DISCOVERY_ERRORS[package] = f"{type(exc).__name__}: {exc}"
            continue
        paths = getattr(pkg, "__path__", None)
        if paths:
            modules += [
                m.name
                for m in pkgutil.walk_packages(paths, package + ".")
                if not m.name.rsplit(".", 1)[-1].startswith("_")
            ]
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001
            _DISCOVERY_ERRORS[name] = f"{type(exc).__name__}: {exc}"
    if BENCHMARKS_DIR.is_dir():
        for path in sorted(BENCHMARKS_DIR.glob("*.py")):
            _import_path(path)
    return dict(_DISCOVERY_ERRORS)


def _import_path(path: Path) -> None:
    # benchmarks/ is not a package (pytest must not collect it); import its files by path
    name = f"mi_atlas_benchmarks.{path.stem}"
    if name in sys.modules:
        return
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001
        sys.modules.pop(name, None)
        _DISCOVERY_ERRORS[str(path)] = f"{type(exc).__name__}: {exc}"


def entries(kind: str | None = None) -> list[Entry]:
    """Registered entries (after discovery), sorted by name, optionally of one kind."""
    discover()
    return sorted(
        (e for e in _ENTRIES.values() if kind is None or e.kind == kind), key=lambda e: e.name
    )


def get(name: str, kinds: tuple[str, ...] = ("method", "recipe", "check")) -> Entry:
    """The entry `name` among `kinds`, or UnknownNameError with the valid names."""
    discover()
    entry = _ENTRIES.get(name)
    if entry is None or entry.kind not in kinds:
        valid = sorted(e.name for e in _ENTRIES.values() if e.kind in kinds)
        raise UnknownNameError(name, valid, " or ".join(kinds))
    return entry


def listing() -> dict[str, Any]:
    """What `mi-atlas list --json` prints: methods, recipes, checks, benchmarks, the zoo's cards."""
    from reference_impls import zoo

    errors = discover()
    out: dict[str, Any] = {f"{kind}s": [e.to_dict() for e in entries(kind)] for kind in KINDS}
    out["models"] = [zoo.card(name) for name in zoo.names()]
    out["errors"] = [{"module": m, "error": e} for m, e in sorted(errors.items())]
    return out


def run(name: str, model: str | None = None) -> runs.Run:
    """Run method/recipe/check `name` on zoo model `model` (default: the entry's default model)."""
    from reference_impls import zoo
    from reference_impls.threads import one_thread

    entry = get(name)
    model = model or entry.default_model
    if model is None:
        raise RegistryError(f"{name!r} has no default model; pass one of: {', '.join(zoo.names())}")
    if model not in zoo.names():
        raise zoo.unknown_model(model)
    with one_thread():
        out = entry.fn(model)
    if not isinstance(out, Outcome):
        raise RegistryError(
            f"{name!r} ({entry.module}) returned {type(out).__name__}, not a registry.Outcome"
        )
    return runs.Run(
        name=name,
        kind=entry.kind,
        method=entry.method,
        model=zoo.model_ref(model),
        task=zoo.task_ref(model),
        result=out.result,
        truth=zoo.truth(model),
        recovered=out.recovered,
        command=entry.command(model),
        source=entry.source,
        seeds=list(out.seeds),
        environment=environment(),
    )


def environment(device: str = "cpu", **more: str) -> dict[str, str]:
    """Library versions, Python and the device a run used (the zoo demos run on CPU)."""
    from reference_impls.runcache import library_versions

    return {**library_versions(), "python": platform.python_version(), "device": device, **more}


def bench(name: str) -> dict[str, Any]:
    """Run benchmark `name`; its dict has baseline, ours, ratio and max_abs_diff."""
    entry = get(name, kinds=("benchmark",))
    out = dict(entry.fn())
    missing = [k for k in ("baseline", "ours", "ratio", "max_abs_diff") if k not in out]
    if missing:
        raise RegistryError(f"benchmark {name!r} ({entry.module}) returned no {', '.join(missing)}")
    return {"name": name, **out}
