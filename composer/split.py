"""Train/validation/test split by dedup id, stratified by source, seeded.

Every copy of an id (upsampling repeats rows) lands on the same side, and so does an id
found in sources of different kinds, so no instruction is in two splits. Each source gives
the same share of its distinct ids to a split; a row count is shared out over sources in
proportion to their size (largest remainder), and a source's `max_validation` caps its
share, the rest going to the sources with room. Test ids are drawn first, validation ids
from the rest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer import held
from composer import parts as parts_module
from composer.draws import draw_bits, uniforms
from composer.engines import Engine


def _shares(weights: dict[str, int], target: int) -> dict[str, int]:
    """Whole numbers summing to `target`, proportional to integer `weights`: each the floor
    of its exact share, the leftovers to the largest remainders, ties by name. Integer
    arithmetic, so ties are ties."""
    total = sum(weights.values())
    quota = {name: target * w // total for name, w in weights.items()}
    remainder = {name: target * w % total for name, w in weights.items()}
    by_remainder = sorted(weights, key=lambda name: (-remainder[name], name))
    for name in by_remainder[: target - sum(quota.values())]:
        quota[name] += 1
    return quota


def validation_quota(
    sizes: dict[str, int], validation: float | int, caps: dict[str, int | None] | None = None
) -> dict[str, int]:
    """How many distinct ids each source gives to a split: proportional to its size, at most
    its cap. A source whose share passes its cap gives its cap, and the rest is shared
    afresh over the others."""
    total = sum(sizes.values())
    if not total or not validation:
        return dict.fromkeys(sizes, 0)
    target = round(validation * total) if isinstance(validation, float) else min(validation, total)
    given = caps or {}
    cap = {n: size if given.get(n) is None else min(size, given[n]) for n, size in sizes.items()}
    fixed: dict[str, int] = {}
    while True:
        free = {n: sizes[n] for n in sizes if n not in fixed}
        left = target - sum(fixed.values())
        weight = sum(free.values())
        over = {n for n in free if weight and left * free[n] > cap[n] * weight}
        if not over:
            break
        fixed.update({n: cap[n] for n in over})
    if not free or not sum(free.values()):
        return {n: fixed.get(n, 0) for n in sizes}
    share = _shares(free, min(left, sum(cap[n] for n in free)))
    return {n: fixed.get(n, share.get(n, 0)) for n in sizes}


def chosen_ids(
    ids: pa.ChunkedArray, quota: int, seed: int, purpose: str, skip: pa.Array
) -> pa.Array:
    """The `quota` distinct `ids` (other than `skip`) with the lowest draws, in Arrow (no
    Python string an id: a million ids are split this way)."""
    unique = pc.unique(ids)  # in order of first appearance
    if len(skip):
        unique = unique.filter(pc.invert(pc.is_in(unique, value_set=skip)))
    order = np.argsort(uniforms(seed, unique, purpose), kind="stable")
    return unique.take(order[:quota])


def split_sources(
    tables: dict[str, pa.Table],
    validation: float | int,
    seed: int,
    test: float | int = 0,
    max_validation: dict[str, int | None] | None = None,
) -> dict[str, pa.Table]:
    """Each source's records with a `split` column: 'train', 'validation' or 'test'.

    An id chosen for a split in one source is in that split everywhere: the same
    instruction in an SFT source and a DPO source never lands on two sides. That rule
    comes first: a source's `max_validation` caps the ids it chooses, and an id that
    another source chose for validation follows it there too.
    """
    ids = {name: t.column("id") for name, t in tables.items()}
    test_ids, validation_ids = split_ids(ids, validation, seed, test, max_validation)
    return {name: with_split(t, test_ids, validation_ids) for name, t in tables.items()}


def split_ids(
    ids: dict[str, pa.ChunkedArray],
    validation: float | int,
    seed: int,
    test: float | int = 0,
    max_validation: dict[str, int | None] | None = None,
) -> tuple[pa.Array, pa.Array]:
    """The ids chosen for test and for validation, from each source's id column alone (a
    Ray build chooses the same from counts, holding no id: `split_held`)."""
    everything = sum(len(pc.unique(column)) for column in ids.values())
    picked = {}
    for split, share, caps in (("test", test, None), ("validation", validation, max_validation)):
        if isinstance(share, float):  # a share of all items, not of those test left
            share = round(share * everything)
        skip = pa.concat_arrays(list(picked.values())) if picked else pa.array([], pa.string())
        sizes = {
            name: len(pc.unique(column.filter(pc.invert(pc.is_in(column, skip)))))
            for name, column in ids.items()
        }
        quota = validation_quota(sizes, share, caps)
        purpose = "split" if split == "validation" else split  # validation's draws as before
        chosen = [
            chosen_ids(column, quota[name], seed, purpose, skip) for name, column in ids.items()
        ]
        picked[split] = pa.concat_arrays(chosen) if chosen else pa.array([], pa.string())
    return picked["test"], picked["validation"]


def with_split(table: pa.Table, test_ids: pa.Array, validation_ids: pa.Array) -> pa.Table:
    """`table` with its `split` column, from the ids chosen for test and validation."""
    column = pc.if_else(
        pc.is_in(table.column("id"), value_set=test_ids),
        "test",
        pc.if_else(pc.is_in(table.column("id"), value_set=validation_ids), "validation", "train"),
    )
    return table.append_column("split", column)


# ---------------------------------------------------------------- where the records are

BINS = 1024  # a count round's bins of draws, per source
CANDIDATES = 4096  # draws around a threshold the driver sorts itself, at most, per source
_ALL = 1 << 53  # draw_bits are below it


def split_held(
    engine: Engine | None,
    tables: dict[str, Any],
    validation: float | int,
    seed: int,
    test: float | int = 0,
    max_validation: dict[str, int | None] | None = None,
) -> dict[str, tuple[Any, Any]]:
    """`split_ids`' choice, made where the engine keeps the tables (composer.parts): each
    source's (test ids, validation ids) among its own ids, which `with_split` turns into
    the same column as `split_ids`' ids do. The driver gets counts, never an id.

    `split_ids` gives a source's quota to its distinct ids (less those skipped) with the
    lowest draws, ties in order of first appearance: the ids whose (draw, first appearance)
    is at most the quota-th lowest such pair, a threshold the driver finds from counts of
    draws in bins (`_thresholds`). An id's part holds every source's copy of it, so a part
    knows whether it was chosen by any source, as `split_ids`' union of choices does."""
    empty = pa.array([], pa.string())
    if not validation and not test:
        return {name: (empty, empty) for name in tables}
    names = list(tables)
    if not names:
        return {}
    count = parts_module.count_for(engine)
    cut = held.each_parts(
        engine, parts_module.partition, [(tables[name], count, True) for name in names], count
    )
    sizes = {name: distinct for name, (_, distinct) in zip(names, cut)}
    everything = sum(sizes.values())
    whole = held.each(
        engine, _part_table, [(seed, *(pieces[p] for pieces, _ in cut)) for p in range(count)]
    )
    whole = [table for table, _ in whole]
    share = round(test * everything) if isinstance(test, float) else test
    chosen = _thresholds(engine, whole, "test", validation_quota(sizes, share, None), sizes)
    marked = held.each(engine, _mark_test, [(t, chosen) for t in whole])
    left = {name: sum(int(counts[k]) for _, counts in marked) for k, name in enumerate(names)}
    share = round(validation * everything) if isinstance(validation, float) else validation
    quota = validation_quota(left, share, max_validation)
    marked_tables = [t for t, _ in marked]
    chosen = _thresholds(engine, marked_tables, "validation", quota, left)
    by_part = held.each_parts(
        engine, _chosen_by_source, [(t, chosen) for t in marked_tables], len(names)
    )
    gathered = held.each_parts(
        engine, _gathered, [tuple(out[k] for out, _ in by_part) for k in range(len(names))], 2
    )
    return {name: tuple(pair) for name, (pair, _) in zip(names, gathered)}


