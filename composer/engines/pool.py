"""The pool engine: tasks in worker processes on this machine.

Workers are started with `spawn` (torch and faiss threads do not survive a fork), one thread
each (the workers share the cores: OpenMP, BLAS and torch read the variables as they load;
a stage's setup that starts other threads sets them to one too), and
only when a stage has more than one task: a small build never pays for starting them. A
`map` with a single task runs in this process, the way the local engine runs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from composer.engines.base import WorkerState

T = TypeVar("T")
R = TypeVar("R")

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


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
            self._executor = ProcessPoolExecutor(
                self.workers,
                multiprocessing.get_context("spawn"),
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
