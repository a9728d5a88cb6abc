"""Python warnings raised in a task on another process, shown by the driver as raised here.

A Ray worker's stderr does not reach the user (composer.engines.ray runs Ray with
`log_to_driver=False`: its log lines would bury composer's own), so a warning that a
library, a plugin or a scorer raises as a task converts a source would be lost. The task
records its warnings (`recording`) and hands them back with its result; the driver raises
them again (`replay`), with their category, file and line, through its own filters and
each module's registry of warnings shown: the user sees the text the local engine shows,
as often.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# (message, category as (module, name), file, line): a class defined where the driver
# cannot import it would fail the whole result as it is unpickled
Caught = list[tuple[str, tuple[str, str], str, int]]

_REGISTRY: dict[Any, Any] = {}  # shown warnings of files the driver has not imported


@contextmanager
def recording() -> Iterator[Caught]:
    """Every warning raised in the block, once per (message, category, file, line),
    whatever the filters of this process (the driver's decide what is shown)."""
    caught: Caught = []
    with warnings.catch_warnings(record=True) as records:
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


def replay(caught: Caught) -> None:
    """Raise `caught` here, as `warnings.warn` would have from the code that raised them."""
    for message, (where, name), filename, lineno in caught:
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
