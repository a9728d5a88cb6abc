"""Python warnings raised in a task on another process, shown by the driver as raised here.

A Ray worker's stderr does not reach the user (composer.engines.ray runs Ray with
`log_to_driver=False`: its log lines would bury composer's own), so a warning that a
library, a plugin or a scorer raises as a task converts a source would be lost. The task
records its warnings (`recording`) and hands them back with its result; the driver raises
them again (`replay`), with their category, file and line, through its own filters and
each module's registry of warnings shown: the user sees the text the local engine shows,
as often. What a task writes to `sys.stderr` (composer's own "Warning: cannot store ..."
lines, as the scan's actors store embeddings or export the ONNX model) is recorded too, and
written to the driver's stderr, each text once a map (every scan task would say it again).
"""

from __future__ import annotations

import importlib
import io
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from typing import Any

# (message, category as (module, name), file, line): a class defined where the driver
# cannot import it would fail the whole result as it is unpickled. What the task wrote to
# stderr is one entry of category STDERR.
Caught = list[tuple[str, tuple[str, str], str, int]]
STDERR = ("", "stderr")

_REGISTRY: dict[Any, Any] = {}  # shown warnings of files the driver has not imported


@contextmanager
def recording() -> Iterator[Caught]:
    """Every warning raised in the block, once per (message, category, file, line),
    whatever the filters of this process (the driver's decide what is shown)."""
    caught: Caught = []
    written = io.StringIO()
    with warnings.catch_warnings(record=True) as records, redirect_stderr(written):
        warnings.simplefilter("always")
        try:
            yield caught
        finally:
            seen: set[tuple] = set()
            for w in records:
                category = (w.category.__module__, w.category.__qualname__)
                one = (str(w.message), category, w.filename, w.lineno)
                if one not in seen:
                    seen.add(one)
                    caught.append(one)
            if written.getvalue():
                caught.append((written.getvalue(), STDERR, "", 0))


def replay(caught: Caught, written: set[str] | None = None) -> None:
    """Raise `caught` here, as `warnings.warn` would have from the code that raised them;
    write what the task wrote to stderr, unless its text is in `written` (which it joins)."""
    written = set() if written is None else written
    for message, (where, name), filename, lineno in caught:
        if (where, name) == STDERR:
            if message not in written:
                written.add(message)
                sys.stderr.write(message)
                sys.stderr.flush()
            continue
        category = _category(where, name)
        module = _module_of(filename)
        if module is None:
            warnings.warn_explicit(message, category, filename, lineno, registry=_REGISTRY)
            continue
        globals_ = vars(module)
        warnings.warn_explicit(
            message,
            category,
            filename,
            lineno,
            module=module.__name__,
            registry=globals_.setdefault("__warningregistry__", {}),
            module_globals=globals_,
        )


def _category(module: str, name: str) -> type[Warning]:
    """The warning class `module.name`; one of that name when it cannot be imported here."""
    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except Exception:  # not importable here (or failing as it is imported)
        return type(name.rpartition(".")[2], (UserWarning,), {"__module__": module})
    return found if isinstance(found, type) and issubclass(found, Warning) else UserWarning


def _module_of(filename: str) -> Any:
    """The module imported here from `filename`, if any."""
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == filename:
            return module
    return None
