"""The Ray engine: a stage's tasks on a Ray cluster, their results back in task order.

`RayEngine(address).map(fn, tasks, setup)` keeps the protocol of composer.engines.base: the
results come back in the order of `tasks`, whichever node finished first, and the driver
writes every output file from them, so the bytes do not depend on the number of nodes.

- Without `setup`, each task is a Ray task. A worker process that dies (killed, out of
  memory, its node lost) has its task run again, up to `RETRIES` times; an exception raised
  by `fn` is not retried but raised here as it was raised there (a UserError stays one).
- With `setup` (heavy per-worker state: the scan's detector and its benchmark index), the
  tasks go to a pool of actors, one a CPU of the cluster (one a GPU for a setup marked
  `gpu = True`, on a cluster with GPUs), each building the state once and running task
  after task with it. A dead actor is restarted, builds the state again and runs its task
  again. The actors stay for the next map with a setup; a map without one stops them,
  freeing their CPUs for its tasks, and so does `release()`, which a build calls as it
  ends: idle actors kept by an engine that stays open would hold the cluster's CPUs, and
  another build on the cluster would wait for them forever.
- `map_held` (composer.held): the build's steps over whole sources, as Ray tasks whose
  tables stay in the object store, owned by the driver; only their small results (counts,
  rendered rows to write) come back. So the driver holds no records. `map_parts`: the same
  for a step that makes a table per part of a hash shuffle (dedup, the split, the scan's
  distinct texts). With `pool`, map_held's tasks go to the actors (the scan of texts held
  there: composer.scan_held).

Every node needs composer (and the manifest's plugins) installed as on the driver, and the
manifest's files, the cache folder and the output folder at the same paths (shared storage;
see the README, "Running on a Ray cluster"). The driver's COMPOSER_* and HF_* variables go to
the workers with the job. Ray's log lines, usage stats and progress bars are off: what the
user sees is composer's own progress. So a worker's stderr does not reach the user: the
Python warnings a task raises come back with its result and are raised again here, in task
order (composer.engines.caught).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from composer.engines import caught
from composer.engines.base import WorkerState
from composer.errors import UserError

T = TypeVar("T")
R = TypeVar("R")

RETRIES = 3  # times a task is run again after its worker process died
# Variables the workers need as the driver has them: the cache folder, the hub's offline
# flags and token, composer's own settings.
PASSED_ON = ("COMPOSER_", "HF_")
QUIET = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage stats sent
    "RAY_DATA_DISABLE_PROGRESS_BARS": "1",
    "RAY_DEDUP_LOGS": "0",
    "RAY_BACKEND_LOG_LEVEL": "error",  # the C++ core's retry warnings, a line a second
}


NOT_INSTALLED = "the ray engine needs Ray, which is not installed: pip install 'composer-mix[ray]'"


def check_installed() -> None:
    """A UserError when Ray is not installed (found without importing it: a second)."""
    from importlib.util import find_spec

    if find_spec("ray") is None:
        raise UserError(NOT_INSTALLED)


def import_ray():
    """The `ray` module, or a UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(NOT_INSTALLED) from None
    return ray


