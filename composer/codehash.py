"""Hashes of the code a build runs: composer's own, and a plugin's or a scorer's module
and every module of its own package that it reaches (a helper it imports, another plugin
whose function it calls), so that an edit to a helper is a change like any other.

A file is hashed once per process: a module edited after it was imported is not what runs,
and the hash follows what runs (a fresh process sees the edit).
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from composer.cache import file_sha as cache_file_sha


@cache
def code_sha() -> str:
    """sha256 of composer's own code, in every stage cache key: a new composer (or an
    edited one) never reads entries an older one wrote."""
    package = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@cache
def file_sha(path: str) -> str:
    """A code file's sha256, taken once per process (see above)."""
    return cache_file_sha(path)


def module_sha(module: ModuleType) -> str | None:
    """sha256 over the files of `module` and of the modules of its package it reaches."""
    files = reached_files(module)
    if not files:
        return None
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(Path(path).name.encode() + b"\0" + file_sha(path).encode())
    return h.hexdigest()


def reached_files(module: ModuleType) -> set[str]:
    """The files of `module` and of every module it reaches through its globals (modules,
    and the modules functions and classes come from) that is its own code (`_owned`)."""
    own = _owned(module)
    files: set[str] = set()
    stack = [module]
    while stack:
        current = stack.pop()
        path = getattr(current, "__file__", None)
        if not path or path in files or not own(current):
            continue
        files.add(path)
        for value in vars(current).values():
            if isinstance(value, ModuleType):
                stack.append(value)
            else:
                owner = sys.modules.get(getattr(value, "__module__", None) or "")
                if owner is not None:
                    stack.append(owner)
    return files


def _owned(module: ModuleType):
    """Which modules are `module`'s own code: for a built-in plugin, those in the `sources`
    folder (composer itself is hashed whole, elsewhere); for a module of a package, that
    package's; for a lone module (a scorer beside the manifest), the lone modules beside it."""
    name = module.__name__
    if name.startswith("composer.sources"):
        import composer.sources

        return _under([os.path.realpath(p) for p in composer.sources.__path__])
    top = sys.modules.get(name.split(".")[0])
    if top is not module and top is not None and hasattr(top, "__path__"):
        return _under([os.path.realpath(p) for p in top.__path__])
    folder = os.path.dirname(os.path.realpath(getattr(module, "__file__", None) or ""))

    def beside(other: ModuleType) -> bool:
        path = os.path.realpath(getattr(other, "__file__", None) or "")
        lone = "." not in other.__name__ and not hasattr(other, "__path__")
        return lone and os.path.dirname(path) == folder

    return beside


def _under(roots: list[str]):
    def within(other: ModuleType) -> bool:
        real = os.path.realpath(getattr(other, "__file__", None) or "")
        return any(real.startswith(root + os.sep) for root in roots)

    return within
