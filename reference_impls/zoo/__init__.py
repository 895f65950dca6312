"""The model zoo: tiny causal LMs trained here on synthetic tasks whose mechanism is known.

Each model is a Hugging Face checkpoint under `zoo/models/<name>/` (`config.json`,
`model.safetensors`, `tokenizer.json`, `card.json`), trained by `scripts/train_zoo.py`. `load`
wraps it in a TransformerLens `TransformerBridge` exactly as a user would wrap GPT-2 or Pythia
(`boot_transformers` on a directory, then `enable_compatibility_mode()`), so every method runs on
a zoo model and on a hub model through one code path. A card (`card(name)`) holds the task, the
training recipe, the measured accuracy and the machine-readable `ground_truth` that tests check
methods against; `task(name)` is the module that generates the model's data.

Example:
    >>> model = load("induction")            # offline, a few hundred milliseconds
    >>> card("induction")["ground_truth"]["induction_heads"]
    >>> load("gpt2")                          # same path, from the Hub (needs network)
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from mi_atlas import runs

MODELS_DIR = Path(__file__).parent / "models"


class ZooError(Exception):
    """Base class of the zoo's errors; the message is one sentence for the user."""


class UnknownModelError(ZooError):
    """A name that is neither a zoo model nor a local checkpoint directory."""


class HubUnavailableError(ZooError):
    """A hub model that could not be fetched (offline, or no such repository)."""


def names() -> list[str]:
    """The zoo's model names, sorted."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "card.json").is_file())


def path(name: str) -> Path:
    """The checkpoint directory of zoo model `name`."""
    if name not in names():
        raise unknown_model(name)
    return MODELS_DIR / name


@functools.cache
def _card(name: str) -> str:
    return (path(name) / "card.json").read_text(encoding="utf-8")


def card(name: str) -> dict[str, Any]:
    """The card of zoo model `name` (a fresh dict: task, example, training, metrics, ground_truth)."""
    return json.loads(_card(name))


def ground_truth(name: str) -> dict[str, Any]:
    """The machine-readable ground truth of zoo model `name` (see docs/zoo.md)."""
    return card(name)["ground_truth"]


def truth(name: str) -> runs.GroundTruth:
    """What is planted in zoo model `name`, with roles, as its task module states it."""
    module = task(name)
    if not hasattr(module, "ground_truth"):
        raise ZooError(
            f"{module.__name__} has no ground_truth(card) -> runs.GroundTruth: every zoo task "
            "states what it plants (see docs/zoo.md)"
        )
    return module.ground_truth(card(name))


def model_ref(name: str) -> runs.ModelRef:
    """Zoo model `name` as a run document names it (architecture and size from its card)."""
    c = card(name)
    training = c.get("training") or {}
    return runs.ModelRef(
        name=name,
        source="zoo",
        architecture=c.get("architecture", ""),
        n_layers=training.get("n_layers"),
        n_heads=training.get("n_heads"),
        d_model=training.get("d_model"),
    )


def task_ref(name: str) -> runs.TaskRef:
    """The task of zoo model `name` as a run document names it."""
    c = card(name)
    return runs.TaskRef(
        name=c["task_module"],
        description=c.get("task", ""),
        metric=c["ground_truth"].get("metric", ""),
        source=f"reference_impls/zoo/tasks/{c['task_module']}.py",
    )


def described(name: str) -> runs.ZooModel:
    """Zoo model `name` for a run folder's index: model, task, card metrics and planted truth."""
    return runs.ZooModel(
        model=model_ref(name), task=task_ref(name), metrics=card(name)["metrics"], truth=truth(name)
    )


def task(name: str) -> ModuleType:
    """The data module of zoo model `name` (`reference_impls.zoo.tasks.<task>`)."""
    return importlib.import_module(f"reference_impls.zoo.tasks.{card(name)['task_module']}")


def unknown_model(name: str) -> UnknownModelError:
    """The error for a name that is not a zoo model, naming the closest one and all of them."""
    import difflib

    valid = names()
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UnknownModelError(f"{name!r} is not a zoo model{hint}; zoo models: {', '.join(valid)}")


def load(
    name_or_path: str | Path,
    device: str = "cpu",
    compatibility_mode: bool = True,
    dtype: Any = None,
    device_map: str | dict[str, Any] | None = None,
) -> Any:
    """Load a zoo model, a local checkpoint directory or a Hugging Face Hub model as a bridge.

    Zoo names never touch the network. Any other name goes to the Hub through the same code;
    when that fails (offline, or no such model) a HubUnavailableError says so in one sentence.
    `compatibility_mode` (default) gives HookedTransformer hook names and processed weights.
    `dtype` (a torch dtype; default float32) and `device_map` (accelerate's, e.g. "auto" or
    {"": "cpu"}: the Hugging Face model is placed before it is bridged) are passed to
    `from_pretrained`.
    """
    name = str(name_or_path)
    if name in names():
        source, local = str(MODELS_DIR / name), True
    elif Path(name).is_dir():
        source, local = name, True
    else:
        source, local = name, False
    try:
        hf_model, tokenizer = _load_hf(source, local, dtype, device_map)
    except OSError as exc:
        if local:
            raise ZooError(
                f"{source} is not a loadable checkpoint directory: {_first_line(exc)}"
            ) from exc
        raise HubUnavailableError(
            f"could not load {name!r} from the Hugging Face Hub (offline, or no such model: "
            f"{_first_line(exc)}); zoo models load offline: {', '.join(names())}"
        ) from exc
    # accelerate placed a device-mapped model already: the bridge must not move it
    placed = None if device_map is not None else device
    return _bridge(source, hf_model, tokenizer, placed, compatibility_mode, dtype)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__


def _load_hf(
    source: str, local: bool, dtype: Any = None, device_map: str | dict[str, Any] | None = None
) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    # eager attention: the bridge forces it too, so HF and bridged logits agree
    extra = {} if device_map is None else {"device_map": device_map}
    hf_model = AutoModelForCausalLM.from_pretrained(
        source,
        local_files_only=local,
        attn_implementation="eager",
        dtype=dtype if dtype is not None else "float32",
        **extra,
    )
    if local:
        # the bridge needs a tokenizer loaded from disk (an in-memory one lacks name_or_path)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(source, local_files_only=True)
    else:
        tokenizer = AutoTokenizer.from_pretrained(source)
    return hf_model.eval(), tokenizer


def _bridge(
    source: str,
    hf_model: Any,
    tokenizer: Any,
    device: str | None,
    compatibility_mode: bool,
    dtype: Any = None,
) -> Any:
    import torch
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_transformers(
        source,
        hf_model=hf_model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype if dtype is not None else torch.float32,
    )
    if compatibility_mode:
        bridge.enable_compatibility_mode(disable_warnings=True)
    bridge.eval()
    return bridge
