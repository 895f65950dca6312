"""`mi-atlas list`, `mi-atlas run` and `mi-atlas bench`: the reference implementations' front.

Each command calls one function of `reference_impls.registry` and turns its named exceptions
into one line and an exit code. torch is imported only inside the commands (through
`reference_impls`), so the rest of `mi-atlas` works without the `impls` extra.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any

import click

from .options import emit_json, fail, json_option
from .own_model import own_model_options, run_on_task, summary

INSTALL_HINT = "pip install -c constraints.txt '.[impls]'"


def _registry() -> Any:
    """The registry module, or exit 1 with the install command when the impls extra is missing."""
    missing = [
        m
        for m in ("torch", "transformers", "transformer_lens")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        fail(
            f"the reference implementations need {', '.join(missing)}; install them with: {INSTALL_HINT}"
        )
    from reference_impls import registry

    return registry


def _clean(value: Any) -> Any:
    # JSON has no NaN/Infinity: write null so every consumer can parse the document
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@click.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List the runnable methods, recipes, checks and benchmarks, and the zoo models.

    Example: mi-atlas list --json
    """
    registry = _registry()
    listing = registry.listing()
    if as_json:
        emit_json(_clean(listing))
        return
    for kind in ("methods", "recipes", "checks", "benchmarks"):
        click.echo(f"{kind}:")
        for entry in listing[kind] or []:
            model = f" [default model: {entry['default_model']}]" if entry["default_model"] else ""
            click.echo(f"  {entry['name']:<28} {entry['summary']}{model}")
        if not listing[kind]:
            click.echo("  (none)")
    click.echo("zoo models:")
    for card in listing["models"]:
        acc = card["metrics"]["accuracy"]
        click.echo(f"  {card['name']:<28} accuracy {acc:.3f}  {card['description']}")
    for err in listing["errors"]:
        click.echo(f"warning: {err['module']} could not be imported: {err['error']}", err=True)


@click.command()
@click.argument("name", required=False)
@click.option(
    "--model",
    "model",
    default=None,
    help="Zoo model to run on (default: the method's own); with --task, any model: a zoo name, "
    "a Hugging Face folder or hub id, or a TransformerLens-native folder.",
)
@click.option(
    "--all",
    "run_all",
    is_flag=True,
    help="Run every method and recipe on its default model into --out (default "
    ".mi-atlas-cache/runs): OUT/NAME.json and OUT/index.json, reusing unchanged documents.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="With --all: runs computed at once, each in its own process on one thread "
    "(default: the number of CPU cores, at most 4).",
)
@own_model_options
@json_option
def run(
    name: str | None,
    model: str | None,
    run_all: bool,
    jobs: int | None,
    as_json: bool,
    task: Path | None,
    **own: Any,
) -> None:
    """Run a method, recipe or check on a zoo model and print its run document.

    With --task FILE, run a locate or steer method on any model and the task's prompts
    (docs/own-model.md). With --all, run every method and recipe on its default model and
    write OUT/NAME.json and OUT/index.json; a run whose code, zoo model and libraries are
    unchanged is read from OUT, not run again (docs/results.md).

    Example: mi-atlas run causal-attribution --model induction --json

    Example: mi-atlas run causal-attribution --model induction --task tasks/induction.yaml --json

    Example: mi-atlas run --all --out .mi-atlas-cache/runs --jobs 2
    """
    if run_all:
        if name or model or as_json or task:
            fail(
                "--all runs every method and recipe on its own model; give no NAME, --model, "
                "--task or --json",
                code=2,
            )
        _run_all(own["out_dir"], jobs or default_jobs())
        return
    if jobs is not None:
        fail("--jobs applies to --all only; a single run uses one process", code=2)
    if name is None:
        fail("give a NAME to run (see mi-atlas list), or --all", code=2)
    if task is not None:
        _registry()  # the impls extra must be installed
        run_on_task(name, model, task, as_json, **own)
        return
    registry = _registry()
    from reference_impls import zoo

    try:
        doc = registry.run(name, model)
    except (registry.UnknownNameError, zoo.UnknownModelError) as exc:
        fail(str(exc), code=2)  # a usage error: the sentence lists the valid names
    except (registry.RegistryError, zoo.ZooError) as exc:
        fail(str(exc))
    text = doc.model_dump_json(indent=2)
    if own["out_dir"] is not None:
        from mi_atlas.yamlio import write_atomic

        write_atomic(own["out_dir"] / f"{name}.json", text + "\n", overwrite=True)
    if as_json:
        click.echo(text)
        return
    for line in summary(doc):
        click.echo(line)


def default_jobs() -> int:
    """As many runs at once as the CPU has cores (each run is on one thread), at most 4."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cores or 1))


def _run_all(out: Path | None, jobs: int) -> None:
    """`run --all`: plan from the folder, compute the rest under a progress bar, write the index."""
    _registry()  # the install hint first (finds, imports nothing): keys name torch's version
    from reference_impls.runcache import DEFAULT_OUT, RunFolder

    folder = RunFolder(out or DEFAULT_OUT)
    todo = folder.plan()
    if todo:
        with click.progressbar(
            folder.compute_all(todo, jobs),
            length=len(todo),
            label=f"running {len(todo)} of {len(folder.entries)} ({jobs} at once)",
            file=sys.stderr,
            item_show_func=lambda e: e.name if e else "",
        ) as bar:
            for _ in bar:
                pass
    index = folder.finish()
    cached = len(index.runs) - len(todo)
    click.echo(
        f"{len(index.runs)} runs in {folder.out}: {len(todo)} computed, {cached} cached", err=True
    )
    for module, error in sorted(index.import_errors.items()):
        click.echo(f"warning: {module} could not be imported: {error}", err=True)
    for entry in folder.failed:
        click.echo(f"failed: {entry.name}: {entry.error}", err=True)
    if folder.failed:
        sys.exit(1)


@click.command()
@click.argument("name")
@json_option
def bench(name: str, as_json: bool) -> None:
    """Time a method against its baseline in one process; print the ratio and the largest difference.

    Example: mi-atlas bench causal-attribution --json
    """
    registry = _registry()
    try:
        out = registry.bench(name)
    except registry.UnknownNameError as exc:
        fail(str(exc), code=2)
    except registry.RegistryError as exc:
        fail(str(exc))
    if as_json:
        emit_json(_clean(out))
        return
    click.echo(
        f"{name}: baseline {out['baseline']:.4g} s, ours {out['ours']:.4g} s, "
        f"ratio {out['ratio']:.3g}x, max |diff| {out['max_abs_diff']:.3g}"
    )
