"""Tables where the engine keeps them: in this process, or in a Ray cluster's object store.

The build's steps over each source's records as a whole (dedup's filter, packing,
sampling, the split, writing records.parquet) are functions `fn(*args) -> (table, small)`.
On the local and pool engines they run here, on the tables themselves. On an engine that
holds data (`holds_data`: composer.engines.ray), each runs as a task on the cluster: a
table among its arguments is a reference the task reads there, the table it makes stays in
the object store (a reference owned by the driver, so Ray can make it again if a node is
lost), and only `small` comes back: counts, a histogram. So the driver of a Ray build
holds no records, and no id: dedup and the split run as a hash shuffle on the id, their
parts kept apart (`each_parts`; composer.parts). The same functions run either way, so
the tables, and the bytes written from them, are the same on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from composer.engines import Engine
from composer.stages import table_sha


def holds(engine: Engine | None) -> bool:
    """Whether `engine` keeps the tables a build makes on its workers."""
    return bool(getattr(engine, "holds_data", False))


def each(
    engine: Engine | None, fn: Callable[..., tuple[Any, Any]], tasks: Sequence[tuple]
) -> list[tuple[Any, Any]]:
    """`[fn(*task) for task in tasks]`, each a (table, small) pair: where the engine keeps
    its tables (a task's tables are those of earlier steps, or references to them)."""
    if holds(engine):
        return engine.map_held(fn, tasks)
    return [fn(*task) for task in tasks]


def each_source(
    engine: Engine | None, fn: Callable[..., tuple[Any, Any]], tasks: dict[str, tuple]
) -> dict[str, tuple[Any, Any]]:
    """`each` over tasks by source name: each source's (table, small) pair, by name."""
    return dict(zip(tasks, each(engine, fn, list(tasks.values()))))


def shas(engine: Engine | None, tables: dict[str, Any]) -> dict[str, str]:
    """Each table's sha256 (composer.stages.table_sha), taken where the table is."""
    hashed = each_source(engine, _sha, {name: (table,) for name, table in tables.items()})
    return {name: sha for name, (_, sha) in hashed.items()}


def _sha(table: pa.Table) -> tuple[None, str]:
    return None, table_sha(table)


def each_parts(
    engine: Engine | None,
    fn: Callable[..., tuple[list[Any], Any]],
    tasks: Sequence[tuple],
    count: int,
) -> list[tuple[list[Any], Any]]:
    """`each` for steps whose task makes `count` tables (`fn(*task) -> (tables, small)`):
    a hash shuffle's parts, each kept apart (on Ray, an object each), so that the task of
    a part reads that part of every source and nothing else."""
    if count < 1:
        raise ValueError("each_parts needs a task to make at least one table")
    if holds(engine):
        return engine.map_parts(fn, tasks, count)
    return [fn(*task) for task in tasks]


def fetch(engine: Engine | None, table: Any) -> pa.Table:
    """A table itself, here (from the object store, on an engine that holds data)."""
    return engine.fetch(table) if holds(engine) else table


def keep(engine: Engine | None, table: pa.Table) -> Any:
    """A table made here (by a plugin made in code) handed to the engine to keep."""
    return engine.put(table) if holds(engine) else table


def trim(engine: Engine | None) -> None:
    """On an engine that holds data, give the memory Arrow's allocator keeps for reuse back
    to the system: after dedup and the split have hashed every id (a few hundred MB a
    million rows), a driver that holds no records would otherwise keep it to the end."""
    if holds(engine):
        pa.default_memory_pool().release_unused()


@contextmanager
def returning_pool(engine: Engine | None) -> Iterator[None]:
    """On an engine that holds data, the driver's Arrow memory meanwhile from jemalloc, which
    gives what is freed back to the system within a second: Arrow's default (mimalloc) keeps
    what each thread freed, and the threads that write the output files free a few hundred
    MB as they go (measured at 300k rows: the driver's own memory in the render 0.50-0.56 GB
    with mimalloc, 0.34 GB with jemalloc). Elsewhere, or where Arrow has no jemalloc, the
    pool stays as it is; the bytes written are the same either way."""
    if not holds(engine):
        yield
        return
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        yield
        return
    before = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(before)