def _part_table(seed: int, *pieces: pa.Table) -> tuple[pa.Table, None]:
    """A part of every source's distinct ids (`pieces`, by source), one table: the source's
    index, the id, where it first appears in the source, and its draws for test and
    validation (purposes as `split_ids`' draws)."""
    ids = pa.chunked_array([c for p in pieces for c in p.column("id").chunks], pa.string())
    ids = ids.combine_chunks()
    table = pa.table(
        {
            "source": np.repeat(np.arange(len(pieces), dtype=np.int32), [len(p) for p in pieces]),
            "id": ids,
            "row": np.concatenate([p.column("row").to_numpy() for p in pieces] or [[]]).astype(
                np.int64
            ),
            "test": draw_bits(seed, ids, "test"),
            "validation": draw_bits(seed, ids, "split"),
        }
    )
    return table, None


def _is_chosen(
    table: pa.Table, split: str, chosen: dict[int, tuple[int, int]], eligible: np.ndarray
) -> np.ndarray:
    """Which rows of a part table a split chose: a source's rows whose (draw, first
    appearance) is at most its threshold."""
    sources = table.column("source").to_numpy()
    draws = table.column(split).to_numpy()
    where = table.column("row").to_numpy()
    out = np.zeros(table.num_rows, bool)
    for source, (bits, row) in chosen.items():
        lo, hi = np.searchsorted(sources, [source, source + 1])
        d, w = draws[lo:hi], where[lo:hi]
        out[lo:hi] = (d < np.uint64(bits)) | ((d == np.uint64(bits)) & (w <= row))
    return out & eligible


