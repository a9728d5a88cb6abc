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


def test_the_readme_states_the_bad_input_limits_the_code_has():
    from composer.manifest import MAX_FACTOR, MAX_YAML_DEPTH, MAX_YAML_VALUES
    from composer.readers import CSV_BLOCK, MAX_DEPTH

    section = " ".join(README.split("### Bad input", 1)[1].split("\n### ", 1)[0].split())
    assert f"nesting deeper than {MAX_DEPTH} levels" in section
    assert f"upsample past `{MAX_FACTOR}x`" in section
    assert f"{MAX_YAML_VALUES:,} values, {MAX_YAML_DEPTH} levels deep" in section
    assert f"a CSV cell may be up to {CSV_BLOCK >> 20} MiB" in section
