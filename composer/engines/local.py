"""The local engine: every task in this process, in order. Imports nothing heavy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from composer.engines.base import WorkerState

T = TypeVar("T")
R = TypeVar("R")


class LocalEngine:
    name = "local"
    workers = 1

    def __init__(self) -> None:
        self._state = WorkerState()

    def map(
        self,
        fn: Callable[..., R],
        tasks: Sequence[T],
        setup: Callable[[], Any] | None = None,
    ) -> list[R]:
        return [self._state.run(fn, setup, t) for t in tasks]

    def close(self) -> None:
        self._state = WorkerState()

    def release(self) -> None:
        self._state = WorkerState()

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
