"""`mi-atlas list`, `mi-atlas run` and `mi-atlas bench`: the reference implementations' front.

Each command calls one function of `reference_impls.registry` and turns its named exceptions
into one line and an exit code. torch is imported only inside the commands (through
`reference_impls`), so the rest of `mi-atlas` works without the `impls` extra.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import click

from .options import emit_json, fail, json_option
from .own_model import own_model_options, run_on_task

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
@click.argument("name")
@click.option(
    "--model",
    "model",
    default=None,
    help="Zoo model to run on (default: the method's own); with --task, any model: a zoo name, "
    "a Hugging Face folder or hub id, or a TransformerLens-native folder.",
)
@own_model_options
@json_option
def run(name: str, model: str | None, as_json: bool, task: Path | None, **own: Any) -> None:
    """Run a method, recipe or check on a zoo model and print its result and the ground truth.

    With --task FILE, run a locate or steer method on any model and the task's prompts
    (docs/own-model.md).

    Example: mi-atlas run zoo-check --model induction --json

    Example: mi-atlas run causal-attribution --model induction --task tasks/induction.yaml --json
    """
    if task is not None:
        _registry()  # the impls extra must be installed
        run_on_task(name, model, task, as_json, **own)
        return
    registry = _registry()
    from reference_impls import zoo

    try:
        out = registry.run(name, model)
    except (registry.UnknownNameError, zoo.UnknownModelError) as exc:
        fail(str(exc), code=2)  # a usage error: the sentence lists the valid names
    except (registry.RegistryError, zoo.ZooError) as exc:
        fail(str(exc))
    if as_json:
        emit_json(_clean(out))
        return
    click.echo(f"{out['kind']} {out['name']} on {out['model']}")
    for key, value in out["result"].items():
        click.echo(f"  {key}: {_short(value)}")
    click.echo(f"  recovered the ground truth: {out['recovered']}")


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


def _short(value: Any, limit: int = 100) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
