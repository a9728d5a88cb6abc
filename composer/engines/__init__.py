"""Engines: what runs a stage's tasks (see composer.engines.base for the protocol).

`local` runs them in this process; `pool` in worker processes on this machine; a Ray engine
on a cluster. `engine_for(workers)` is the choice a build makes from `workers:`.
"""

from __future__ import annotations

from composer.engines.base import Engine
from composer.engines.local import LocalEngine


def engine_for(workers: int | None) -> Engine:
    """The local engine for one worker, else a pool of `workers` processes (default: one a
    core). The pool starts its processes only when a stage has more than one task."""
    from composer.engines.pool import PoolEngine, default_workers

    workers = workers or default_workers()
    return LocalEngine() if workers <= 1 else PoolEngine(workers)


__all__ = ["Engine", "LocalEngine", "engine_for"]
