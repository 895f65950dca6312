"""`mi-atlas run METHOD --model PATH_OR_NAME --task FILE ...`: a method on the user's own model.

The options are one bundle (`own_model_options`) added to `mi-atlas run`; `run_on_task` calls
`reference_impls.task_methods.run_task` once and turns its named errors into one line and an
exit code. Library output that some loaders print (TransformerLens' "Moving model to device")
goes to stderr, so `--json` stdout holds the run document and nothing else; the progress bar of
long sweeps is on stderr too.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .options import fail

DEVICES = ("cpu", "cuda", "mps")
DTYPES = ("float32", "bfloat16", "float16")


def own_model_options(func: Callable) -> Callable:
    """--task, --device, --dtype, --batch-size, --max-memory, --device-map, --out."""
    options = [
        click.option(
            "--task",
            "task",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="Task file (YAML: prompt pairs, answers, metric; see docs/own-model.md). "
            "With it, --model may be any model: a zoo name, a Hugging Face folder or hub id, "
            "or a TransformerLens-native folder.",
        ),
        click.option(
            "--device",
            type=click.Choice(DEVICES),
            default="cpu",
            show_default=True,
            help="Where the model runs.",
        ),
        click.option(
            "--dtype",
            type=click.Choice(DTYPES),
            default="float32",
            show_default=True,
            help="Weights and activations.",
        ),
        click.option(
            "--batch-size",
            "batch_size",
            type=click.IntRange(min=1),
            default=256,
            show_default=True,
            help="Patched copies per forward in a sweep (lowered further to fit --max-memory).",
        ),
        click.option(
            "--max-memory",
            "max_memory",
            default=None,
            help="Memory a sweep's activations may use, e.g. 8GB (default: half the free RAM, "
            "80% of free GPU memory).",
        ),
        click.option(
            "--device-map",
            "device_map",
            default=None,
            help="accelerate device map for Hugging Face models, e.g. auto (spreads the model "
            "over the GPUs; then --device is ignored).",
        ),
        click.option(
            "--out",
            "out_dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="Folder for run documents: a single run also writes OUT/NAME.json; --all "
            "writes every run and index.json there (default .mi-atlas-cache/runs).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def run_on_task(
    name: str,
    model: str | None,
    task: Path,
    as_json: bool,
    device: str,
    dtype: str,
    batch_size: int,
    max_memory: str | None,
    device_map: str | None,
    out_dir: Path | None,
) -> None:
    """Run method `name` on `model` and `task`; print the run document (and write it to out_dir)."""
    from mi_atlas import tasks
    from reference_impls import loading, zoo
    from reference_impls.interventions import SilentInterventionError
    from reference_impls.locate._per_head import PerHeadError
    from reference_impls.locate.circuit_discovery import GraphError
    from reference_impls.task_methods import TaskMethodError, check_method, run_task

    if model is None:
        fail(
            "--task needs --model: a zoo name, a Hugging Face folder or hub id, or a TL-native folder",
            code=2,
        )
    try:
        check_method(name)
        budget = loading.memory_budget(max_memory, device)
        # some loaders print to stdout; keep stdout for the document, and stderr for the
        # sweep's progress and the errors (no per-file weight-loading bars)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        with contextlib.redirect_stdout(sys.stderr):
            doc = run_task(
                name,
                model,
                task,
                device=device,
                dtype=dtype,
                batch_size=batch_size,
                max_memory=budget,
                progress=True,
                device_map=_device_map(device_map),
            )
    except TaskMethodError as exc:
        fail(str(exc), code=2)
    except (
        tasks.TaskError,
        zoo.ZooError,
        SilentInterventionError,
        PerHeadError,
        GraphError,
    ) as exc:
        fail(str(exc))
    text = doc.model_dump_json(indent=2)
    if out_dir is not None:
        from mi_atlas.yamlio import write_atomic

        write_atomic(out_dir / f"{name}.json", text + "\n", overwrite=True)
    if as_json:
        click.echo(text)
        return
    for line in summary(doc):
        click.echo(line)


def _device_map(text: str | None) -> str | dict[str, Any] | None:
    """accelerate's device map: a strategy name ("auto", "balanced") or a JSON object."""
    if text is None or not text.lstrip().startswith("{"):
        return text
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f'--device-map {text!r} is not a JSON object ({exc.msg}); e.g. \'{{"": "cpu"}}\'',
            code=2,
        )


def summary(doc: Any, top: int = 10) -> list[str]:
    """A few lines for a person: what ran, on what, and the top of the ranking or the measures."""
    prompts = f"{doc.task.n_prompts} prompts, " if doc.task.n_prompts is not None else ""
    lines = [
        f"{doc.method} on {doc.model.name} ({doc.model.source}, {doc.model.architecture}), "
        f"task {doc.task.name} ({prompts}{doc.task.metric})"
    ]
    result = doc.result
    if result.type == "locate":
        lines.append(f"  {result.setting}")
        lines.append(f"  score: {result.meaning}")
        for scored in result.scores[:top]:
            role = doc.truth.role_for(scored.target) if doc.truth else None
            lines.append(
                f"  {scored.rank:>4}. {scored.target.label:<40} {scored.score.mean:.4g}"
                + (f"  [{role}]" if role else "")
            )
        if result.recovery is not None:
            r = result.recovery
            auroc = f"AUROC {r.auroc}, " if r.auroc is not None else ""
            lines.append(
                f"  against the planted sites: {auroc}precision at {r.k} {r.precision_at_k}"
            )
        if len(result.scores) > top:
            lines.append(f"  ... {len(result.scores) - top} more (--json for all)")
        for name, value in result.numbers.items():
            lines.append(f"  {name}: {value}")
        for variant in result.variants:
            best = variant.scores[0] if variant.scores else None
            if best is not None:
                lines.append(
                    f"  variant {variant.variant}: top {best.target.label} {best.score.mean:.4g}"
                )
    elif result.type == "check":
        lines += [f"  {'pass' if c.passed else 'FAIL'}  {c.name}" for c in result.checks]
    else:
        recipe = result.type == "recipe"
        lines.append(f"  {result.locate} -> {result.steer}" if recipe else f"  {result.setting}")
        measures = [result.metric, *result.collateral, *result.other] if recipe else result.measures
        for m in measures:
            data = f" ({m.data})" if m.data else ""
            lines.append(
                f"  {m.name}: before {m.before}, after {m.after}, control {m.control}{data}"
            )
        lines.append(f"  control: {result.control.description}")
        lines.append(f"  model restored afterwards: {result.restored}")
    if doc.recovered is not None:
        lines.append(f"  recovered the planted truth: {doc.recovered}")
    lines.append(f"  reproduce: {doc.command}")
    return lines
