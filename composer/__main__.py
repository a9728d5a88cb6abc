"""`python -m composer`: the same command line as `composer`."""

from composer.cli import cli

cli(prog_name="composer")
