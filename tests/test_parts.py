"""Dedup and the split as a hash shuffle on the id (composer.parts), the way a Ray build runs
them where the records are, against `first_wins` and `split_ids` (what the local engine
runs) on seeded random sources: many duplicates within and across sources and kinds,
repeats as upsampling makes them, quotas with caps. Run here in this process (the shuffle's
steps are the same functions on Ray: tests/test_ray_shuffle.py), with several part counts,
and with draws made coarse so that ties are many."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from composer import draws, held, parts
from composer import split as split_module
from composer.dedup import first_wins, first_wins_held
from composer.split import split_held, split_ids, with_split
from tests.helpers import uuid5

POOL = [uuid5(f"item {i}") for i in range(3000)]


def engine_of(workers: int) -> SimpleNamespace:
    """An engine that holds no data, with `workers` workers: the shuffle runs here, in
    2 * workers parts."""
    return SimpleNamespace(workers=workers)


def random_table(rng: np.random.Generator, rows: int, pool: int) -> pa.Table:
    ids = [POOL[i] for i in rng.integers(0, pool, rows)]
    return pa.table({"id": ids, "n": np.arange(rows)})


@dataclass
class _Named:
    name: str


def sources(rng: np.random.Generator, count: int, pool: int):
    """Converted-like sources (what first_wins reads of them), their tables by name."""
    made, tables = [], {}
    for order in range(count):
        name = f"s{order}"
        made.append(
            SimpleNamespace(
                source=_Named(name),
                plugin=SimpleNamespace(kind=str(rng.choice(["sft", "dpo", "text"]))),
                confidence=float(rng.integers(0, 3)),
                order=order,
            )
        )
        tables[name] = random_table(rng, int(rng.integers(0, 400)), pool)
    return made, tables


def test_an_id_is_in_one_part_wherever_it_is():
    rng = np.random.default_rng(0)
    a, b = random_table(rng, 500, 300), random_table(rng, 500, 300)
    for distinct in (False, True):
        cut_a, held_a = parts.partition(a, 5, distinct)
        cut_b, _ = parts.partition(b, 5, distinct)
        assert held_a == (len(pc.unique(a.column("id"))) if distinct else 500)
        for p in range(5):
            rows = cut_a[p].column("row").to_numpy()
            assert np.all(np.diff(rows) > 0)
            ids_a = set(cut_a[p].column("id").to_pylist())
            others = {i for q in range(5) if q != p for i in cut_b[q].column("id").to_pylist()}
            assert not ids_a & others
        if not distinct:
            back = pa.concat_tables(cut_a).sort_by("row")
            assert back.column("id").to_pylist() == a.column("id").to_pylist()
        else:  # each id once, at its rank among the distinct ids in order of first appearance
            back = pa.concat_tables(cut_a).sort_by("row")
            assert back.column("id").to_pylist() == pc.unique(a.column("id")).to_pylist()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("workers", [1, 3])
def test_the_shuffled_dedup_is_first_wins(seed: int, workers: int):
    rng = np.random.default_rng(seed)
    made, tables = sources(rng, int(rng.integers(1, 7)), int(rng.integers(20, 800)))
    masks, lost_to = first_wins(made, {n: t.column("id") for n, t in tables.items()})
    kept, lost, records = first_wins_held(engine_of(workers), made, tables)
    assert list(kept) == list(masks)  # first_wins' order: kind, then priority
    for name, mask in masks.items():
        table, rows = kept[name]
        assert table.equals(tables[name].filter(pa.array(mask))) and rows == mask.sum()
    assert lost == lost_to and any(lost.values())
    assert records == {n: t.num_rows for n, t in tables.items()}


def split_cases():
    for seed in range(8):
        validation = [0.2, 0.05, 7, 0.0][seed % 4]
        test = [0.1, 0, 5, 0.3][seed // 2 % 4]
        yield pytest.param(seed, validation, test, id=f"{seed}-v{validation}-t{test}")


@pytest.mark.parametrize(("seed", "validation", "test"), split_cases())
@pytest.mark.parametrize("coarse", [False, True])
def test_the_shuffled_split_is_split_ids(seed, validation, test, coarse, monkeypatch):
    """Each source's rows on the same side as `split_ids` puts them; with few bins and few
    candidates the thresholds take several rounds of counts, and with coarse draws (many
    ids drawing the same number) the ties are broken as `split_ids` breaks them."""
    monkeypatch.setattr(split_module, "BINS", 4)
    monkeypatch.setattr(split_module, "CANDIDATES", 5)
    if coarse:
        coarse_bits = lambda *a: draws.draw_bits(*a) >> np.uint64(47) << np.uint64(47)  # noqa: E731
        monkeypatch.setattr(split_module, "draw_bits", coarse_bits)
        monkeypatch.setattr(
            split_module, "uniforms", lambda *a: coarse_bits(*a).astype(np.float64) * 2.0**-53
        )
    rng = np.random.default_rng(seed)
    pool = int(rng.integers(50, 1500))
    tables = {f"s{k}": random_table(rng, int(rng.integers(0, 500)), pool) for k in range(5)}
    caps = {name: [None, 3, 40][k % 3] for k, name in enumerate(tables)}
    ids = {name: t.column("id") for name, t in tables.items()}
    test_ids, validation_ids = split_ids(ids, validation, 7, test, caps)
    chosen = split_held(engine_of(1 + seed % 3), tables, validation, 7, test, caps)
    for name, table in tables.items():
        expected = with_split(table, test_ids, validation_ids).column("split")
        assert with_split(table, *chosen[name]).column("split").equals(expected), name
    if validation or test:
        assert len(test_ids) + len(validation_ids)


def test_a_driver_that_holds_no_data_renders_on_a_pool_that_gives_memory_back():
    """composer.held.returning_pool: jemalloc meanwhile where the engine holds the data (and
    Arrow has jemalloc), the pool as it was before and after, and elsewhere."""
    before = pa.default_memory_pool().backend_name
    with held.returning_pool(engine_of(2)):
        assert pa.default_memory_pool().backend_name == before
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this pyarrow has no jemalloc")
    with held.returning_pool(SimpleNamespace(holds_data=True, workers=2)):
        assert pa.default_memory_pool().backend_name == "jemalloc"
        kept = pa.array(["x" * 100] * 1000)
    assert pa.default_memory_pool().backend_name == before
    assert kept.to_pylist()[0] == "x" * 100  # made there, freed here: still readable


def test_empty_sources_shuffle_to_nothing():
    rng = np.random.default_rng(3)
    made, tables = sources(rng, 3, 50)
    tables = {name: t.slice(0, 0) if k != 1 else t for k, (name, t) in enumerate(tables.items())}
    masks, lost_to = first_wins(made, {n: t.column("id") for n, t in tables.items()})
    kept, lost, _ = first_wins_held(engine_of(1), made, tables)
    assert {n: r for n, (_, r) in kept.items()} == {n: int(m.sum()) for n, m in masks.items()}
    assert lost == lost_to
    test_ids, validation_ids = split_ids({n: t.column("id") for n, t in tables.items()}, 0.2, 1, 3)
    for name, chosen in split_held(engine_of(1), tables, 0.2, 1, 3).items():
        expected = with_split(tables[name], test_ids, validation_ids).column("split")
        assert with_split(tables[name], *chosen).column("split").equals(expected)
    empty = {name: t.slice(0, 0) for name, t in tables.items()}
    assert all(len(a) + len(b) == 0 for a, b in split_held(engine_of(1), empty, 0.2, 1, 3).values())
