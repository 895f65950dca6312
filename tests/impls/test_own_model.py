"""`mi-atlas run METHOD --model PATH_OR_NAME --task FILE`: any model, a task file, one run document.

In-process CLI runs (click's CliRunner) on a zoo model, on a random-init Hugging Face folder of
another architecture and on a TransformerLens-native folder (`boot_native`, bidirectional);
exact messages for the user's mistakes; the memory budget, dtypes and an accelerate device map.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from locate_testing import native, tiny

from mi_atlas import runs
from mi_atlas.cli import cli
from reference_impls import loading
from reference_impls.locate import _batched_patch as BP
from reference_impls.locate.causal_attribution import activation_patching
from reference_impls.task_methods import LOCATE, run_task, scores_of

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

IDS_TASK = """\
prompts:
  - clean_ids: [1, 5, 9, 4, 5]
    corrupted_ids: [1, 7, 9, 4, 5]
    answer_id: 9
    counterfactual_id: 4
  - clean_ids: [1, 6, 11, 3, 6]
    corrupted_ids: [1, 12, 11, 3, 6]
    answer_id: 11
    counterfactual_id: 3
  - clean_ids: [1, 8, 10, 13, 8]
    corrupted_ids: [1, 14, 10, 13, 8]
    answer_id: 10
    counterfactual_id: 13
  - clean_ids: [1, 15, 3, 7, 15]
    corrupted_ids: [1, 4, 3, 7, 15]
    answer_id: 3
    counterfactual_id: 7