def _mark_test(table: pa.Table, chosen: dict[int, tuple[int, int]]) -> tuple[pa.Table, np.ndarray]:
    """A part table with `in_test`: whether its id was chosen for test by any source; and
    each source's distinct ids left for validation."""
    picked = _is_chosen(table, "test", chosen, np.ones(table.num_rows, bool))
    ids = table.column("id")
    in_test = pc.is_in(ids, value_set=pc.unique(ids.filter(pa.array(picked))))
    table = table.append_column("in_test", in_test)
    sources = table.column("source").to_numpy()
    left = np.bincount(sources[~in_test.to_numpy(zero_copy_only=False)], minlength=len(chosen))
    return table, left


def _chosen_by_source(
    table: pa.Table, chosen: dict[int, tuple[int, int]]
) -> tuple[list[pa.Table], None]:
    """Each source's ids of a part that go to test or validation (`test`: which)."""
    in_test = table.column("in_test").to_numpy(zero_copy_only=False)
    picked = _is_chosen(table, "validation", chosen, ~in_test)
    ids = table.column("id")
    in_validation = pc.is_in(ids, value_set=pc.unique(ids.filter(pa.array(picked))))
    going = in_test | in_validation.to_numpy(zero_copy_only=False)
    sources = table.column("source").to_numpy()
    out = []
    for source in range(len(chosen)):
        lo, hi = np.searchsorted(sources, [source, source + 1])
        mine = np.flatnonzero(going[lo:hi]) + lo
        out.append(pa.table({"id": ids.take(mine), "test": pa.array(in_test[mine])}))
    return out, None


def _gathered(*pieces: pa.Table) -> tuple[list[pa.Array], None]:
    """A source's test ids and validation ids, from its pieces of every part."""
    table = pa.concat_tables(pieces)
    ids, test = table.column("id").combine_chunks(), table.column("test").combine_chunks()
    return [ids.filter(test), ids.filter(pc.invert(test))], None


def _thresholds(
    engine: Engine | None,
    tables: list[Any],
    split: str,
    quota: dict[str, int],
    sizes: dict[str, int],
) -> dict[int, tuple[int, int]]:
    """Each source's threshold (draw, first appearance) for `split`: its `quota`-th lowest
    among the ids it may choose (`sizes` of them), found from counts of draws in ever
    narrower ranges over the parts `tables`, until few enough for the driver to sort."""
    found: dict[int, tuple[int, int]] = {}
    # source -> (low, high, draws in [low, high), quota left inside)
    looking: dict[int, tuple[int, int, int, int]] = {}
    for k, name in enumerate(sizes):
        if quota[name] <= 0:
            found[k] = (0, -1)  # none
        elif quota[name] >= sizes[name]:
            found[k] = (_ALL, 0)  # all
        else:
            looking[k] = (0, _ALL, sizes[name], quota[name])
    while looking:
        queries = {
            k: (low, high, inside <= CANDIDATES or high - low <= 1)
            for k, (low, high, inside, _) in looking.items()
        }
        answers = [
            small for _, small in held.each(engine, _count, [(t, split, queries) for t in tables])
        ]
        for k, (low, high, listing) in queries.items():
            need = looking[k][3]
            if listing:
                draws = np.concatenate([a[k][0] for a in answers])
                rows = np.concatenate([a[k][1] for a in answers])
                at = np.lexsort((rows, draws))[need - 1]
                found[k] = (int(draws[at]), int(rows[at]))
                del looking[k]
                continue
            counts = sum(a[k] for a in answers)
            cumulative = np.cumsum(counts)
            b = int(np.searchsorted(cumulative, need))
            width = -(-(high - low) // BINS)
            below = int(cumulative[b - 1]) if b else 0
            start = low + b * width
            looking[k] = (start, min(high, start + width), int(counts[b]), need - below)
    return found


def _count(
    table: pa.Table, split: str, queries: dict[int, tuple[int, int, bool]]
) -> tuple[None, dict[int, Any]]:
    """For each source asked: the counts of a part's draws (of ids it may choose) in BINS
    bins of [low, high), or (listing) those draws and where each id first appears."""
    out: dict[int, Any] = {}
    draws = table.column(split).to_numpy()
    where = table.column("row").to_numpy()
    eligible = (
        ~table.column("in_test").to_numpy(zero_copy_only=False)
        if "in_test" in table.column_names
        else np.ones(table.num_rows, bool)
    )
    sources = table.column("source").to_numpy()
    for k, (low, high, listing) in queries.items():
        lo, hi = np.searchsorted(sources, [k, k + 1])
        d = draws[lo:hi]
        inside = eligible[lo:hi] & (d >= np.uint64(low)) & (d < np.uint64(high))
        if listing:
            out[k] = (d[inside], where[lo:hi][inside])
        else:
            width = np.uint64(-(-(high - low) // BINS))
            out[k] = np.bincount(
                ((d[inside] - np.uint64(low)) // width).astype(np.int64), minlength=BINS
            )
    return None, out
