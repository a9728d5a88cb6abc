"""Docs that cannot drift: the README names every built-in source, format and command."""

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

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


# ---------------------------------------------------------------- README command lines

ROOT = Path(__file__).parent.parent
# Commands that read only the checkout and write nothing: the README's examples of them run.
SAFE = {"sources", "benchmarks", "validate", "stats"}


def readme_commands() -> list[str]:
    """Every `composer ...` the README shows: in code spans and in shell blocks, usage
    brackets and ellipses dropped (`[-o DIR]` is checked as `-o DIR`)."""
    spans = re.findall(r"`(composer [^`]+)`", README)
    shell, fence = [], None
    for line in README.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
        elif fence in ("bash", "sh", "console"):
            shell += [part.strip() for part in line.split("  #")[0].split("&&")]
    found = spans + [x for x in shell if x.startswith("composer ")]
    cleaned = [re.sub(r"\.\.\.|[\[\]]", "", c).split(" | ")[0].strip() for c in found]
    return sorted({c for c in cleaned if not c.startswith("composer.") and " " in c})


def _parse(command: click.Command, words: list[str]) -> tuple[dict, list[str]]:
    """click's own parse: the values by parameter name, and the words left over."""
    # A context under composer's own, so that the command sees the settings it inherits
    # (click caches its help option on the first context it meets).
    root = click.Context(cli, info_name="composer", **cli.context_settings)
    ctx = click.Context(command, info_name=command.name, parent=root)
    values, extra, _ = command.make_parser(ctx).parse_args(list(words))
    given = {k: v for k, v in values.items() if isinstance(v, str | bool | tuple) and v != ()}
    return given, extra


def parsed(line: str) -> tuple[click.Command, list[str]]:
    """The command `line` runs and its arguments, parsed as click does (an unknown option
    or a wrong number of arguments fails here)."""
    words = shlex.split(line)[1:]
    command: click.Command = cli
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        command, words = command.commands[words[0]], words[1:]
    if isinstance(command, click.Group):  # `composer cache` named alone, in prose
        return command, words
    values, extra = _parse(command, words)
    arguments = [p.name for p in command.params if isinstance(p, click.Argument)]
    missing = [p.name for p in command.params if isinstance(p, click.Argument) and p.required
               and p.name not in values]  # fmt: skip
    # Prose may name a command without its arguments (`composer build`); an example that
    # gives some gives them all, and never more than the command takes.
    assert not extra, f"{line}: {command.name} takes no more arguments than {arguments}"
    assert not missing or not any(a in values for a in arguments), f"{line}: needs {missing}"
    return command, words


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_lines_parse(line):
    parsed(line)


def test_readme_stats_example_matches_the_command():
    assert any(c.startswith("composer stats manifests/") for c in readme_commands())
    with pytest.raises(click.NoSuchOption):
        parsed("composer stats FILE --column COLUMN")  # what the README once said


def runnable(line: str) -> bool:
    """A safe command, given all its arguments, with no placeholder and files that exist."""
    words = shlex.split(line)[1:]
    command = cli.commands.get(words[0])
    if words[0] not in SAFE or any(w.isupper() for w in words):
        return False
    values, _ = _parse(command, words[1:])
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if any(p.required and p.name not in values for p in arguments):
        return False
    files = [values[p.name] for p in arguments if p.name in values]
    return all((ROOT / f).exists() for f in files if "/" in f or "." in f)


RUNNABLE = [c for c in readme_commands() if runnable(c)]


def test_some_readme_examples_are_run():
    assert "composer stats manifests/demo.yaml readability --source alpaca" in RUNNABLE
    assert "composer sources" in RUNNABLE and "composer validate my.yaml" not in RUNNABLE


@pytest.mark.parametrize("line", RUNNABLE)
def test_readme_safe_examples_run(line, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, shlex.split(line)[1:], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_the_readme_states_the_bad_input_limits_the_code_has():
    from composer.manifest import MAX_FACTOR, MAX_YAML_DEPTH, MAX_YAML_VALUES
    from composer.readers import CSV_BLOCK, MAX_DEPTH

    section = " ".join(README.split("### Bad input", 1)[1].split("\n### ", 1)[0].split())
    assert f"nesting deeper than {MAX_DEPTH} levels" in section
    assert f"upsample past `{MAX_FACTOR}x`" in section
    assert f"{MAX_YAML_VALUES:,} values, {MAX_YAML_DEPTH} levels deep" in section
    assert f"a CSV cell may be up to {CSV_BLOCK >> 20} MiB" in section
