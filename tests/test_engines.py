"""The engines (composer.engines): results in task order, setup once per worker, errors
as they were raised, and a pool that starts no process for a single task."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from composer.engines import LocalEngine, engine_for
from composer.engines.base import Engine
from composer.engines.pool import PoolEngine
from composer.errors import ManifestError, TemplateError, UserError
from tests.helpers import DEMO, assert_user_error, invoke


def slow_square(x: int) -> int:
    time.sleep(0.02 * (5 - x % 5))  # later tasks finish first
    return x * x


def counter(start: int) -> dict:
    return {"pid": os.getpid(), "start": start, "calls": 0}


def with_state(state: dict, x: int) -> tuple[int, int, int]:
    state["calls"] += 1
    return state["pid"], state["start"] + x, state["calls"]


def fail(x: int) -> int:
    if x == 3:
        raise ManifestError("m.yaml", ["sources.0.path: no such file"])
    if x == 4:
        raise TemplateError("bad template", key="vars")
    return x


@pytest.fixture(params=["local", "pool"])
def engine(request):
    with LocalEngine() if request.param == "local" else PoolEngine(2) as e:
        yield e


def test_results_in_task_order(engine: Engine):
    assert isinstance(engine, Engine)
    assert engine.map(slow_square, list(range(10))) == [x * x for x in range(10)]
    assert engine.map(slow_square, []) == []


def test_setup_runs_once_per_worker(engine: Engine):
    results = engine.map(with_state, list(range(12)), partial(counter, 100))
    assert [r[1] for r in results] == [100 + x for x in range(12)]
    by_worker: dict[int, list[int]] = {}
    for pid, _, calls in results:
        by_worker.setdefault(pid, []).append(calls)
    assert len(by_worker) <= engine.workers
    assert sum(len(c) for c in by_worker.values()) == 12
    for calls in by_worker.values():  # one state per worker, counting every task it ran
        assert sorted(calls) == list(range(1, len(calls) + 1))
    # Another setup: a fresh state.
    again = engine.map(with_state, [0], partial(counter, 7))
    assert again[0][1] == 7 and again[0][2] == 1


def test_errors_reach_the_caller_as_raised(engine: Engine):
    with pytest.raises(ManifestError) as caught:
        engine.map(fail, [1, 2, 3])
    assert caught.value.problems == ["sources.0.path: no such file"]
    with pytest.raises(TemplateError) as template:
        engine.map(fail, [4, 5])
    assert isinstance(template.value, UserError) and template.value.key == "vars"


def test_pool_starts_no_process_for_one_task():
    with PoolEngine(2) as pool:
        [(pid, _, _)] = pool.map(with_state, [1], partial(counter, 0))
        assert pid == os.getpid() and pool._executor is None
        pids = {r[0] for r in pool.map(with_state, [1, 2, 3, 4], partial(counter, 0))}
        assert os.getpid() not in pids and pool._executor is not None


def test_engine_for_workers():
    assert isinstance(engine_for(1), LocalEngine)
    assert engine_for(3).workers == 3


def test_a_task_holding_a_slice_ships_only_its_rows():
    """Arrow pickles a slice with its whole table's buffers: a chunk to scan or a batch to
    render would carry the whole source to every worker. Tasks are made compact."""
    import importlib
    import pickle

    import pyarrow as pa

    from composer.decontaminate import ScanTask

    build_module = importlib.import_module("composer.build")
    table = pa.table({"text": [f"{i} " + "x" * 1000 for i in range(10_000)]})
    part = table.slice(5_000, 5)
    for task in (
        ScanTask(table.column("text").chunk(0).slice(5_000, 5)),
        build_module._RenderTask(0, "text", part, True),
    ):
        shipped = pickle.dumps(task)
        assert len(shipped) < 20_000
        assert pickle.loads(shipped) == task


def big_table(n: int):
    import pyarrow as pa

    return pa.table({"n": list(range(n)), "text": [f"row {i} " + "x" * 300 for i in range(n)]})


def test_a_worker_returns_a_large_table_through_a_mapped_file():
    """A worker's large table comes back through a file it writes and the driver maps (not
    through the pipe): equal to the table, each file removed once read, the folder removed
    when the pool closes; a small table comes back pickled."""
    import pyarrow as pa

    engine = PoolEngine(2)
    tables = engine.map(big_table, [10_000, 20_000, 3])
    folder = Path(engine._folder)
    assert [t.num_rows for t in tables] == [10_000, 20_000, 3]
    for table in tables:
        assert table.equals(big_table(table.num_rows))
    assert folder.is_dir() and not list(folder.iterdir())  # read and unlinked
    assert pa.total_allocated_bytes() < 2_000_000  # not copied into Arrow's memory pool
    engine.close()
    assert not folder.exists()


# ---------------------------------------------------------------- choosing one: engine:, --engine


def demo_copy(folder: Path, extra: str = "") -> Path:
    """The demo manifest and its data in `folder`, writing to folder/out, with `extra` lines
    at the top level."""
    shutil.copytree(DEMO.parent / "demo_data", folder / "demo_data")
    text = DEMO.read_text(encoding="utf-8").replace("dir: ../out/demo", "dir: out")
    path = folder / "demo.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_an_unknown_engine_is_named_with_its_line(tmp_path):
    path = demo_copy(tmp_path, "engine: rayy\n")
    line = len(path.read_text().splitlines())
    assert_user_error(
        invoke("build", str(path)),
        f"{path}: invalid manifest\n  line {line}: engine: expected one of 'local' or 'ray', "
        "got 'rayy' (did you mean 'ray'?)",
    )
    result = invoke("build", str(path), "--engine", "spark")
    assert result.exit_code == 2 and "Invalid value for '--engine'" in result.stderr


def test_ray_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray gives
    path = demo_copy(tmp_path)
    message = "the ray engine needs Ray, which is not installed: pip install 'composer-mix[ray]'"
    assert_user_error(invoke("build", str(path), "--engine", "ray"), message)
    assert not (tmp_path / "out").exists()
    # The manifest's `engine: ray` asks the same; --engine local overrides it.
    path.write_text(path.read_text() + "engine: ray\n")
    assert_user_error(invoke("build", str(path)), message)
    assert invoke("build", str(path), "--engine", "local", "-q").exit_code == 0


def test_an_address_is_for_the_ray_engine(tmp_path):
    path = demo_copy(tmp_path)
    assert_user_error(
        invoke("build", str(path), "--address", "10.0.0.1:6379"),
        "a Ray address (10.0.0.1:6379) is for the ray engine: add --engine ray (or set "
        "`engine: ray` in the manifest)",
    )


def test_the_local_engine_imports_no_ray(tmp_path):
    """A build on the local engine (in a fresh process: this one may have imported Ray)
    loads no Ray module, even with the manifest saying `engine: local`."""
    path = demo_copy(tmp_path, "engine: local\nworkers: 2\n")
    code = (
        "import sys, composer; r = composer.build(sys.argv[1], cache=False); "
        "print(r.engine, sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.split("\n")[0] == "pool []"


def test_the_engine_is_not_in_the_lock(tmp_path):
    """The lock's manifest hash leaves `engine` out, like `workers`: a lock made on one
    engine holds for a build on the other."""
    path = demo_copy(tmp_path)
    assert invoke("build", str(path), "-q", "--engine", "local").exit_code == 0
    with_engine = demo_copy(tmp_path / "b", "engine: local\nworkers: 1\n")
    first = json.loads((tmp_path / "out" / "composer.lock").read_text())
    assert invoke("build", str(with_engine), "-q").exit_code == 0
    second = json.loads((tmp_path / "b" / "out" / "composer.lock").read_text())
    assert first["manifest"]["model_sha256"] == second["manifest"]["model_sha256"]
