"""Every command's help shows an example."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from etl.cli import cli

COMMANDS = cli.list_commands(None)  # type: ignore[arg-type]


def help_of(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="etl")
    assert result.exit_code == 0, result.output
    return result.output


def test_the_top_level_help_shows_an_example():
    assert "Example:\n    export LD_API_TOKEN=api-" in help_of()


@pytest.mark.parametrize("command", COMMANDS)
def test_each_commands_help_shows_an_example(command):
    text = help_of(command)
    assert "Example" in text
    assert f"etl {command}" in text