class RayEngine:
    """Tasks on the Ray cluster at `address`, else at `$RAY_ADDRESS`, else the one `ray
    start` runs on this machine, else on a Ray instance started for this engine (and
    stopped by `close`). A process that already called `ray.init` keeps its connection."""

    name = "ray"
    holds_data = True  # the tables a build makes stay on the cluster (composer.held)

    def __init__(self, address: str | None = None):
        check_installed()
        self.address = address
        self._ray: Any = None
        self._connected = False  # whether this engine called ray.init (and shuts it down)
        self._actors: list[Any] = []  # the actors of maps with a setup
        self._gpus = False  # whether they hold a GPU each

    def _start(self) -> Any:
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        if not ray.is_initialized():
            where = self.address or os.environ.get("RAY_ADDRESS")
            check_reachable(where)
            for k, v in QUIET.items():
                os.environ.setdefault(k, v)
            env = passed_on()
            try:
                with _without_start_line():
                    ray.init(
                        address=self.address,
                        logging_level=logging.ERROR,
                        log_to_driver=False,
                        include_dashboard=False,
                        runtime_env={"env_vars": env} if env else None,
                    )
            except ConnectionError as exc:
                raise UserError(
                    f"cannot reach the Ray cluster at {where} ({exc}): is it running, and is "
                    "its token in RAY_AUTH_TOKEN or ~/.ray/auth_token?"
                ) from None
            self._connected = True
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False
        self._ray = ray
        return ray

    @property
    def workers(self) -> int:
        """Tasks that may run at once: the cluster's CPUs."""
        return max(1, int(self._start().cluster_resources().get("CPU", 1)))

    def nodes(self) -> int:
        """The cluster's live nodes."""
        return sum(1 for n in self._start().nodes() if n.get("Alive"))

    def map(
        self,
        fn: Callable[..., R],
        tasks: Sequence[T],
        setup: Callable[[], Any] | None = None,
    ) -> list[R]:
        tasks = list(tasks)
        if not tasks:
            return []
        ray = self._start()
        # Stored once, not pickled with every task: a node fetches each once.
        stored_fn, env = ray.put(fn), ray.put(passed_on())
        if setup is None:
            self._stop_actors()  # their CPUs are the tasks'
            run = ray.remote(max_retries=RETRIES, retry_exceptions=False)(_run)
            refs = {run.remote(stored_fn, env, t): i for i, t in enumerate(tasks)}
            return self._gather(refs, len(tasks))
        actors = self._actors_for(setup, len(tasks))
        stored_setup = ray.put(setup)
        queue = iter(enumerate(tasks))
        owner: dict[Any, Any] = {}

        def feed(actor: Any) -> dict[Any, int]:
            """The next task, on `actor` (free now)."""
            for i, task in queue:
                ref = actor.run.remote(stored_fn, stored_setup, env, task)
                owner[ref] = actor
                return {ref: i}
            return {}

        try:
            refs = {ref: i for a in actors for ref, i in feed(a).items()}
            return self._gather(refs, len(tasks), lambda ref: feed(owner.pop(ref)))
        except BaseException:
            self._stop_actors()  # a task may be left running
            raise

    def map_held(
        self,
        fn: Callable[..., tuple[Any, Any]],
        tasks: Sequence[tuple],
        setup: Callable[[], Any] | None = None,
        pool: bool = False,
    ) -> list[tuple[Any, Any]]:
        """`fn(*task)` for each task, as Ray tasks, each returning (table, small) (or, with
        `setup`, `fn(state, *task)`, the state built once per worker process): the tables
        stay in the object store, owned by this process, and come back as references; the
        small results come back as values, in task order. A reference among a task's values
        is the table it names, read where the task runs (Ray runs a task where its tables
        are, when that node has a CPU free). A task that gives back its first value as it
        was (nothing to filter, say) gives back its reference: the table is not stored
        again. A dead worker's task is run again, as `map`'s. With `pool` (and a setup),
        the tasks go to `map`'s pool of actors instead (one a CPU, or a GPU for a setup
        marked `gpu`), each building the state once: a dead actor is restarted, builds it
        again and runs its task again."""
        tasks = [tuple(t) for t in tasks]
        if not tasks:
            return []
        ray = self._start()
        if pool and setup is not None:
            return self._held_on_actors(fn, tasks, setup)
        self._stop_actors()  # their CPUs are the tasks'
        stored_fn, env = ray.put(fn), ray.put(passed_on())
        stored_setup = ray.put(setup) if setup is not None else None
        run = ray.remote(num_returns=2, max_retries=RETRIES, retry_exceptions=False)(_run_held)
        pairs = [run.remote(stored_fn, stored_setup, env, *task) for task in tasks]
        smalls = self._gather({small: i for i, (_, small) in enumerate(pairs)}, len(tasks))
        return [
            (task[0] if same else table, small)
            for task, (table, _), (same, small) in zip(tasks, pairs, smalls)
        ]

    def _held_on_actors(
        self, fn: Callable[..., tuple[Any, Any]], tasks: list[tuple], setup: Callable[[], Any]
    ) -> list[tuple[Any, Any]]:
        """map_held's tasks on the actors of `map`, fed one at a time as each is free."""
        ray = self._ray
        actors = self._actors_for(setup, len(tasks))
        stored_fn, stored_setup, env = ray.put(fn), ray.put(setup), ray.put(passed_on())
        queue = iter(enumerate(tasks))
        owner: dict[Any, Any] = {}
        tables: list[Any] = [None] * len(tasks)

        def feed(actor: Any) -> dict[Any, int]:
            for i, task in queue:
                run = actor.run_held.options(num_returns=2)
                tables[i], small = run.remote(stored_fn, stored_setup, env, *task)
                owner[small] = actor
                return {small: i}
            return {}

        try:
            refs = {ref: i for a in actors for ref, i in feed(a).items()}
            smalls = self._gather(refs, len(tasks), lambda ref: feed(owner.pop(ref)))
        except BaseException:
            self._stop_actors()  # a task may be left running
            raise
        return [
            (task[0] if same else table, small)
            for task, table, (same, small) in zip(tasks, tables, smalls)
        ]

    def map_parts(
        self, fn: Callable[..., tuple[list[Any], Any]], tasks: Sequence[tuple], count: int
    ) -> list[tuple[list[Any], Any]]:
        """`map_held` for steps that make `count` tables a task (a shuffle's parts: see
        composer.held.each_parts): each task's tables stay in the object store as `count`
        references, so a later task reads only the part it is given."""
        tasks = [tuple(t) for t in tasks]
        if not tasks:
            return []
        ray = self._start()
        self._stop_actors()  # their CPUs are the tasks'
        stored_fn, env = ray.put(fn), ray.put(passed_on())
        run = ray.remote(num_returns=count + 1, max_retries=RETRIES, retry_exceptions=False)(
            _run_parts
        )
        refs = [run.remote(stored_fn, count, env, *task) for task in tasks]
        smalls = self._gather({r[-1]: i for i, r in enumerate(refs)}, len(tasks))
        return [(list(r[:-1]), small) for r, small in zip(refs, smalls)]

    def put(self, value: Any) -> Any:
        """A reference to `value`, stored in the object store (for `map_held`'s tasks)."""
        return self._start().put(value)

    def fetch(self, ref: Any) -> Any:
        """The value a reference from `map_held` names, here."""
        return self._start().get(ref)

    def _actors_for(self, setup: Callable[[], Any], count: int) -> list[Any]:
        """Up to `count` actors, one a CPU (one a GPU for a setup that wants one): those of
        the previous map with a setup, kept for the next (starting one takes seconds)."""
        ray = self._ray
        gpus = int(ray.cluster_resources().get("GPU", 0)) if wants_gpu(setup) else 0
        if self._actors and self._gpus != bool(gpus):
            self._stop_actors()
        self._gpus = bool(gpus)
        worker = ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES)(_Worker)
        worker = worker.options(num_cpus=1, num_gpus=1 if gpus else 0)
        wanted = min(count, gpus or self.workers)
        self._actors += [worker.remote() for _ in range(wanted - len(self._actors))]
        return self._actors[:wanted]

    def _stop_actors(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []

    def _gather(
        self,
        pending: dict[Any, int],
        count: int,
        refill: Callable[[Any], dict[Any, int]] | None = None,
    ) -> list[Any]:
        """Each task's result at its place, taken as they finish (`refill(ref)`: the tasks
        submitted when one did); a task's exception raised as `fn` raised it, the others
        cancelled."""
        ray = self._ray
        results: list[Any] = [None] * count
        told: dict[int, caught.Caught] = {}  # each task's warnings (composer.engines.caught)
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(ref)
                results[i], told[i] = ray.get(ref)
                if refill is not None:
                    pending.update(refill(ref))
        except ray.exceptions.RayTaskError as exc:
            for ref in pending:
                ray.cancel(ref)
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise
        finally:
            written: set[str] = set()  # each text a task wrote to stderr, once a map
            for i in sorted(told):  # in task order, whichever finished first
                caught.replay(told[i], written)
        return results

    def release(self) -> None:
        """Stop the actors: each holds a CPU (or a GPU) of the cluster while it lives, and
        another job's tasks wait for those as long as it does."""
        if self._ray is not None:
            self._stop_actors()

    def close(self) -> None:
        """Stop the actors and disconnect (stopping the Ray instance this engine started)."""
        if self._ray is not None:
            self._stop_actors()
        if self._connected:
            self._ray.shutdown()
        self._ray, self._connected = None, False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """A UserError at once when the head at `address` (HOST:PORT, or ray://HOST:PORT) takes
    no connection: `ray.init` would retry for minutes, a warning every five seconds."""
    if not address:
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local": Ray finds the cluster itself
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): is "
            "`ray start --head` running there, and is the port open?"
        ) from None


