"""Docs that cannot drift: the README names every built-in source, format and command."""

from pathlib import Path

import pytest

from composer.cli import cli
from composer.formats import available_formats
from composer.plugins import registry

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "name", sorted(p.name for p in registry().values() if p.origin == "built-in")
)
def test_every_builtin_source_is_in_the_readme(name):
    assert f"`{name}`" in README


@pytest.mark.parametrize("name", sorted(available_formats()))
def test_every_builtin_format_is_in_the_readme(name):
    assert f"`{name}`" in README


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_in_the_readme(command):
    assert f"composer {command}" in README


def test_the_readme_setup_and_test_commands_are_what_ci_runs():
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    setup = (
        'pip install torch==2.13.0 && pip install -e ".[dev]" && composer build manifests/demo.yaml'
    )
    assert setup in README and setup in ci
    assert "python -m pytest -q" in README and "python -m pytest -q" in ci
