"""The Ray engine (composer.engines.ray) on a real two-node Ray cluster started on this
machine: the engine protocol's tests, tasks spread over both nodes, worker processes
killed mid-map whose tasks Ray runs again; and whole builds on the cluster (`composer build
--engine ray --address ...`) writing the same bytes as the local engine: the demo, a
mixture with every stage, a build whose worker is killed, and a rerun after a failed build
that reuses the finished stages.

The mixtures are small, so the sizes below which a stage stays in the driver are lowered
(tests.test_workers.small_batches): every stage's tasks run on the cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
psutil = pytest.importorskip("psutil")

import composer  # noqa: E402
from composer import stages  # noqa: E402
from composer.cache import StageCache  # noqa: E402
from composer.decontaminate import scan_setup  # noqa: E402
from composer.engines.ray import RayEngine  # noqa: E402
from tests.helpers import invoke, snapshot  # noqa: E402
from tests.test_engines import (  # noqa: E402, F401  (the protocol's tests, on this engine)
    demo_copy,
    test_errors_reach_the_caller_as_raised,
    test_results_in_task_order,
    test_setup_runs_once_per_worker,
)
from tests.test_workers import every_stage, small_batches  # noqa: E402, F401  (a fixture)


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


# ---------------------------------------------------------------- builds on the cluster


@pytest.fixture
def ray_tasks(monkeypatch) -> list[tuple[str, int, Any]]:
    """(function, tasks, setup) of every map a build sends to the cluster (`map`, and
    `map_held` and `map_parts`, whose tables stay on the cluster): the real map runs."""
    seen: list[tuple[str, int, Any]] = []
    for method in ("map", "map_held", "map_parts"):
        real = getattr(RayEngine, method)

        def counted(self, fn, tasks, setup=None, real=real, **options):
            tasks = list(tasks)
            seen.append((getattr(fn, "func", fn).__name__, len(tasks), setup))
            return real(self, fn, tasks, setup, **options)

        monkeypatch.setattr(RayEngine, method, counted)
    real_fetch = RayEngine.fetch

    def fetch(self, ref):
        seen.append(("fetch", 1, None))
        return real_fetch(self, ref)

    monkeypatch.setattr(RayEngine, "fetch", fetch)
    return seen


def assert_same_bytes(first: Path, second: Path) -> None:
    """Every output file in both folders, byte for byte."""
    a, b = snapshot(first), snapshot(second)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], name


@pytest.fixture(scope="module")
def mixture(tmp_path_factory) -> Path:
    """tests.test_workers' mixture with every stage: SFT, DPO and text sources, filters,
    duplicates across sources of different confidence, contamination, packing, a mix,
    validation and test splits, four formats."""
    return every_stage(tmp_path_factory.mktemp("mixture"))


_LOCAL: dict[Path, Path] = {}


def local_build(manifest: Path, folder: Path) -> Path:
    """The mixture built by the local engine in this process (once for the module)."""
    if manifest not in _LOCAL:
        _LOCAL[manifest] = composer.build(manifest, folder, workers=1, cache=False).output_dir
    return _LOCAL[manifest]


@pytest.mark.usefixtures("small_batches")
def test_the_demo_on_the_cluster_is_the_local_build(cluster, tmp_path, ray_tasks, monkeypatch):
    """The same bytes, and a driver that held no records: it converted no source and
    fetched no table from the object store (the demo has no near dedup, which still brings
    the records to the driver)."""
    path = demo_copy(tmp_path)
    local = invoke("build", str(path), "-o", str(tmp_path / "local"), "--no-cache", "-q")
    assert local.exit_code == 0, local.output
    here: list[int] = []  # sources converted or read in this process (the driver)
    for name in ("prepare_source", "load_source"):
        real = getattr(stages, name)
        monkeypatch.setattr(
            stages, name, lambda *a, real=real, **k: here.append(1) or real(*a, **k)
        )
    args = ["--engine", "ray", "--address", cluster.address, "--no-cache", "-q", "--json"]
    on_ray = invoke("build", str(path), "-o", str(tmp_path / "ray"), *args)
    assert on_ray.exit_code == 0, on_ray.output
    assert json.loads(on_ray.stdout)["engine"] == "ray" and on_ray.stderr == ""
    done = {fn for fn, *_ in ray_tasks}
    assert {"_held_source", "_render_held", "_records_file"} <= done
    assert "fetch" not in done and not here
    assert_same_bytes(tmp_path / "local", tmp_path / "ray")


def test_a_plugin_made_in_code_converts_in_the_driver_and_its_records_go_to_the_cluster(
    cluster, tmp_path, ray_tasks
):
    """A plugin made in code (a notebook's) is not in a worker's registry: its source
    converts in the driver, the rest on the workers, and the output is the local build's."""
    from dataclasses import replace

    from composer.plugins import registry

    plugins = registry()
    plugins["my_alpaca"] = replace(plugins["alpaca"], name="my_alpaca")
    try:
        path = demo_copy(tmp_path)
        path.write_text(path.read_text().replace("plugin: alpaca", "plugin: my_alpaca"))
        local = composer.build(path, tmp_path / "local", workers=1, cache=False)
        on_ray = composer.build(
            path, tmp_path / "ray", cache=False, engine="ray", address=cluster.address
        )
    finally:
        del plugins["my_alpaca"]
    loads = [count for fn, count, _ in ray_tasks if fn == "_held_source"]
    assert loads == [len(local.report["sources"]) - 1]
    assert_same_bytes(local.output_dir, on_ray.output_dir)


def test_the_command_shows_composers_lines_and_no_rays(cluster, tmp_path):
    """The command in a process of its own, as a user runs it: its stderr holds composer's
    summary and nothing from Ray (log lines, usage stats, progress bars)."""
    path = demo_copy(tmp_path)
    args = ["build", str(path), "--engine", "ray", "--address", cluster.address, "--no-cache"]
    done = subprocess.run(
        [sys.executable, "-m", "composer", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("Built demo in ") and lines[-1].endswith("[ray engine]")
    assert all(line.startswith("  ") for line in lines[1:]), done.stderr


@pytest.mark.usefixtures("small_batches")
def test_every_stage_on_the_cluster_is_the_local_build(
    cluster, mixture, tmp_path_factory, tmp_path, ray_tasks
):
    local = local_build(mixture, tmp_path_factory.mktemp("local"))
    on_ray = composer.build(
        mixture, tmp_path / "ray", cache=False, engine="ray", address=cluster.address
    )
    assert on_ray.engine == "ray"
    done = {fn for fn, *_ in ray_tasks}
    assert {"_held_source", "scan_part", "_render_held"} <= done
    assert "fetch" not in done  # decontaminated where the records are (composer.scan_held)
    # Built with --no-cache, the scan's benchmark index went to the workers through a folder
    # under the cache root (shared storage on a cluster, where /tmp is each machine's own),
    # removed when the scan ended.
    folders = [Path(s.args[0]) for _, _, s in ray_tasks if getattr(s, "func", 0) is scan_setup]
    assert folders and all(f.is_relative_to(os.environ["COMPOSER_CACHE"]) for f in folders)
    assert not any(f.exists() for f in folders)
    sources = {s["name"]: s for s in on_ray.report["sources"]}
    assert sources["tasks"]["filtered"] and any(s["duplicates"] for s in sources.values())
    assert any(s["contaminated"] for s in sources.values()) and sources["qa"]["packed"]
    assert "formats/llama3/dpo/test.parquet" in snapshot(local)
    assert_same_bytes(local, on_ray.output_dir)


def raylets(cluster) -> list[psutil.Process]:
    """The raylet of each of the cluster's nodes: the worker processes are its children."""
    return [
        psutil.Process(node.all_processes["raylet"][0].process.pid)
        for node in cluster.list_all_nodes()
    ]


def kill_when_busy(cluster, title: str, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first of the cluster's worker processes seen running `title` (a process
    title Ray sets: `ray::_Worker.run_held` is an actor running a task of map_held)."""
    parents = raylets(cluster)
    while not stop.is_set():
        for parent in parents:
            for child in parent.children(recursive=True):
                try:
                    busy = child.cmdline()[:1] == [title] or child.name() == title
                except psutil.Error:
                    continue
                if busy:
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
                    return
        time.sleep(0.02)


def build_while_killing(
    cluster, title: str, manifest: Path, out: Path, engine: RayEngine
) -> tuple[composer.BuildResult, list[int]]:
    """`manifest` built on the cluster while `kill_when_busy` kills the first busy worker
    process titled `title`; the build's result and the pids killed."""
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_when_busy, args=(cluster, title, killed, stop))
    killer.start()
    try:
        return composer.build(manifest, out, cache=False, engine=engine), killed
    finally:
        stop.set()
        killer.join()


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("title", ["ray::_Worker.run_held", "ray::_run_held"])
def test_a_worker_killed_during_a_build_changes_nothing(
    cluster, engine, mixture, tmp_path_factory, tmp_path, title
):
    """A worker process killed while it runs a task: an actor's as it scans (Ray starts it
    again, it builds its state again), or a task's that makes a table the object store
    keeps, or renders (a source converting, filtered, sampled, split). Its task runs again,
    and the output is the same."""
    local = local_build(mixture, tmp_path_factory.mktemp("local"))
    on_ray, killed = build_while_killing(cluster, title, mixture, tmp_path / "ray", engine)
    assert killed, "no worker was running a task"
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == "zombie"
    assert_same_bytes(local, on_ray.output_dir)
    assert_cluster_free()


def assert_cluster_free(wait: float = 30) -> None:
    """Every CPU of the cluster free again (an engine kept open after a build holds no
    actors: another build on the cluster would wait for their CPUs forever)."""
    deadline = time.monotonic() + wait
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, ray.available_resources()
        time.sleep(0.2)


BOOM = "Why do volcanoes erupt?"  # a question of the mixture's last source, `qa`


def failing_template(folder: Path, fails: bool) -> str:
    """chatml, as a template of the manifest's own: one that fails (1 // 0) on the row
    whose question is BOOM, or that renders it as chatml does."""
    chatml = (Path(composer.__file__).parent.parent / "templates" / "chatml.jinja").read_text()
    if fails:
        boom = f'{{%- if m["content"] == {BOOM!r} -%}}{{{{ 1 // 0 }}}}{{%- endif -%}}\n'
        chatml = chatml.replace("{%- for m in messages -%}\n", "{%- for m in messages -%}\n" + boom)
    (folder / "boom.jinja").write_text(chatml, encoding="utf-8")
    return "boom.jinja"


# `composer build` with tests.test_workers.small_batches: every stage's tasks on the cluster.
SMALL_BATCHES = """
import composer.build, composer.decontaminate, composer.cli
b, d = composer.build, composer.decontaminate
b.RENDER_BATCH, b.POOL_ROWS, b.RENDER_POOL_WORKERS, b.POOL_BYTES = 7, 0, 2, 0
d.SCAN_CHUNK, d.SCAN_TEXTS, d.SCAN_POOL_TASKS = 3, 3, 2
composer.cli.cli(prog_name="composer")
"""


def cli_build(manifest: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """`composer build` (small batches) in a process of its own: a build that hangs is
    killed after WAIT seconds and fails the test, not the suite."""
    command = [sys.executable, "-c", SMALL_BATCHES, "build", str(manifest), "-o", str(out)]
    return subprocess.run([*command, "-q", *args], capture_output=True, text=True, timeout=WAIT)


WAIT = 240  # seconds a build on the cluster may take at most


def test_a_rerun_after_a_failed_build_reuses_the_finished_stages(cluster, tmp_path):
    """A build on the cluster fails as it renders the last source (after loading,
    decontamination and the other sources' rendering were stored in the cache); the rerun,
    the template fixed, takes them from the cache and writes the bytes of a clean build.

    Both are other jobs on the cluster than this process, whose engine stays open: the
    actors it kept after its builds held every CPU, and these builds waited for one
    forever (what hung when this test was first written)."""
    path = every_stage(tmp_path)
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    manifest["formats"] = [{"name": "chatml", "template": failing_template(tmp_path, True)}]
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    on_ray = ["--engine", "ray", "--address", cluster.address]
    failed = cli_build(path, tmp_path / "out", *on_ray)
    assert failed.returncode == 2 and "ZeroDivisionError" in failed.stderr, failed.stderr
    assert not (tmp_path / "out").exists()
    log = StageCache().events()
    stored = {e["stage"] for e in log if e["event"] == "store"}
    assert {"source", "benchmarks", "decontaminate", "render"} <= stored

    failing_template(tmp_path, False)
    rerun = cli_build(path, tmp_path / "out", *on_ray)
    assert rerun.returncode == 0, rerun.stderr
    again = StageCache().events()[len(log) :]
    hits = Counter(e["stage"] for e in again if e["event"] == "hit")
    assert hits["source"] == len(manifest["sources"]) and hits["decontaminate"]
    clean = composer.build(path, tmp_path / "clean", workers=1, cache=False)
    assert_same_bytes(clean.output_dir, tmp_path / "out")
