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

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Caught = list[tuple[str, type[Warning], str, int]]  # (message, category, file, line)

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
                one = (str(w.message), w.category, w.filename, w.lineno)
                if one not in seen:
                    seen.add(one)
                    caught.append(one)


def replay(caught: Caught) -> None:
    """Raise `caught` here, as `warnings.warn` would have from the code that raised them."""
    for message, category, filename, lineno in caught:
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


def _module_of(filename: str) -> Any:
    """The module imported here from `filename`, if any."""
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == filename:
            return module
    return None
