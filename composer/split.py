"""Train/validation/test split by dedup id, stratified by source, seeded.

Every copy of an id (upsampling repeats rows) lands on the same side, and so does an id
found in sources of different kinds, so no instruction is in two splits. Each source gives
the same share of its distinct ids to a split; a row count is shared out over sources in
proportion to their size (largest remainder), and a source's `max_validation` caps its
share, the rest going to the sources with room. Test ids are drawn first, validation ids
from the rest.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer.draws import uniforms


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
    Python string an id: the driver of a Ray build splits a million ids this way)."""
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
    """The ids chosen for test and for validation, from each source's id column alone (the
    driver of a Ray build holds the ids, not the records: see `split_sources`)."""
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
