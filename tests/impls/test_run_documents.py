"""Run documents: what `mi-atlas run NAME --json` prints and `mi-atlas run --all` writes.

Every document validates against the shipped `schema/run.schema.json` and parses as a
`runs.Run`; every locate result's recovery numbers equal an independent computation from its
own scores (scikit-learn's ROC AUC, a sort for ranks and precision); every planted truth is the
zoo task's. `--all` writes into the repository's own run folder (`.mi-atlas-cache/runs`, which
`scripts/test.sh` fills before the tests), so it computes only what that folder lacks; a second
`--all` with nothing changed imports no method, and not torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from mi_atlas import runs
from mi_atlas.cli import cli
from mi_atlas.taxonomy import load_taxonomy
from reference_impls import registry, runcache, zoo

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schema" / "run.schema.json").read_text(encoding="utf-8"))
OUT = REPO / runcache.DEFAULT_OUT
TAXONOMY = load_taxonomy()


def validated(text: str) -> runs.Run:
    jsonschema.validate(json.loads(text), SCHEMA)
    return runs.Run.model_validate_json(text)


def locate_results(result: runs.LocateResult) -> list[runs.LocateResult]:
    return [result, *result.variants]


def check_recovery(result: runs.LocateResult) -> None:
    """The stored recovery equals one computed here from the stored scores alone (per seed,
    then the mean over seeds, where the scores hold one value per seed). Tied scores may sit in
    either order, so a planted rank is checked between its best and worst place among ties."""
    r = result.recovery
    assert r is not None
    labels = [s.target.label for s in result.scores]
    means = [s.score.mean for s in result.scores]
    planted = set(r.ranks)
    assert [s.rank for s in result.scores] == list(range(1, len(labels) + 1))
    assert means == sorted(means, reverse=True)
    n = result.scores[0].score.n
    per_seed = [[s.score.values[i] if n > 1 else s.score.mean for s in result.scores]
                for i in range(n)]  # fmt: skip
    positive = [label in planted for label in labels]
    aurocs, best, worst, sure, possible = [], {p: 0 for p in planted}, {p: 0 for p in planted}, 0, 0
    for values in per_seed:
        if 0 < sum(positive) < len(positive):
            aurocs.append(roc_auc_score(positive, values))
        for p in planted:
            v = values[labels.index(p)]
            best[p] += (1 + sum(x > v for x in values)) / n
            worst[p] += sum(x >= v for x in values) / n
        sure += sum(sum(x >= values[labels.index(p)] for x in values) <= r.k for p in planted)
        possible += sum(
            1 + sum(x > values[labels.index(p)] for x in values) <= r.k for p in planted
        )
    if aurocs:
        assert r.auroc.mean == pytest.approx(sum(aurocs) / n, abs=1e-9)
    for p, rank in r.ranks.items():
        assert best[p] - 1e-9 <= rank.mean <= worst[p] + 1e-9, p
    assert sure / (n * r.k) - 1e-9 <= r.precision_at_k.mean <= possible / (n * r.k) + 1e-9
    if sure == n * r.k:
        assert r.recovered
    if possible < n * r.k:
        assert not r.recovered


# -- one run, printed ---------------------------------------------------------------------


def test_run_json_prints_exactly_one_document_that_validates():
    result = CliRunner().invoke(cli, ["run", "vector-arithmetic", "--json"])
    assert result.exit_code == 0, result.output
    doc = validated(result.stdout)  # the whole of stdout is the document
    assert doc.name == "vector-arithmetic" and doc.kind == "method"
    assert doc.model.name == "refusal" and doc.result.type == "steer"
    assert doc.command == "mi-atlas run vector-arithmetic --model refusal"
    assert doc.source == "reference_impls/steer/vector_arithmetic.py"
    assert doc.truth == zoo.truth("refusal")
    assert {"torch", "transformer-lens", "device"} <= doc.environment.keys()
    assert doc.recovered is True and doc.result.restored


def test_run_without_json_prints_a_summary_and_the_command():
    result = CliRunner().invoke(cli, ["run", "causal-attribution"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("causal-attribution on ioi (zoo, GPT2LMHeadModel)")
    assert "[S-inhibition head]" in result.stdout  # the planted role beside a ranked site
    assert "reproduce: mi-atlas run causal-attribution --model ioi" in result.stdout


def test_zoo_check_is_a_typed_check_result():
    result = CliRunner().invoke(cli, ["run", "zoo-check", "--model", "facts", "--json"])
    assert result.exit_code == 0, result.output
    doc = validated(result.stdout)
    assert doc.result.type == "check" and doc.kind == "check"
    assert all(c.passed for c in doc.result.checks) and doc.recovered is True
    assert doc.result.numbers["card accuracy"].mean == zoo.card("facts")["metrics"]["accuracy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "give a NAME to run (see mi-atlas list), or --all"),
        (["run", "probing", "--all"], "--all runs every method and recipe on its own model"),
        (["run", "probing", "--jobs", "2"], "--jobs applies to --all only"),
        (["run", "--all", "--jobs", "0"], "Invalid value for '--jobs'"),
    ],
)
def test_run_usage_errors_exit_2_in_one_line(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


# -- every run, written -------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder() -> runs.RunIndex:
    """`mi-atlas run --all` into the repository's run folder (computes only what it lacks)."""
    done = subprocess.run(
        [sys.executable, "-c", "from mi_atlas.cli import cli; cli(['run', '--all'])"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == ""  # the progress bar and the summary go to stderr
    return runs.RunIndex.model_validate_json((OUT / "index.json").read_text(encoding="utf-8"))


def test_the_index_lists_every_registered_method_and_recipe(folder):
    expected = {e.name: e for kind in ("method", "recipe") for e in registry.entries(kind)}
    assert [e.name for e in folder.runs] == sorted(expected, key=lambda n: (expected[n].kind, n))
    for entry in folder.runs:
        reg = expected[entry.name]
        assert (entry.kind, entry.model, entry.source) == (reg.kind, reg.default_model, reg.source)
        assert entry.command == f"mi-atlas run {entry.name} --model {reg.default_model}"
        assert entry.file == f"{entry.name}.json" and entry.error is None
        # the taxonomy node whose page shows it (a variant names the method it varies)
        axes = ("goals",) if entry.kind == "recipe" else ("locate", "steer")
        assert any(entry.method in TAXONOMY[a].nodes for a in axes), (entry.name, entry.method)
    assert [m.model.name for m in folder.models] == zoo.names()
    assert all(m.truth == zoo.truth(m.model.name) for m in folder.models)


def test_every_document_validates_and_carries_its_models_truth(folder):
    for entry in folder.runs:
        doc = validated((OUT / entry.file).read_text(encoding="utf-8"))
        assert (doc.name, doc.kind, doc.model.name) == (entry.name, entry.kind, entry.model)
        assert doc.truth == zoo.truth(entry.model)
        assert doc.command == entry.command and doc.source == entry.source
        if doc.recovered is False:  # a failure shown is a result: the document shows where
            shown = [r for r in locate_results(doc.result) if r.recovery or r.checks] if (
                doc.result.type == "locate") else []  # fmt: skip
            assert any(
                not r.recovery.recovered or any(not c.passed for c in r.checks) for r in shown
            ), f"{entry.name} did not recover its planted truth and its document does not say why"


def test_every_recovery_equals_an_independent_computation_from_its_scores(folder):
    checked = 0
    for entry in folder.runs:
        result = validated((OUT / entry.file).read_text(encoding="utf-8")).result
        located = [result] if result.type == "locate" else []
        if result.type == "recipe" and result.located is not None:
            located = [result.located]
        for one in (r for top in located for r in locate_results(top)):
            if one.recovery is not None:
                check_recovery(one)
                checked += 1
    assert checked >= 10  # every locate method, its variants and the recipes' locate steps


def test_planted_sites_are_typed_with_roles_from_the_task(folder):
    roles = {p.role for m in folder.models for p in m.truth.planted}
    assert {"induction head", "previous-token head", "English neuron", "French neuron"} <= roles
    assert {"refusal direction", "topic latent", "persona token"} <= roles
    causal = validated((OUT / "causal-attribution.json").read_text(encoding="utf-8"))
    planted = set(causal.result.recovery.ranks)
    # the demo's planted sites are the task's IOI heads, every role (the negative and backup
    # name movers too), read from the zoo task's ground truth
    assert planted == {p.target.label for p in causal.truth.planted}
    assert "negative name mover" in {p.role for p in causal.truth.planted}


def test_a_second_all_imports_no_method_and_rewrites_nothing(folder):
    before = {p.name: p.stat().st_mtime_ns for p in OUT.glob("*.json") if p.name != "index.json"}
    script = (
        "import json, sys\n"
        "from mi_atlas.cli import cli\n"
        "try:\n"
        "    cli(['run', '--all'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'transformer_lens') or m.startswith(("
        "'reference_impls.locate', 'reference_impls.steer', 'reference_impls.recipes')))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert f"0 computed, {len(folder.runs)} cached" in done.stderr
    after = {p.name: p.stat().st_mtime_ns for p in OUT.glob("*.json") if p.name != "index.json"}
    assert after == before


def test_runs_computed_in_parallel_processes_equal_the_ones_computed_in_order(folder, tmp_path):
    out = tmp_path / "runs"
    shutil.copytree(OUT, out)
    cheapest = sorted(folder.runs, key=lambda e: e.seconds or 0.0)[:2]
    for entry in cheapest:
        (out / entry.file).unlink()  # a missing document is computed again
    done = subprocess.run(
        [sys.executable, "-c", "from mi_atlas.cli import cli; cli(['run', '--all', '--out', "
         f"{str(out)!r}, '--jobs', '2'])"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 computed" in done.stderr and "(2 at once)" in done.stderr
    for entry in cheapest:
        assert (out / entry.file).read_bytes() == (OUT / entry.file).read_bytes(), entry.name


def test_a_failing_run_writes_no_file_is_named_and_exits_1(folder, tmp_path):
    out = tmp_path / "runs"
    shutil.copytree(OUT, out)
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    index["key"] = ""  # the list of runnables changed: list them again (cached runs stay)
    (out / "index.json").write_text(json.dumps(index), encoding="utf-8")
    (out / "test-failing.json").write_text("{}", encoding="utf-8")  # stale: must go

    @registry.register_method("test-failing", default_model="induction")
    def failing(model_name: str) -> registry.Outcome:
        """A method that fails."""
        raise ValueError("the planted heads were not found\nsecond line")

    try:
        # one job: the method is registered in this process only, not in a worker's
        result = CliRunner().invoke(cli, ["run", "--all", "--out", str(out), "--jobs", "1"])
    finally:
        registry._ENTRIES.pop("test-failing")
    assert result.exit_code == 1
    assert "failed: test-failing: ValueError: the planted heads were not found\n" in result.stderr
    assert "1 computed" in result.stderr
    assert not (out / "test-failing.json").exists()
    written = runs.RunIndex.model_validate_json((out / "index.json").read_text(encoding="utf-8"))
    entry = written.entry("test-failing")
    assert entry.file is None and entry.error.startswith("ValueError: the planted heads")
    assert entry.command == "mi-atlas run test-failing --model induction"
    assert all(e.file for e in written.runs if e.name != "test-failing")


def test_all_without_the_impls_extra_names_the_install_command(monkeypatch, tmp_path):
    from mi_atlas.commands import impls as impls_command

    real = impls_command.importlib.util.find_spec
    monkeypatch.setattr(
        impls_command.importlib.util,
        "find_spec",
        lambda n, *a: None if n == "torch" else real(n, *a),
    )
    result = CliRunner().invoke(cli, ["run", "--all", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert "install them with: pip install -c constraints.txt '.[impls]'" in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing written
