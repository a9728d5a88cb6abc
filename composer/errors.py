"""Domain errors. The library raises these; only the CLI turns them into exit codes.

A `UserError` is something the user can fix (a manifest key, an input file, a template):
the CLI prints its message as `Error: ...` and exits with code 2, never with a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the manifest, the input data or a template; exit code 2."""


class ManifestError(UserError):
    """One or more problems in a manifest, each a `key.path: message` line."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{path}: invalid manifest\n{lines}")

    def __reduce__(self):  # raised in a worker process, it reaches the driver whole
        return type(self), (self.path, self.problems)


class InputError(UserError):
    """Input data that cannot be read or converted as the manifest says."""


class TemplateError(UserError):
    """A prompt-format template that cannot be loaded or rendered.

    `key` names the manifest key at fault within the format's entry (`vars`), if one is.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key

    def __reduce__(self):
        return type(self), (self.args[0], self.key)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`" (did you mean 'x'?)"` for the closest choice, or `""` when none is close."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""
