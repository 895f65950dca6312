"""The command group: every command is listed with help text that ends in an example."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from mi_atlas.cli import COMMANDS, cli


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name}" in result.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["chek"])
    assert result.exit_code == 2


def test_knowledge_base_commands_do_not_import_torch():
    code = "import sys; from mi_atlas.cli import cli; cli(['check', '--help'], standalone_mode=False); print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().endswith("False")