@contextmanager
def _without_start_line() -> Iterator[None]:
    """Everything the C++ core writes to stderr as Ray starts, but the line it writes
    because RAY_BACKEND_LOG_LEVEL is set ("Set ray log level from environment variable"):
    stderr goes to a file meanwhile, and the other lines are written back."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if "Set ray log level" not in line:
                    sys.stderr.write(line)


def passed_on() -> dict[str, str]:
    """The driver's variables the workers take on: with the job as it starts (for the
    libraries that read them as they are imported), and with every task (for a process that
    connected once and builds with another cache folder)."""
    return {k: v for k, v in os.environ.items() if k.startswith(PASSED_ON)}


def wants_gpu(setup: Callable[[], Any]) -> bool:
    """Whether a setup (or the function a partial wraps) is marked `gpu = True`."""
    return bool(getattr(getattr(setup, "func", setup), "gpu", False))


def _run(fn: Callable[..., R], env: dict[str, str], task: Any) -> tuple[R, caught.Caught]:
    """`fn(task)`, and the warnings it raised (for the driver to show)."""
    os.environ.update(env)
    with caught.recording() as told:
        result = fn(task)
    return result, told


_HELD_STATE = WorkerState()  # a worker process's state from `map_held`'s latest setup


def _run_held(
    fn: Callable[..., tuple[Any, Any]], setup: Callable[[], Any] | None, env: dict, *args: Any
) -> tuple[Any, Any]:
    """`fn`'s (table, small) as (table, ((False, small), warnings)), or (None, ((True,
    small), warnings)) when the table is `fn`'s first value, unchanged."""
    os.environ.update(env)
    with caught.recording() as told:
        if setup is None:
            table, small = fn(*args)
        else:
            table, small = _HELD_STATE.run(lambda state, task: fn(state, *task), setup, args)
    return _held(table, small, told, args)


