"""Engines: what runs a stage's tasks (see composer.engines.base for the protocol).

`local` runs them in this process; `pool` in worker processes on this machine; a Ray engine
on a cluster. `engine_for(workers)` is the choice a build makes from `workers:`, and
`make_engine(name, ...)` the one it makes from `engine:` (`composer build --engine`). The
local engines import no Ray.
"""

from __future__ import annotations

from composer.engines.base import Engine
from composer.engines.local import LocalEngine
from composer.errors import UserError, did_you_mean

ENGINES = ("local", "ray")  # what `engine:` and `--engine` name


def engine_for(workers: int | None) -> Engine:
    """The local engine for one worker, else a pool of `workers` processes (default: one a
    core). The pool starts its processes only when a stage has more than one task."""
    from composer.engines.pool import PoolEngine, default_workers

    workers = workers or default_workers()
    return LocalEngine() if workers <= 1 else PoolEngine(workers)


def check_engine(name: str, address: str | None = None) -> None:
    """A UserError, before any data is read, for an engine that cannot run: an unknown name,
    `ray` without Ray installed, an address for the local engine."""
    if name not in ENGINES:
        hint = did_you_mean(name, ENGINES)
        raise UserError(f"unknown engine {name!r}{hint}; engines: {', '.join(ENGINES)}")
    if name == "ray":
        from composer.engines.ray import check_installed

        check_installed()
    elif address is not None:
        raise UserError(
            f"a Ray address ({address}) is for the ray engine: add --engine ray "
            "(or set `engine: ray` in the manifest)"
        )


def make_engine(name: str, workers: int | None = None, address: str | None = None) -> Engine:
    """The engine `engine:` names: `local`, this machine's (`engine_for(workers)`), or `ray`,
    on the Ray cluster at `address` (composer.engines.ray.RayEngine)."""
    check_engine(name, address)
    if name == "ray":
        from composer.engines.ray import RayEngine

        return RayEngine(address)
    return engine_for(workers)


__all__ = ["ENGINES", "Engine", "LocalEngine", "check_engine", "engine_for", "make_engine"]
