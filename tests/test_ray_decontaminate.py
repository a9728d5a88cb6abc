"""Decontamination on a real two-node Ray cluster (composer.scan_held): the texts are
split, made distinct, scanned and counted on the workers, and the driver fetches no table;
the bytes are the local engine's (report, audit, every file), with `report_only` or not,
for SFT, DPO and text sources and for a contaminated text that two sources share; a
rerun takes the scans from the cache as the local engine does; an actor killed as it
scans changes nothing.

The mixtures are small, so the batch sizes are lowered (tests.test_workers.small_batches):
the scan is many tasks on both nodes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

import composer
from composer import held, stages
from composer.cache import StageCache
from tests import test_ray
from tests.helpers import write_jsonl
from tests.test_decontaminate import ITEMS, conv
from tests.test_ray import assert_cluster_free, assert_same_bytes, build_while_killing
from tests.test_workers import every_stage, small_batches  # noqa: F401  (a fixture)

cluster, engine, ray_tasks = test_ray.cluster, test_ray.engine, test_ray.ray_tasks  # fixtures

SHARED = "A text that two sources share, word for word, and that no benchmark holds."


def contaminated_mixture(folder: Path, report_only: bool = False) -> Path:
    """tests.test_workers' mixture (SFT, DPO and text sources, a contaminated row), and a
    source that shares texts with it: a benchmark item as an answer (the other source has
    it as a question), and a clean text that both have."""
    path = every_stage(folder)
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    chats = [
        {"conversations": conv("Repeat the first problem, please.", ITEMS[0])},
        {"conversations": conv("Say the shared line.", SHARED)},
        {"conversations": conv("Something else entirely.", "Fine, here it is.")},
    ]
    more = [{"conversations": conv("Another question of the chat source", SHARED)}]
    write_jsonl(folder / "more_shared.jsonl", more)
    manifest["sources"] += [
        {"name": "shares", "plugin": "sharegpt", "path": "shares.jsonl", "weight": 1},
        {"name": "shares_too", "plugin": "sharegpt", "path": "more_shared.jsonl", "weight": 1},
    ]
    write_jsonl(folder / "shares.jsonl", chats)
    manifest["decontaminate"]["report_only"] = report_only
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return path


def driver_fetched(ray_tasks: list) -> set[str]:
    """The functions the build ran on the cluster, and "fetch" if the driver fetched a
    table from the object store."""
    return {fn for fn, *_ in ray_tasks}


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("report_only", [False, True])
def test_decontamination_on_the_cluster_is_the_local_build(
    cluster, tmp_path, ray_tasks, report_only
):
    path = contaminated_mixture(tmp_path, report_only)
    local = composer.build(path, tmp_path / "local", workers=1, cache=False)
    ray_tasks.clear()
    on_ray = composer.build(
        path, tmp_path / "ray", cache=False, engine="ray", address=cluster.address
    )
    done = driver_fetched(ray_tasks)
    assert {"split_texts", "distinct_part", "scan_part", "counted_source"} <= done
    assert "fetch" not in done  # the driver held no records
    # The scan's tasks ran on both nodes' actors (small batches: many tasks).
    scans = [count for fn, count, _ in ray_tasks if fn == "scan_part"]
    assert scans and scans[0] > 2
    # The benchmark item that two sources share is found in both, removed or not.
    audit = (local.output_dir / "contamination.jsonl").read_text(encoding="utf-8")
    found = [json.loads(line) for line in audit.splitlines()]
    assert {"more", "shares"} <= {a["source"] for a in found}
    assert {a["removed"] for a in found} == {not report_only}
    contaminated = {s["name"]: s["contaminated"] for s in local.report["sources"]}
    assert bool(contaminated["shares"]) is not report_only
    assert_same_bytes(local.output_dir, on_ray.output_dir)


def hits(since: int) -> Counter:
    return Counter(e["stage"] for e in StageCache().events()[since:] if e["event"] == "hit")


@pytest.mark.usefixtures("small_batches")
def test_a_rerun_on_the_cluster_takes_the_scans_from_the_cache(cluster, engine, tmp_path):
    """The same cache use as the local engine: the first build stores the benchmark index
    and each source's scan, keyed by the sha256 of its records (taken on the workers); a
    rerun takes every scan from the cache; a rerun after one source changed scans that
    source again, with the benchmark index from the cache."""
    path = contaminated_mixture(tmp_path)
    first = composer.build(path, tmp_path / "a", cache=True, engine=engine)
    stored = {e["stage"] for e in StageCache().events() if e["event"] == "store"}
    assert {"benchmarks", "decontaminate"} <= stored
    StageCache().clear(["output"])
    since = len(StageCache().events())
    again = composer.build(path, tmp_path / "b", cache=True, engine=engine)
    assert hits(since)["decontaminate"] == len(first.report["sources"])
    assert_same_bytes(first.output_dir, again.output_dir)

    write_jsonl(tmp_path / "more_shared.jsonl", [{"conversations": conv("New?", "New!")}])
    StageCache().clear(["output"])
    since = len(StageCache().events())
    changed = composer.build(path, tmp_path / "c", cache=True, engine=engine)
    assert hits(since)["benchmarks"] == 1
    assert hits(since)["decontaminate"] == len(first.report["sources"]) - 1
    local = composer.build(path, tmp_path / "local", workers=1, cache=False)
    assert_same_bytes(local.output_dir, changed.output_dir)


def test_the_stage_keys_are_the_sha256_of_the_held_tables(cluster, engine):
    """scan_keys' sha256 of each source's records, taken on the workers, is the one taken
    here of the same table."""
    import pyarrow as pa

    table = pa.table({"id": ["a", "b"], "text": ["x", "y"]})
    ref = engine.put(table)
    assert held.shas(engine, {"s": ref}) == {"s": stages.table_sha(table)}


@pytest.mark.usefixtures("small_batches")
def test_an_actor_killed_as_it_scans_changes_nothing(cluster, engine, tmp_path):
    path = contaminated_mixture(tmp_path)
    local = composer.build(path, tmp_path / "local", workers=1, cache=False)
    title = "ray::_Worker.run_held"
    on_ray, killed = build_while_killing(cluster, title, path, tmp_path / "ray", engine)
    assert killed, "no actor was scanning"
    assert_same_bytes(local.output_dir, on_ray.output_dir)
    assert_cluster_free()
