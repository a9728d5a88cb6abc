"""The Ray engine (composer.engines.ray) on a real two-node Ray cluster started on this
machine: the engine protocol's tests, tasks spread over both nodes, and worker processes
killed mid-map whose tasks Ray runs again."""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

from composer.engines.ray import RayEngine  # noqa: E402
from tests.test_engines import (  # noqa: E402, F401  (the protocol's tests, on this engine)
    test_errors_reach_the_caller_as_raised,
    test_results_in_task_order,
    test_setup_runs_once_per_worker,
)


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node, one CPU each, as `ray start` would run them."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="module")
def engine(cluster):
    """One connection for the module: its worker processes are started once."""
    with RayEngine(cluster.address) as e:
        yield e


# ---------------------------------------------------------------- task functions


def node_of(x: int) -> tuple[int, str]:
    time.sleep(0.3)  # long enough that the two nodes share the tasks
    return x, ray.get_runtime_context().get_node_id()


def die_once(marker: str, x: int) -> tuple[int, int]:
    """Task 2 kills its worker process the first time it runs (a crash, an OOM kill)."""
    if x == 2 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return x * x, os.getpid()


def starts(log: str) -> str:
    """A setup that appends its process id to `log`: how often it ran."""
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    return log


def die_once_with_state(marker: str, state: str, x: int) -> int:
    return die_once(marker, x)[0]


def cache_folder(_: int) -> str:
    return os.environ["COMPOSER_CACHE"]


# ---------------------------------------------------------------- tests


def test_a_two_node_cluster_shares_the_tasks(engine: RayEngine):
    assert engine.nodes() == 2 and engine.workers == 2
    results = engine.map(node_of, list(range(6)))
    assert [x for x, _ in results] == list(range(6))
    assert len({node for _, node in results}) == 2


def test_a_killed_worker_has_its_task_run_again(engine: RayEngine, tmp_path: Path):
    results = engine.map(partial(die_once, str(tmp_path / "died")), list(range(6)))
    assert (tmp_path / "died").exists()  # the kill happened
    assert [r for r, _ in results] == [x * x for x in range(6)]


def test_a_killed_actor_is_restarted_with_its_state(engine: RayEngine, tmp_path: Path):
    log = tmp_path / "setups"
    fn = partial(die_once_with_state, str(tmp_path / "died"))
    assert engine.map(fn, list(range(8)), partial(starts, str(log))) == [x * x for x in range(8)]
    assert (tmp_path / "died").exists()
    # One state per actor (two), and one more for the actor restarted after the kill.
    assert len(log.read_text().split()) == 3
    assert engine.map(fn, [0, 1, 3], partial(starts, str(log))) == [0, 1, 9]
    assert len(log.read_text().split()) == 3  # the same actors, with their state


def test_workers_take_the_drivers_cache_folder(engine: RayEngine, monkeypatch, tmp_path):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))
    assert engine.map(cache_folder, [0, 1]) == [str(tmp_path / "cache")] * 2
