"""The pool engine: tasks in worker processes on this machine.

Workers are started with `spawn` (torch and faiss threads do not survive a fork), one thread
each (the workers share the cores: OpenMP, BLAS and torch read the variables as they load;
a stage's setup that starts other threads sets them to one too), and
only when a stage has more than one task: a small build never pays for starting them. A
`map` with a single task runs in this process, the way the local engine runs it.

A large Arrow table that a worker returns (a batch of rendered rows: a hundred MB) comes
back through a file in shared memory, which the driver maps, not through the pipe:
pickling it, piping it and unpickling it cost the driver and the worker about half of what
rendering it did.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from composer.engines.base import WorkerState

T = TypeVar("T")
R = TypeVar("R")

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MAPPED_BYTES = 1 << 20  # a returned table this large comes back through a mapped file
SHARED_MEMORY = Path("/dev/shm")


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class PoolEngine:
    name = "pool"

    def __init__(self, workers: int):
        self.workers = workers
        self._executor = None
        self._inline = WorkerState()  # for a map of one task, before the workers start
        self._folder: str | None = None  # where workers leave the tables they return

    def map(
        self,
        fn: Callable[..., R],
        tasks: Sequence[T],
        setup: Callable[[], Any] | None = None,
    ) -> list[R]:
        if self._executor is None and len(tasks) < 2:
            return [self._inline.run(fn, setup, t) for t in tasks]
        executor = self._start()
        return list(executor.map(partial(_run, fn, setup), tasks))

    def _start(self):
        if self._executor is not None:
            return self._executor
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._inline = WorkerState()  # the workers hold the state from now on
        saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
        os.environ.update({k: "1" for k in THREAD_VARIABLES})  # read as the workers start
        try:
            self._folder = tempfile.mkdtemp(prefix="composer-pool-", dir=_spill_root())
            self._executor = ProcessPoolExecutor(
                self.workers,
                multiprocessing.get_context("spawn"),
                initializer=_worker_start,
                initargs=(self._folder,),
            )
            # Every worker starts now, while the variables hold.
            list(self._executor.map(_ready, range(self.workers)))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)  # tables never read: a failure
            self._folder = None
        self._inline = WorkerState()

    def release(self) -> None:
        """The workers keep their state (their processes reserve nothing another build
        waits for); the driver's own is dropped."""
        self._inline = WorkerState()

    def __enter__(self) -> PoolEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_WORKER = WorkerState()


def _ready(_: int) -> bool:
    return True


def _run(fn: Callable[..., R], setup: Callable[[], Any] | None, task: Any) -> R:
    return _WORKER.run(fn, setup, task)


def _spill_root() -> str | None:
    """Shared memory when it has room (a container's /dev/shm may be 64 MB), else the
    temporary folder."""
    try:
        if shutil.disk_usage(SHARED_MEMORY).free > 8 << 30:
            return str(SHARED_MEMORY)
    except OSError:
        pass
    return None


def _worker_start(folder: str) -> None:
    """In each worker as it starts: the tables it returns go through `folder`."""
    from multiprocessing.reduction import ForkingPickler

    ForkingPickler.register(pa.Table, partial(_reduce_table, folder))


def _reduce_table(folder: str, table: pa.Table):
    """Pickle a large table as the path of an Arrow file holding it (a small one as is)."""
    if table.nbytes < MAPPED_BYTES:
        return table.__reduce__()
    path = os.path.join(folder, f"{uuid.uuid4().hex}.arrow")
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return _mapped_table, (path,)


def _mapped_table(path: str) -> pa.Table:
    """The table in a worker's file, mapped, not copied; the file's name is removed at once
    (its memory is freed when the table is)."""
    table = pa.ipc.open_file(pa.memory_map(path)).read_all()
    os.unlink(path)
    return table
