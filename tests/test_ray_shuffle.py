"""Dedup and the split of a Ray build as a hash shuffle on the id (composer.parts), on the
real two-node cluster of tests/test_ray.py: duplicates across sources of different
confidence and of different kinds, repeats from upsampling, validation and test splits
with a `max_validation` cap, rejected rows; the output is the local engine's, byte for
byte, and the driver got nothing from the cluster but small results (no id column, no
table, no rejected rows but the report's few, no list of draws longer than a round of
counts is; only the rendered rows it writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

import composer  # noqa: E402
from composer import split as split_module  # noqa: E402
from composer.engines.ray import RayEngine  # noqa: E402
from composer.report import EXAMPLES  # noqa: E402
from tests.helpers import write_jsonl, write_manifest  # noqa: E402
from tests.test_ray import assert_same_bytes, cluster, engine  # noqa: E402, F401  (fixtures)
from tests.test_workers import small_batches  # noqa: E402, F401  (a fixture)

SHUFFLE = {
    "partition",
    "_first_wins_part",
    "_without",
    "_part_table",
    "_count",
    "_mark_test",
    "_chosen_by_source",
    "_gathered",
    "_rejected_file",
}


def mixture(folder: Path) -> Path:
    """Three SFT sources and a DPO source sharing instructions (the DPO prompts are SFT
    instructions too: the same id in two kinds), confidences 3, 2, 2, 1, an upsampled mix,
    validation and test splits, one source's validation capped."""
    first = [{"instruction": f"question {i}", "output": f"first {i}"} for i in range(150)]
    first += [{"instruction": f"bad {i}", "output": ""} for i in range(30)]  # rejected
    second = [{"instruction": f"question {i}", "output": f"second {i}"} for i in range(100, 260)]
    second += second[:20]  # duplicates inside a source too
    chats = [
        {
            "conversations": [
                {"from": "human", "value": f"question {i}"},
                {"from": "gpt", "value": f"chat {i}"},
            ]
        }
        for i in range(200, 330)
    ]
    pairs = [
        {"prompt": f"question {i}", "chosen": f"yes {i}", "rejected": f"no {i}"}
        for i in range(0, 400, 3)
    ]
    sources = [
        {"name": "first", "plugin": "alpaca", "confidence": 3, "weight": 1},
        {"name": "second", "plugin": "alpaca", "confidence": 2, "weight": 2},
        {"name": "chats", "plugin": "sharegpt", "confidence": 2, "weight": 3},
        {"name": "pairs", "plugin": "dpo", "confidence": 1, "weight": 2, "max_validation": 4},
    ]
    for source, rows in zip(sources, (first, second, chats, pairs)):
        source["path"] = write_jsonl(folder / f"{source['name']}.jsonl", rows)
    return write_manifest(
        folder,
        sources,
        formats=["chatml", "alpaca"],
        split={"validation": 0.15, "test": 0.1},
        mix={"total": 900, "upsample": True},
    )


def thirds(table: pa.Table) -> tuple[list[pa.Table], int]:
    """A table in three parts by row number mod 3, and its rows."""
    where = np.arange(table.num_rows) % 3
    return [table.filter(pa.array(where == k)) for k in range(3)], table.num_rows


def total(*parts: pa.Table) -> tuple[None, int]:
    return None, sum(pc.sum(p.column("x")).as_py() or 0 for p in parts)


def test_each_part_is_an_object_of_its_own(engine):  # noqa: F811
    """map_parts: a task's tables come back as one reference each, and a later task given
    the k-th part of every table reads those; a task that makes another number of tables
    than asked fails as a task does."""
    tables = [engine.put(pa.table({"x": np.arange(n)})) for n in (10, 7)]
    cut = engine.map_parts(thirds, [(t,) for t in tables], 3)
    assert [rows for _, rows in cut] == [10, 7]
    assert all(len(parts) == 3 for parts, _ in cut)
    sums = engine.map_held(total, [tuple(parts[k] for parts, _ in cut) for k in range(3)])
    expected = [sum(x for n in (10, 7) for x in range(n) if x % 3 == k) for k in range(3)]
    assert [s for _, s in sums] == expected
    with pytest.raises(ValueError, match="made 3 tables, not 2"):
        engine.map_parts(thirds, [(tables[0],)], 2)


