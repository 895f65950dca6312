"""Task files: validated by pydantic with errors naming the file, line and field; schema shipped.

Torch-free: the file format lives in mi_atlas.tasks; tokenising against a model is tested in
tests/impls/test_task_run.py.
"""

from __future__ import annotations

import json
import sys

import jsonschema
import pytest
import yaml
from helpers import REPO

from mi_atlas import tasks

sys.path.insert(0, str(REPO / "scripts"))
from generate_task_schema import render  # noqa: E402

GOOD = """\
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
"""


def write(tmp_path, text, name="task.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_file_loads_with_its_defaults(tmp_path):
    task = tasks.load(write(tmp_path, GOOD, "my-task.yaml"))
    assert task.name == "my-task" and task.position == -1 and task.metric == "logit-diff"
    assert task.prompts[1].clean_ids == [1, 6, 10, 12, 6]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # different id lengths: both lengths shown, on the prompt's line
        (
            ("corrupted_ids: [1, 8, 10, 12, 6]", "corrupted_ids: [1, 8, 10, 12]"),
            ":6: prompts.1: clean_ids has 5 tokens but corrupted_ids has 4",
        ),
        (("metric: logit-diff", "metric: logit-dif"), ":10: metric: Input should be 'logit-diff'"),
        (
            ("    answer_id: 10\n", ""),
            ":6: prompts.1: give exactly one of answer (text) or answer_id",
        ),
        (
            ('    counterfactual: " t9"\n', ""),
            ":2: prompts.0: metric logit-diff needs a counterfactual (or counterfactual_id) in "
            "every prompt; none in prompts.0",
        ),
        (
            ("metric: logit-diff", "metric: kl\nlayer: 3"),
            ":11: layer: Extra inputs are not permitted",
        ),
        (
            ("    answer_id: 10", "    answer_id: -1"),
            ":6: prompts.1.answer_id: Input should be greater",
        ),
    ],
)
def test_each_error_names_the_file_line_and_field(tmp_path, edit, expected):
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(tasks.TaskError) as err:
        tasks.load(path)
    assert f"{path}{expected}" in str(err.value)


def test_malformed_yaml_and_missing_files_are_one_clear_line(tmp_path):
    with pytest.raises(tasks.TaskError, match=r"task.yaml:3: is not valid YAML"):
        tasks.load(write(tmp_path, "prompts:\n  - clean: [\n  - x: }\n"))
    with pytest.raises(tasks.TaskError, match="no such task file"):
        tasks.load(tmp_path / "missing.yaml")
    with pytest.raises(tasks.TaskError, match="a task file is a mapping"):
        tasks.load(write(tmp_path, "- just a list\n"))


def test_the_shipped_schema_is_current_and_validates_the_examples():
    shipped = (REPO / "schema" / "task.schema.json").read_text(encoding="utf-8")
    assert shipped == render(), (
        "schema/task.schema.json is stale: run scripts/generate_task_schema.py"
    )
    schema = json.loads(shipped)
    examples = sorted((REPO / "tasks").glob("*.yaml"))
    assert len(examples) >= 3
    for path in examples:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        jsonschema.validate(data, schema)
        assert tasks.load(path).prompts
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"prompts": [], "metric": "accuracy"}, schema)
