"""Task files: the prompts, answers and metric a method runs on, in YAML, validated.

A task file names what a locate or steer method compares on a user's own model: pairs of a
clean and a corrupted prompt (text the model's tokenizer splits, or token ids for models
without one), the answer the clean prompt should produce (and, for a logit difference, the
counterfactual the corrupted one points to), the metric read from the logits, and the position
it is read at. Optionally a `fact` to edit (a rank-one edit, ROME-style). Validated by pydantic
with every error naming its line; `schema/task.schema.json` is generated from `Task` for
editors (`python scripts/generate_task_schema.py`). Torch-free: tokenising is `reference_impls.task_run`.

Example (tasks/induction.yaml):

    prompts:
      - clean: "<bos> t3 t7 t9 t3"
        corrupted: "<bos> t5 t7 t9 t3"
        answer: " t7"
        counterfactual: " t9"
      - clean_ids: [1, 6, 10, 12, 6]
        corrupted_ids: [1, 8, 10, 12, 6]
        answer_id: 10
        counterfactual_id: 12
    metric: logit-diff
    position: -1
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mi_atlas import yamlio

Metric = Literal["logit-diff", "answer-logit", "answer-prob", "answer-logprob", "kl"]
METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]


class TaskError(ValueError):
    """A task file that cannot be used; the message names the file, the line and the field."""


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prompt(_Doc):
    """One clean/corrupted pair, as text or as token ids, with its answer."""

    clean: str | None = Field(None, description="clean prompt text (tokenised by the model)")
    corrupted: str | None = Field(None, description="corrupted prompt text, same token length")
    clean_ids: list[int] | None = Field(None, description="clean prompt as token ids")
    corrupted_ids: list[int] | None = Field(None, description="corrupted prompt as token ids")
    answer: str | None = Field(None, description="the clean prompt's answer: one token of text")
    answer_id: int | None = Field(None, ge=0, description="the answer as a token id")
    counterfactual: str | None = Field(
        None, description="the corrupted prompt's answer (needed for logit-diff)"
    )
    counterfactual_id: int | None = Field(None, ge=0, description="the counterfactual as an id")

    @model_validator(mode="after")
    def _one_form(self) -> Prompt:
        text = self.clean is not None or self.corrupted is not None
        ids = self.clean_ids is not None or self.corrupted_ids is not None
        if text == ids:
            raise ValueError(
                "give either clean and corrupted (text) or clean_ids and corrupted_ids"
            )
        if text and (self.clean is None or self.corrupted is None):
            raise ValueError("a text pair needs both clean and corrupted")
        if ids and (self.clean_ids is None or self.corrupted_ids is None):
            raise ValueError("an id pair needs both clean_ids and corrupted_ids")
        if ids and len(self.clean_ids or []) != len(self.corrupted_ids or []):
            raise ValueError(
                f"clean_ids has {len(self.clean_ids or [])} tokens but corrupted_ids has "
                f"{len(self.corrupted_ids or [])}; patching needs equal lengths"
            )
        if ids and not self.clean_ids:
            raise ValueError("clean_ids is empty")
        if (self.answer is None) == (self.answer_id is None):
            raise ValueError("give exactly one of answer (text) or answer_id")
        if self.counterfactual is not None and self.counterfactual_id is not None:
            raise ValueError("give at most one of counterfactual (text) or counterfactual_id")
        return self

    @property
    def has_counterfactual(self) -> bool:
        return self.counterfactual is not None or self.counterfactual_id is not None


class Fact(_Doc):
    """A fact to edit with a rank-one (ROME-style) update: `prompt` should answer `target`."""

    prompt: str | None = Field(None, description="the fact's prompt, e.g. 'The Eiffel Tower is in'")
    prompt_ids: list[int] | None = Field(None, description="the prompt as token ids")
    subject_position: int = Field(
        -1, description="the position of the subject's last token (where the edit is keyed)"
    )
    target: str | None = Field(None, description="the new answer, one token of text")
    target_id: int | None = Field(None, ge=0, description="the new answer as a token id")
    layer: int | None = Field(None, ge=0, description="the MLP layer to edit (default: middle)")

    @model_validator(mode="after")
    def _one_form(self) -> Fact:
        if (self.prompt is None) == (self.prompt_ids is None):
            raise ValueError("give exactly one of prompt (text) or prompt_ids")
        if (self.target is None) == (self.target_id is None):
            raise ValueError("give exactly one of target (text) or target_id")
        return self


class Task(_Doc):
    """A task file: prompt pairs, the metric and where it reads, optionally a fact to edit."""

    name: str = Field("", description="a short name (default: the file stem)")
    description: str = ""
    prompts: list[Prompt] = Field(min_length=1, description="one or more clean/corrupted pairs")
    metric: Metric = Field("logit-diff", description="what is read from the logits")
    position: int = Field(-1, description="the position the metric reads (default: the last)")
    fact: Fact | None = Field(None, description="a fact for the rank-one edit (rome)")

    @model_validator(mode="after")
    def _metric_needs(self) -> Task:
        if self.metric == "logit-diff":
            missing = [i for i, p in enumerate(self.prompts) if not p.has_counterfactual]
            if missing:
                raise ValueError(
                    "metric logit-diff needs a counterfactual (or counterfactual_id) in every "
                    f"prompt; none in {', '.join(f'prompts.{i}' for i in missing)}"
                )
        return self


def load(path: str | Path) -> Task:
    """Read and validate a task file; TaskError names the file, line and field of each problem."""
    path = Path(path)
    try:
        text = yamlio.read_text(path)
    except FileNotFoundError:
        raise TaskError(f"{path}: no such task file") from None
    except IsADirectoryError:
        raise TaskError(f"{path}: is a folder, not a task file") from None
    except yamlio.YamlError as exc:
        raise TaskError(f"{path}: {exc}") from None
    try:
        data = yamlio.load_text(text)
    except yamlio.YamlError as exc:
        where = f":{exc.line}" if exc.line else ""
        raise TaskError(f"{path}{where}: {exc}") from None
    if not isinstance(data, dict):
        raise TaskError(f"{path}: a task file is a mapping with at least 'prompts'")
    try:
        task = Task.model_validate(data)
    except ValidationError as exc:
        lines = yamlio.key_lines(text)
        raise TaskError("\n".join(_problem(path, err, lines) for err in exc.errors())) from None
    return task if task.name else task.model_copy(update={"name": path.stem})


def _problem(path: Path, err: Any, lines: dict[str, int]) -> str:
    loc = [str(x) for x in err["loc"]]
    if not loc:  # a check across fields: place it at the most specific key it names
        named = [k for k in lines if re.search(rf"\b{re.escape(k)}\b", str(err["msg"]))]
        loc = [max(named, key=len)] if named else []
    field = ".".join(loc) or "(file)"
    # the most specific located key: prompts.1 for anything inside the second prompt
    line = next((lines[k] for k in (".".join(loc[:n]) for n in (2, 1)) if k in lines), None)
    where = f":{line}" if line else ""
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{path}{where}: {field}: {message}"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a task file (written to schema/task.schema.json)."""
    schema = Task.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mi-atlas task file"
    return schema