metric: logit-diff
position: -1
"""


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def ids_task(tmp_path_factory):
    path = tmp_path_factory.mktemp("task") / "ids.yaml"
    path.write_text(IDS_TASK, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2")
    tiny("gpt2", directory)
    return directory


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory, hf_dir):
    # a bidirectional TL-native model saved as a state dict plus its config
    return loading.save_native(native("bidirectional"), tmp_path_factory.mktemp("native"), hf_dir)


def document(result) -> runs.Run:
    assert result.exit_code == 0, result.output
    return runs.Run.model_validate_json(result.stdout)  # stdout is the document, nothing else


def test_a_zoo_model_with_a_shipped_task_prints_one_run_document(tmp_path):
    result = invoke(
        "run", "causal-attribution", "--model", "induction", "--task", "tasks/induction.yaml",
        "--json", "--out", tmp_path,
    )  # fmt: skip
    doc = document(result)
    assert doc.model.source == "zoo" and doc.model.architecture == "LlamaForCausalLM"
    assert doc.task.name == "induction" and doc.task.n_prompts == 4
    top = doc.result.scores[0].target
    assert top.kind in ("head_out", "mlp_out") and top.layer == 1 and top.pos == 9
    # every site named in full: hook, object, layer, head, position
    for scored in doc.result.scores:
        site = scored.target
        assert site.hook.startswith("blocks.") and site.object and site.pos is not None
    assert json.loads((tmp_path / "causal-attribution.json").read_text()) == json.loads(
        result.stdout
    )


@pytest.mark.parametrize("method", LOCATE)
def test_every_locate_method_runs_on_a_tl_native_folder(native_dir, ids_task, method):
    doc = document(invoke("run", method, "--model", native_dir, "--task", ids_task, "--json"))
    assert doc.model.source == "tl-native" and doc.model.architecture == "TransformerLensNative"
    assert doc.result.type == "locate" and len(doc.result.scores) > 0
    assert all(s.score.mean == s.score.mean for s in doc.result.scores)  # no NaN


def test_a_local_hf_folder_of_another_architecture_runs_and_matches_the_library(hf_dir, ids_task):
    doc = document(
        invoke("run", "causal-attribution", "--model", hf_dir, "--task", ids_task, "--json")
    )
    assert doc.model.source == "hf-dir" and doc.model.architecture == "GPT2LMHeadModel"
    # independent: the library's own sweep on the same inputs
    model, _ = loading.load_model(str(hf_dir))
    from mi_atlas import tasks
    from reference_impls.task_run import prepare

    batch = prepare(tasks.load(ids_task), model)
    from reference_impls import addressing as A

    sites = A.heads(model, "out", positions=5)
    expected = activation_patching(model, batch.clean, batch.corrupted, sites, batch.metric(model))
    got = scores_of(doc.result)
    for site, value in zip(sites, expected.meta["recovered"].tolist(), strict=True):
        assert got[str(site)] == pytest.approx(value, abs=1e-5)


@pytest.mark.parametrize(
    ("method", "task"),
    [
        ("amplitude-manipulation", "tasks/induction.yaml"),
        ("vector-arithmetic", "tasks/induction.yaml"),
    ],
)
def test_steer_methods_run_from_a_task(method, task):
    doc = document(invoke("run", method, "--model", "induction", "--task", task, "--json"))
    assert doc.result.type == "steer" and doc.result.restored
    (measure,) = doc.result.measures
    assert measure.before.mean != measure.after.mean


def test_rome_edits_the_tasks_fact_and_restores_the_model():
    doc = run_task("targeted-optimization", "facts", "tasks/fact.yaml")
    fact, collateral = doc.result.measures
    assert fact.before.mean < 0.01 and fact.after.mean > 0.5
    assert doc.result.restored and doc.result.targets[0].layer == 0  # the located fact MLP


# ---- the user's mistakes: one line each ----------------------------------------------------


def test_clean_and_corrupted_of_different_lengths_show_both(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        'prompts:\n  - clean: "<bos> t3 t7 t9"\n    corrupted: "<bos> t5 t7"\n'
        '    answer: "t7"\nmetric: answer-prob\n',
        encoding="utf-8",
    )
    result = invoke("run", "causal-attribution", "--model", "induction", "--task", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: {path}: prompts.0: clean is 4 tokens but corrupted is 3 tokens; patching needs "
        "equal lengths (clean: <bos> | t3 | t7 | t9; corrupted: <bos> | t5 | t7)"
    )


def test_usage_errors(ids_task, monkeypatch):
    result = invoke("run", "casual-attribution", "--model", "induction", "--task", ids_task)
    assert result.exit_code == 2
    assert (
        "'casual-attribution' does not run from a task file (did you mean 'causal-attribution'?)"
        in result.stderr
    )
    result = invoke("run", "probing", "--task", ids_task)
    assert result.exit_code == 2 and "--task needs --model" in result.stderr
    result = invoke(
        "run", "probing", "--model", "induction", "--task", ids_task, "--max-memory", "lots"
    )
    assert result.exit_code == 1
    assert "--max-memory 'lots' is not a size; write e.g. 8GB" in result.stderr
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke("run", "probing", "--model", "someone/no-such-model", "--task", ids_task)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: could not load 'someone/no-such-model' from the Hugging Face Hub"
    )
    assert result.stderr.count("\n") == 1


# ---- memory, dtype, device map ---------------------------------------------------------------


def test_the_sweep_fits_its_chunks_to_the_memory_budget(hf_dir, ids_task):
    model, _ = loading.load_model(str(hf_dir))
    assert BP.copies_per_forward(model, 4, 5, 256) == 256  # no budget: the caller's chunk
    with BP.sweep_limits(max_bytes=10**9):
        roomy = BP.copies_per_forward(model, 4, 5, 256)
    with BP.sweep_limits(max_bytes=10**6):
        tight = BP.copies_per_forward(model, 4, 5, 256)
    assert 1 <= tight < roomy
    unlimited = run_task("causal-attribution", str(hf_dir), ids_task)
    limited = run_task("causal-attribution", str(hf_dir), ids_task, max_memory=10**6)
    assert scores_of(limited.result) == pytest.approx(scores_of(unlimited.result), abs=1e-5)


def test_bfloat16_and_a_device_map_over_one_device(hf_dir, ids_task):
    reference = scores_of(run_task("causal-attribution", str(hf_dir), ids_task).result)
    mapped = run_task("causal-attribution", str(hf_dir), ids_task, device_map={"": "cpu"})
    assert scores_of(mapped.result) == pytest.approx(reference, abs=1e-5)
    half = run_task("vocab-projection", str(hf_dir), ids_task, dtype="bfloat16")
    assert half.environment["dtype"] == "bfloat16" and len(half.result.scores) == 2


# ---- docs that cannot drift ------------------------------------------------------------------


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    from helpers import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run a method on your model", 1)[1]
    script = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    task = re.search(r"<<'YAML'\n(.*?)YAML\n", script, flags=re.S).group(1)
    command = script.strip().splitlines()[-1].split()
    assert command[:2] == [".venv/bin/mi-atlas", "run"]
    (tmp_path / "my-task.yaml").write_text(task, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    args = [str(REPO / a) if a.startswith("reference_impls/") else a for a in command[1:]]
    doc = document(invoke(*args))
    assert doc.result.scores[0].target.layer == 1  # the induction heads' layer


def test_the_task_reference_in_the_docs_is_a_valid_task(tmp_path):
    from helpers import REPO

    from mi_atlas import tasks

    page = (REPO / "docs" / "own-model.md").read_text(encoding="utf-8")
    example = re.search(r"## The task file.*?```yaml\n(.*?)```", page, flags=re.S).group(1)
    path = tmp_path / "reference.yaml"
    path.write_text(example, encoding="utf-8")
    task = tasks.load(path)
    assert task.metric == "logit-diff" and task.fact is not None and len(task.prompts) == 2