def _held(table: Any, small: Any, told: caught.Caught, args: tuple) -> tuple[Any, Any]:
    if args and table is args[0]:
        return None, ((True, small), told)
    return table, ((False, small), told)


def _run_parts(fn: Callable[..., tuple[list[Any], Any]], count: int, env: dict, *args: Any):
    """`fn`'s (tables, small) as `count` tables, then (small, warnings): one object each."""
    os.environ.update(env)
    with caught.recording() as told:
        tables, small = fn(*args)
    if len(tables) != count:
        raise ValueError(f"{fn.__name__} made {len(tables)} tables, not {count}")
    return (*tables, (small, told))


class _Worker:
    """An actor: the state of the map's `setup`, built as its first task runs (again after a
    restart), then used for every task it is given."""

    def __init__(self) -> None:
        self.state = WorkerState()

    def run(
        self, fn: Callable[..., R], setup: Callable[[], Any], env: dict[str, str], task: Any
    ) -> tuple[R, caught.Caught]:
        os.environ.update(env)
        with caught.recording() as told:
            result = self.state.run(fn, setup, task)
        return result, told

    def run_held(
        self, fn: Callable[..., tuple[Any, Any]], setup: Callable[[], Any], env: dict, *args: Any
    ) -> tuple[Any, Any]:
        """A task of `map_held` with `pool`: as `_run_held`, with this actor's state."""
        os.environ.update(env)
        with caught.recording() as told:
            table, small = self.state.run(lambda state, task: fn(state, *task), setup, args)
        return _held(table, small, told, args)
