"""The engine protocol: how a stage's per-source (or per-batch) work is run.

A stage hands an engine a module-level function and a list of small tasks; the engine runs
the function over them (in this process, in worker processes, on a Ray cluster) and gives
the results back **in task order**, whatever order the workers finished in. The driver
(composer.build) keeps everything else: cache lookups before dispatch (completed work is
never sent), barriers (dedup, mix, split), writing results in task order, and merging the
counts that results carry (workers never mutate the driver's state). So the output bytes
never depend on the engine or its number of workers.

Contract, for `Engine.map(fn, tasks, setup=None)`:

- `fn` is a module-level function (picklable by reference: `module.qualname`), or a
  `functools.partial` of one over picklable arguments. Without `setup` it is called as
  `fn(task)`; with `setup` as `fn(state, task)`.
- `tasks` is a sequence of small picklable values: source indices, batch ranges, paths,
  settings dataclasses. Arrow tables may be tasks where the stage already holds them in the
  driver (a chunk of records to scan, a batch to render), made `compact` as they are
  pickled (Arrow pickles a slice with its whole table's buffers); never plugins or open
  files.
- `setup` (optional) is a module-level function, or a `functools.partial` of one, that
  builds heavy per-worker state (the scan's Detector: a faiss index and a transformer). Each
  worker calls `state = setup()` at most once per distinct `setup` (two setups are the same
  when they pickle to the same bytes) and reuses the state for every task it runs. It must
  be cheap to ship: pass a folder to load from, not the loaded object.
- Returns `list` of `fn`'s results, `len(tasks)` long, `result[i]` for `tasks[i]`.
- An exception raised by `fn` or `setup` reaches the caller as itself (a UserError stays a
  UserError): the engine adds nothing to it and runs no further tasks that it can stop.
- `fn` must be pure in what it returns: the same task gives the same result in any worker
  (seeded draws come from composer.draws, keyed by record id, never by worker).

`workers` says how many tasks may run at once (1 for the local engine); a stage may use it
to decide whether splitting its work is worth it. `close()` releases workers; an engine is
also a context manager that closes itself. `release()` frees what the workers keep for the
next map with the same setup: a build calls it as it ends (failed or not) on an engine it
was given and does not close. On a Ray cluster that is the actors and the CPUs they
reserve: kept, they would leave another build on the same cluster waiting for a CPU
forever.

An engine may also keep the tables a build makes on its workers (`holds_data`, with
`map_held`, `put` and `fetch`; see composer.held): the Ray engine does, so its driver holds
no records. The local engines do not: their tables are the driver's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import pyarrow as pa

T = TypeVar("T")
R = TypeVar("R")


@runtime_checkable
class Engine(Protocol):
    """Runs a function over tasks and returns the results in task order."""

    name: str  # "local", "pool", "ray": what the build summary names
    workers: int  # tasks that may run at once

    def map(
        self,
        fn: Callable[..., R],
        tasks: Sequence[T],
        setup: Callable[[], Any] | None = None,
    ) -> list[R]:
        """`[fn(t) for t in tasks]`, or `[fn(setup(), t) ...]` with one state per worker."""
        ...

    def close(self) -> None:
        """Stop the workers (a later `map` may start them again)."""
        ...

    def release(self) -> None:
        """Drop the workers' setup state, and what it reserves, between builds."""
        ...

    def __enter__(self) -> Engine: ...

    def __exit__(self, *exc_info: object) -> None: ...


def compact(table: pa.Table) -> pa.Table:
    """A table that holds only its own rows: a slice of a larger table shares the larger
    one's buffers, and pickling it (to send it to a worker) would copy all of them."""
    return table.take(np.arange(table.num_rows))


def setup_key(setup: Callable[[], Any]) -> bytes:
    """What identifies a setup across processes: its pickle (a module-level function by
    name, a partial by function and arguments)."""
    import pickle

    return pickle.dumps(setup)


class WorkerState:
    """A worker's state from the latest setup it ran (the previous one is dropped first:
    a worker that renders after it scanned does not keep the scan's detector)."""

    def __init__(self) -> None:
        self.key: bytes | None = None
        self.state: Any = None

    def run(self, fn: Callable[..., R], setup: Callable[[], Any] | None, task: Any) -> R:
        """One task, the way every engine calls it."""
        if setup is None:
            return fn(task)
        key = setup_key(setup)
        if key != self.key:
            self.key, self.state = None, None
            self.state = setup()
            self.key = key
        return fn(self.state, task)
