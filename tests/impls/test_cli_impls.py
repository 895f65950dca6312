"""`mi-atlas list / run / bench`: exit codes, exact messages and the JSON shape of DESIGN.md."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from mi_atlas.cli import cli
from mi_atlas.commands import impls as impls_command
from reference_impls import registry, zoo

pytestmark = pytest.mark.impls


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_list_json_lists_the_zoo_with_cards_and_the_checks():
    result = invoke("list", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert {"methods", "recipes", "checks", "benchmarks", "models", "errors"} <= listing.keys()
    assert [m["name"] for m in listing["models"]] == zoo.names()
    for card in listing["models"]:
        assert card == zoo.card(card["name"])
        assert card["ground_truth"] and card["metrics"]["accuracy"] > 0.9
    assert "zoo-check" in [c["name"] for c in listing["checks"]]


def test_list_prints_a_readable_table():
    result = invoke("list")
    assert result.exit_code == 0
    assert "zoo models:" in result.stdout
    assert "zoo-check" in result.stdout and "induction" in result.stdout


def test_run_zoo_check_gives_the_design_json():
    result = invoke("run", "zoo-check", "--model", "refusal", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"method", "model", "task", "result", "truth", "recovered", "command"} <= out.keys()
    assert out["method"] == "zoo-check" and out["model"]["name"] == "refusal"
    assert out["truth"] == zoo.truth("refusal").model_dump(mode="json")
    assert out["recovered"] is True
    assert [c["passed"] for c in out["result"]["checks"]] == [True, True]


def test_an_unknown_name_is_a_usage_error_naming_the_closest():
    result = invoke("run", "zoo-chek")
    assert result.exit_code == 2
    assert (
        "'zoo-chek' is not a registered method or recipe or check (did you mean 'zoo-check'?)"
        in result.stderr
    )
    assert "Traceback" not in result.output


def test_an_unknown_model_is_a_usage_error_listing_the_zoo():
    result = invoke("run", "zoo-check", "--model", "inductoin")
    assert result.exit_code == 2
    assert (
        "'inductoin' is not a zoo model (did you mean 'induction'?); zoo models: " in result.stderr
    )


def test_bench_of_an_unknown_benchmark_is_a_usage_error():
    result = invoke("bench", "no-such-bench")
    assert result.exit_code == 2
    assert "is not a registered benchmark" in result.stderr


def test_a_missing_extra_exits_1_with_the_install_command(monkeypatch):
    real = impls_command.importlib.util.find_spec
    monkeypatch.setattr(
        impls_command.importlib.util,
        "find_spec",
        lambda n, *a: None if n == "torch" else real(n, *a),
    )
    result = invoke("list")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: the reference implementations need torch; install them with: pip install -c constraints.txt '.[impls]'"
    )


def test_bench_runs_a_registered_benchmark_and_reports_its_ratio():
    # a real (tiny) benchmark registered the way modules under benchmarks/ register theirs
    import torch

    @registry.register_benchmark("test-matmul-vs-einsum")
    def matmul_vs_einsum() -> dict:
        """einsum vs matmul on one product."""
        a, b = torch.randn(64, 64, generator=torch.Generator().manual_seed(0)), torch.eye(64)
        t0 = time.perf_counter()
        base = torch.einsum("ij,jk->ik", a, b)
        t1 = time.perf_counter()
        ours = a @ b
        t2 = time.perf_counter()
        return {
            "baseline": t1 - t0,
            "ours": t2 - t1,
            "ratio": (t1 - t0) / max(t2 - t1, 1e-9),
            "max_abs_diff": float((base - ours).abs().max()),
        }

    try:
        result = invoke("bench", "test-matmul-vs-einsum", "--json")
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert out["name"] == "test-matmul-vs-einsum" and out["max_abs_diff"] == 0.0
        assert out["ratio"] > 0
    finally:
        registry._ENTRIES.pop("test-matmul-vs-einsum")


def test_every_command_has_help_with_an_example():
    for name in ("list", "run", "bench"):
        result = invoke(name, "--help")
        assert result.exit_code == 0 and "Example: mi-atlas " + name in result.stdout