@pytest.fixture
def results(monkeypatch) -> list[tuple[str, Any]]:
    """(function, what came back to the driver) of every map a build sends to the cluster,
    and every table it fetched (as ("fetch", table)): the real maps run."""
    seen: list[tuple[str, Any]] = []
    for method in ("map", "map_held", "map_parts"):
        real = getattr(RayEngine, method)

        def counted(self, fn, tasks, *args, real=real, pairs=method != "map", **kwargs):
            out = real(self, fn, tasks, *args, **kwargs)
            name = getattr(fn, "func", fn).__name__
            seen.append((name, [small for _, small in out] if pairs else out))
            return out

        monkeypatch.setattr(RayEngine, method, counted)
    real_fetch = RayEngine.fetch

    def fetch(self, ref):
        table = real_fetch(self, ref)
        seen.append(("fetch", table))
        return table

    monkeypatch.setattr(RayEngine, "fetch", fetch)
    return seen


def large(value: Any, limit: int) -> list[str]:
    """What in `value` is data rather than a small result: Arrow arrays and tables (but
    empty ones: a schema), numpy arrays longer than `limit`, long lists (looked for inside
    containers and objects)."""
    if isinstance(value, pa.Array | pa.ChunkedArray | pa.Table | pa.RecordBatch):
        return [f"{type(value).__name__} of {len(value)}"] if len(value) else []
    if isinstance(value, np.ndarray):
        return [f"array of {value.size}"] if value.size > limit else []
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in large(k, limit) + large(v, limit)]
    if isinstance(value, list | tuple | set):
        own = [f"{type(value).__name__} of {len(value)}"] if len(value) > limit else []
        return own + [x for v in value for x in large(v, limit)]
    if hasattr(value, "__dict__"):
        return large(vars(value), limit)
    return []


@pytest.mark.usefixtures("small_batches")
def test_dedup_and_the_split_run_on_the_workers(cluster, tmp_path, results, monkeypatch):  # noqa: F811
    # Few candidates a round: the split's thresholds take rounds of counts on the workers.
    monkeypatch.setattr(split_module, "CANDIDATES", 16)
    manifest = mixture(tmp_path)
    local = composer.build(manifest, tmp_path / "local", workers=1, cache=False)
    on_ray = composer.build(
        manifest, tmp_path / "ray", cache=False, engine="ray", address=cluster.address
    )
    sources = {s["name"]: s for s in on_ray.report["sources"]}
    # 100-149 and the 20 repeated (100-119) are first's; 200-259 second's, not chats'.
    assert sources["second"]["lost_to"] == {"first": 70}
    assert sources["chats"]["lost_to"] == {"second": 60}
    assert sources["pairs"]["duplicates"] == 0  # another kind: deduplicated apart
    assert all(s["validation"] and s["test"] for s in sources.values())
    assert sum(s["sampled"] for s in sources.values()) > sum(
        s["after_dedup"] for s in sources.values()
    )  # upsampled: ids repeat
    assert sources["first"]["rejected"] == 30 and len(sources["first"]["rejected_examples"])
    # The rejected rows stayed on the workers (a worker wrote rejected.jsonl): the driver got
    # the first few, for the report.
    [loaded] = [smalls for name, smalls in results if name == "_held_source"]
    converted = [c for c, _ in loaded]
    first = converted[0]  # the manifest's first source
    assert (first.rejected_total, len(first.rejections)) == (30, EXAMPLES)
    assert all(c.rejected_total == 0 for c in converted[1:])
    done = {name for name, _ in results}
    assert done >= SHUFFLE and "fetch" not in done
    limit = max(split_module.BINS, split_module.CANDIDATES)
    for name, smalls in results:
        if name != "_render_held":  # rendered rows: the driver writes them
            assert not large(smalls, limit), name
    assert_same_bytes(local.output_dir, on_ray.output_dir)
